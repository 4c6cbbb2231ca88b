#!/usr/bin/python3
"""PyTorch baseline for `smyrf bench lm-step`: the same GPT / BERT (pre-LayerNorm blocks with
separate q, k, v and output projections, exact GELU MLP, learned positions, output tied to the
token embedding, dense attention written as a PyTorch 1.13 user would: softmax(q k^T / sqrt(d) +
mask) v), one training step = forward, cross-entropy, backward, AdamW (decay 0.1 on Linear
weights only). Runs with 2 threads and prints one JSON line per case in the units of
`smyrf bench lm-step --json` (tokens_per_s, median_ms, min_ms, cpu_ms_per_step: user + system
time of all threads per timed step, peak_step_mib: the peak resident memory one step adds).

usage: gpt_torch.py [--threads N] [--repeats R] CASE...   CASE as named by smyrf, e.g. gpt-256-dense
(SMYRF cases have no PyTorch twin: ask for the dense case of the same model and context.)
"""
import json
import math
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import timing

BATCH = {256: 8, 1024: 8, 4096: 2}
D_MODEL, LAYERS, HEADS = 256, 4, 4


class Block(nn.Module):
    def __init__(self, d, heads, causal):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attn(self, x):
        B, T, d = x.shape
        h = self.heads
        split = lambda t: t.view(B, T, h, d // h).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        if self.causal:
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
            s = s.masked_fill(mask, float("-inf"))
        y = torch.softmax(s, dim=-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, T, d))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class LM(nn.Module):
    def __init__(self, vocab, context, causal):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, D_MODEL), nn.Embedding(context, D_MODEL)
        self.h = nn.ModuleList(Block(D_MODEL, HEADS, causal) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D_MODEL)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()


def status_kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return float(line.split()[1])
    return -1.0


def peak_added_mib(fn):
    """Peak resident memory fn adds (as smyrf's bench/memory_probe): reset the high-water mark,
    read VmRSS, run, read VmHWM."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return -1.0
    base = status_kib("VmRSS:")
    fn()
    return (status_kib("VmHWM:") - base) / 1024.0


def run(case, repeats):
    model_kind, ctx, attention = case.split("-")
    ctx = int(ctx)
    if attention != "dense":
        raise SystemExit(f"gpt_torch.py: no PyTorch twin for {case}; ask for the dense case")
    batch = BATCH[ctx]
    torch.manual_seed(1)
    vocab = 257 if model_kind == "bert" else 256
    model = LM(vocab, ctx, causal=model_kind == "gpt")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("w")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("w"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    idx = torch.randint(0, 256, (batch, ctx))
    targets = torch.randint(0, 256, (batch, ctx))
    if model_kind == "bert":
        targets[torch.rand(batch, ctx) >= 0.15] = -100

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(idx)
        loss = F.cross_entropy(logits.view(-1, vocab), targets.view(-1), ignore_index=-100)
        loss.backward()
        opt.step()

    times, cpu = timing.time_runs(step, repeats)
    cpu_ms = sum(cpu) / len(cpu)  # all threads of the process: stays meaningful on a loaded host
    med = statistics.median(times)
    mib = peak_added_mib(step)
    print(json.dumps({"workload": "lm-step", "shape": case, "impl": "torch",
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "median_ms": med, "min_ms": min(times), "runs": len(times),
                      "cpu_ms_per_step": cpu_ms,
                      "tokens_per_s": batch * ctx / (med / 1000), "peak_step_mib": mib}))


def main(argv):
    threads, repeats, cases = timing.parse_args(argv)
    torch.set_num_threads(threads)
    for c in cases or ["gpt-256-dense"]:
        run(c, repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
