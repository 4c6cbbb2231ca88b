#!/usr/bin/env python3
"""Golden files for tests/models/test_golden.cpp: a tiny GPT and a tiny BERT in PyTorch.

    /usr/bin/python3 tests/golden/make_golden.py     # Debian's python3-torch (1.13), offline

writes tests/golden/gpt_tiny.safetensors and tests/golden/bert_tiny.safetensors. Each holds
    param.<name>   the initial weights (float32, smyrf's PyTorch-style names)
    input.idx, input.targets        (B, T) int64 (BERT: masked inputs, -100 = no target)
    out.logits (B, T, V), out.loss (1,)
    grad.<name>    the gradient of the loss for every parameter
    step3.<name>   the parameters after 3 AdamW steps on the same batch
References are computed in float64 from the float32 weights and stored as float32 (the rounding,
6e-8 relative, is far below the test's 1e-5 tolerance), so CI needs no PyTorch.

The model mirrors models/transformer.h exactly: token + learned position embeddings, pre-LayerNorm
blocks (x + attn(ln_1(x)), then x + mlp(ln_2(x)) with mlp = c_proj(gelu_erf(c_fc(x)))), multi-head
attention with separate q/k/v/out projections and scale 1/sqrt(head_dim) (causal for GPT), final
LayerNorm, logits tied to the token embedding. The safetensors format is written by hand (8-byte
little-endian header length, JSON header, raw little-endian data), as scripts/safetensors_to_torch.py
reads it.
"""
import json
import math
import os
import struct
from collections import OrderedDict

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS, D, HEADS, CONTEXT, BATCH = 2, 32, 4, 16, 2
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)


def init_params(vocab, gen):
    """GPT-2 initialisation with our names, in registration (state_dict) order."""
    p = OrderedDict()
    normal = lambda *shape, std=0.02: torch.randn(*shape, generator=gen, dtype=torch.float64) * std
    proj_std = 0.02 / math.sqrt(2 * LAYERS)
    p["transformer.wte.weight"] = normal(vocab, D)
    p["transformer.wpe.weight"] = normal(CONTEXT, D)
    for i in range(LAYERS):
        h = f"transformer.h.{i}."
        # LayerNorms and biases get small random values instead of 1/0 so their gradients and
        # updates are tested in a generic state, not only at the special initial point
        p[h + "ln_1.weight"] = 1 + normal(D, std=0.1)
        p[h + "ln_1.bias"] = normal(D, std=0.1)
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            p[h + f"attn.{n}.weight"] = normal(D, D, std=proj_std if n == "out_proj" else 0.02)
            p[h + f"attn.{n}.bias"] = normal(D, std=0.02)
        p[h + "ln_2.weight"] = 1 + normal(D, std=0.1)
        p[h + "ln_2.bias"] = normal(D, std=0.1)
        p[h + "mlp.c_fc.weight"] = normal(4 * D, D)
        p[h + "mlp.c_fc.bias"] = normal(4 * D, std=0.02)
        p[h + "mlp.c_proj.weight"] = normal(D, 4 * D, std=proj_std)
        p[h + "mlp.c_proj.bias"] = normal(D, std=0.02)
    p["transformer.ln_f.weight"] = 1 + normal(D, std=0.1)
    p["transformer.ln_f.bias"] = normal(D, std=0.1)
    # the weights the C++ side loads are float32: start the float64 reference from those values
    return OrderedDict((k, v.float().double()) for k, v in p.items())


def forward(p, idx, causal):
    B, T = idx.shape
    hd = D // HEADS
    x = p["transformer.wte.weight"][idx] + p["transformer.wpe.weight"][:T]
    for i in range(LAYERS):
        h = f"transformer.h.{i}."
        a = F.layer_norm(x, (D,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], 1e-5)
        split = lambda n: F.linear(a, p[h + f"attn.{n}.weight"], p[h + f"attn.{n}.bias"]).view(
            B, T, HEADS, hd).transpose(1, 2)
        q, k, v = split("q_proj"), split("k_proj"), split("v_proj")
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        if causal:
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + F.linear(o, p[h + "attn.out_proj.weight"], p[h + "attn.out_proj.bias"])
        m = F.layer_norm(x, (D,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], 1e-5)
        m = F.gelu(F.linear(m, p[h + "mlp.c_fc.weight"], p[h + "mlp.c_fc.bias"]))
        x = x + F.linear(m, p[h + "mlp.c_proj.weight"], p[h + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (D,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
    return x @ p["transformer.wte.weight"].t()


def loss_of(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def decays(name, t):
    # as train/lm_train.cpp: decay only weight matrices that are not embeddings
    return t.dim() >= 2 and ".wte." not in name and ".wpe." not in name


def golden(vocab, causal, idx, targets, gen):
    p = init_params(vocab, gen)
    for t in p.values():
        t.requires_grad_(True)
    logits = forward(p, idx, causal)
    loss = loss_of(logits, targets)
    loss.backward()
    out = OrderedDict()
    for k, v in p.items():
        out["param." + k] = v.detach().float()
    out["input.idx"] = idx
    out["input.targets"] = targets
    out["out.logits"] = logits.detach().float()
    out["out.loss"] = loss.detach().reshape(1).float()
    for k, v in p.items():
        out["grad." + k] = v.grad.float()
    names = list(p)
    opt = torch.optim.AdamW(
        [{"params": [p[n] for n in names if decays(n, p[n])]},
         {"params": [p[n] for n in names if not decays(n, p[n])], "weight_decay": 0.0}], **ADAM)
    for _ in range(3):
        opt.zero_grad()
        loss_of(forward(p, idx, causal), targets).backward()
        opt.step()
    for k, v in p.items():
        out["step3." + k] = v.detach().float()
    return out


def write_safetensors(path, tensors, metadata):
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = OrderedDict(), [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()  # little-endian on every machine we run
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # align the data to 8 bytes, as the format recommends
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def main():
    torch.set_default_dtype(torch.float64)
    gen = torch.Generator().manual_seed(2024)
    meta = {"generator": "tests/golden/make_golden.py", "torch": torch.__version__,
            "layers": str(LAYERS), "d_model": str(D), "heads": str(HEADS), "context": str(CONTEXT),
            "adamw": json.dumps(ADAM)}
    # GPT: vocabulary 64, next-token targets
    seq = torch.randint(0, 64, (BATCH, CONTEXT + 1), generator=gen)
    gpt = golden(64, True, seq[:, :-1].contiguous(), seq[:, 1:].contiguous(), gen)
    write_safetensors(os.path.join(HERE, "gpt_tiny.safetensors"), gpt, dict(meta, vocab="64", kind="gpt"))
    # BERT: 64 real tokens + [MASK] = 64; about 15% of positions carry a target
    tok = torch.randint(0, 64, (BATCH, CONTEXT), generator=gen)
    chosen = torch.rand(BATCH, CONTEXT, generator=gen) < 0.25
    chosen[:, 0] = True
    inputs = torch.where(chosen, torch.full_like(tok, 64), tok)
    targets = torch.where(chosen, tok, torch.full_like(tok, -100))
    bert = golden(65, False, inputs, targets, gen)
    write_safetensors(os.path.join(HERE, "bert_tiny.safetensors"), bert, dict(meta, vocab="65", kind="bert"))
    print("gpt loss %.6f, bert loss %.6f" % (gpt["out.loss"].item(), bert["out.loss"].item()))


if __name__ == "__main__":
    main()
