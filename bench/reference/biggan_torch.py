#!/usr/bin/python3
"""PyTorch baseline for `smyrf bench gan-step`: the same BigGAN generator and projection
discriminator as models/biggan.* (docs/biggan.md), written as BigGAN-PyTorch writes them, and one
training iteration as `smyrf gan train` runs it:

  d_steps times: G(z, y_fake) without gradients, D(cat(fake, real), cat(y_fake, y_real)), hinge
    loss mean(relu(1 + D(fake))) + mean(relu(1 - D(real))), backward, Adam(0, 0.999) on D;
  one G step: D's parameters frozen, loss -mean(D(G(z, y), y)), backward, Adam on G;
  the EMA update of a copy of G (decay 0.999, every floating-point state entry; u and v copied).

Model: G from z split into 4 chunks (hierarchical z), linear to 4x4, three up-blocks (cBN, ReLU,
nearest 2x, 3x3 conv, cBN, ReLU, 3x3 conv, 1x1 conv of the upsampled input), SAGAN self-attention
(theta/phi C/8, g C/2, o C/2 -> C, 2x2 max-pooled keys and values, gain gamma from 0) after the
block of the attention resolution, BN, ReLU, 3x3 conv, tanh. cBN: BatchNorm without affine with
gain 1 + linear(cond) and bias linear(cond), cond = cat(shared(y), z chunk). D: four down-blocks
(the first without pre-activation, the last without pooling, 1x1 shortcut), attention, ReLU, global
sum, linear + projection embed(y)·h. torch.nn.utils.spectral_norm on every conv and linear and the
projection embedding (one power iteration per training forward); orthogonal init of those weights.
Attention is dense (PyTorch has no SMYRF): the twin of a SMYRF case is its dense case.

Cases (names as smyrf's): cpu-dense (ch 8, dim_z 64, shared 64, 1x32x32, attention G 32 / D 16,
2 D steps), ch32-attn16 (ch 32, dim_z 120, shared 128, 3x32x32, attention 16 / 16, 1 D step);
batch 32, 10 classes. Prints one JSON line per case in the units of `smyrf bench gan-step --json`
(images_per_s, median_ms, min_ms, cpu_ms: process CPU time per iteration) plus the parameter counts of G and D, which must equal smyrf's.

usage: biggan_torch.py [--threads N] [--repeats R] CASE...
"""
import copy
import json
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import timing

SN = nn.utils.spectral_norm

CASES = {
    "cpu-dense": dict(ch=8, dim_z=64, shared_dim=64, image_channels=1, g_attn=32, d_attn=16,
                      d_steps=2, sn_eps=1e-6),
    "ch32-attn16": dict(ch=32, dim_z=120, shared_dim=128, image_channels=3, g_attn=16, d_attn=16,
                        d_steps=1, sn_eps=1e-6),
}
RESOLUTION, N_CLASSES, BATCH = 32, 10, 32
G_IN, G_OUT = [4, 4, 4], [4, 4, 4]
D_IN, D_OUT, D_DOWN = [0, 4, 4, 4], [4, 4, 4, 4], [True, True, True, False]


def sn_conv(i, o, k, eps, bias=True):
    return SN(nn.Conv2d(i, o, k, 1, k // 2, bias=bias), eps=eps)


def sn_linear(i, o, eps, bias=True):
    return SN(nn.Linear(i, o, bias=bias), eps=eps)


class CBN(nn.Module):
    def __init__(self, c, cond, eps=1e-5, momentum=0.1):
        super().__init__()
        self.gain = sn_linear(cond, c, 1e-12, bias=False)
        self.bias = sn_linear(cond, c, 1e-12, bias=False)
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.eps, self.momentum = eps, momentum

    def forward(self, x, y):
        g = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        b = self.bias(y).view(y.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.running_mean, self.running_var, None, None, self.training,
                           self.momentum, self.eps)
        return out * g + b


class Attention(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.ch = ch
        self.theta = sn_conv(ch, ch // 8, 1, 1e-12, bias=False)
        self.phi = sn_conv(ch, ch // 8, 1, 1e-12, bias=False)
        self.g = sn_conv(ch, ch // 2, 1, 1e-12, bias=False)
        self.o = sn_conv(ch // 2, ch, 1, 1e-12, bias=False)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        B, C, H, W = x.shape
        theta = self.theta(x).view(B, C // 8, H * W)
        phi = F.max_pool2d(self.phi(x), 2).view(B, C // 8, H * W // 4)
        g = F.max_pool2d(self.g(x), 2).view(B, C // 2, H * W // 4)
        beta = F.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        o = self.o(torch.bmm(g, beta.transpose(1, 2)).view(B, C // 2, H, W))
        return x + self.gamma * o


class GBlock(nn.Module):
    def __init__(self, i, o, cond, eps):
        super().__init__()
        self.conv1, self.conv2 = sn_conv(i, o, 3, eps), sn_conv(o, o, 3, eps)
        self.conv_sc = sn_conv(i, o, 1, eps)
        self.bn1, self.bn2 = CBN(i, cond), CBN(o, cond)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(x)


class Generator(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch, nb = c["ch"], len(G_IN)
        self.chunk = c["dim_z"] // (nb + 1)
        cond = c["shared_dim"] + self.chunk
        self.c0 = G_IN[0] * ch
        self.shared = nn.Embedding(N_CLASSES, c["shared_dim"])
        self.linear = sn_linear(self.chunk, 16 * self.c0, c["sn_eps"])
        self.blocks = nn.ModuleList()
        for b in range(nb):
            blk = nn.ModuleList([GBlock(G_IN[b] * ch, G_OUT[b] * ch, cond, c["sn_eps"])])
            if (8 << b) == c["g_attn"]:
                blk.append(Attention(G_OUT[b] * ch))
            self.blocks.append(blk)
        last = G_OUT[-1] * ch
        self.output_layer = nn.Sequential(nn.BatchNorm2d(last), nn.ReLU(),
                                          sn_conv(last, c["image_channels"], 3, c["sn_eps"]))

    def forward(self, z, y):
        zs = torch.split(z, self.chunk, 1)
        emb = self.shared(y)
        h = self.linear(zs[0]).view(z.size(0), self.c0, 4, 4)
        for b, blk in enumerate(self.blocks):
            h = blk[0](h, torch.cat([emb, zs[b + 1]], 1))
            for a in blk[1:]:
                h = a(h)
        return torch.tanh(self.output_layer(h))


class DBlock(nn.Module):
    def __init__(self, i, o, preact, down, eps):
        super().__init__()
        self.preact, self.down = preact, down
        self.conv1, self.conv2 = sn_conv(i, o, 3, eps), sn_conv(o, o, 3, eps)
        self.conv_sc = sn_conv(i, o, 1, eps) if (i != o or down) else None

    def forward(self, x):
        h = F.relu(x) if self.preact else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.preact:
            if self.conv_sc is not None:
                s = self.conv_sc(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        else:
            if self.down:
                s = F.avg_pool2d(s, 2)
            if self.conv_sc is not None:
                s = self.conv_sc(s)
        return h + s


class Discriminator(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch, r, placed = c["ch"], RESOLUTION, False
        self.blocks = nn.ModuleList()
        for b in range(len(D_OUT)):
            i = c["image_channels"] if b == 0 else D_IN[b] * ch
            blk = nn.ModuleList([DBlock(i, D_OUT[b] * ch, b > 0, D_DOWN[b], c["sn_eps"])])
            if D_DOWN[b]:
                r //= 2
            if r == c["d_attn"] and not placed:
                placed = True
                blk.append(Attention(D_OUT[b] * ch))
            self.blocks.append(blk)
        last = D_OUT[-1] * ch
        self.linear = sn_linear(last, 1, c["sn_eps"])
        self.embed = SN(nn.Embedding(N_CLASSES, last), eps=c["sn_eps"])

    def forward(self, x, y):
        h = x
        for blk in self.blocks:
            for m in blk:
                h = m(h)
        h = torch.sum(F.relu(h), [2, 3])
        return self.linear(h).view(-1) + torch.sum(self.embed(y) * h, 1)


def ortho_init(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_orig") or name == "shared.weight":
                nn.init.orthogonal_(p)


def ema_update(target, source, decay):
    with torch.no_grad():
        src = source.state_dict()
        for k, t in target.state_dict().items():
            if not t.is_floating_point() or k.endswith("weight_u") or k.endswith("weight_v"):
                t.copy_(src[k])
            else:
                t.mul_(decay).add_(src[k], alpha=1 - decay)


def count(m):
    return sum(p.numel() for p in m.parameters())


def run(case, repeats):
    c = CASES[case]
    torch.manual_seed(1)
    G, D = Generator(c), Discriminator(c)
    ortho_init(G)
    ortho_init(D)
    G_ema = copy.deepcopy(G).eval()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.999), eps=1e-8)
    shape = (BATCH, c["image_channels"], RESOLUTION, RESOLUTION)
    real = [(torch.rand(shape) * 2 - 1, torch.randint(0, N_CLASSES, (BATCH,))) for _ in range(2)]
    state = {"next": 0}

    def iteration():
        for _ in range(c["d_steps"]):
            x, y = real[state["next"] % 2]
            state["next"] += 1
            y_fake = torch.randint(0, N_CLASSES, (BATCH,))
            with torch.no_grad():
                fake = G(torch.randn(BATCH, c["dim_z"]), y_fake)
            opt_d.zero_grad(set_to_none=True)
            out = D(torch.cat([fake, x]), torch.cat([y_fake, y]))
            l_real = F.relu(1 - out[BATCH:]).mean()
            l_fake = F.relu(1 + out[:BATCH]).mean()
            (l_real + l_fake).backward()
            opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        y_g = torch.randint(0, N_CLASSES, (BATCH,))
        l_g = -D(G(torch.randn(BATCH, c["dim_z"]), y_g), y_g).mean()
        l_g.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        ema_update(G_ema, G, 0.999)
        return l_g.item()

    times, cpu = timing.time_runs(iteration, repeats)  # after one warm-up iteration
    med = statistics.median(times)
    print(json.dumps({"workload": "gan-step", "shape": case, "impl": "torch",
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "batch": BATCH, "d_steps": c["d_steps"], "median_ms": med,
                      "min_ms": min(times), "runs": len(times),
                      "images_per_s": BATCH / (med / 1e3), "cpu_ms": statistics.median(cpu),
                      "g_parameters": count(G),
                      "d_parameters": count(D)}), flush=True)


def main(argv):
    threads, repeats, cases = timing.parse_args(argv)
    torch.set_num_threads(threads)
    for c in cases or list(CASES):
        if c not in CASES:
            sys.exit(f"biggan_torch.py: unknown case '{c}' (have {', '.join(CASES)}; the twin of "
                     "a SMYRF case is its dense case)")
        run(c, repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
