#!/usr/bin/python3
"""PyTorch baseline for `smyrf bench conv2d`: times torch.nn.functional.conv2d on the same shapes,
forward (no_grad) and forward+backward (input, weight and bias gradients), with 2 threads, and
prints one JSON line per measurement in the units of `smyrf bench conv2d --json`.

usage: torch_conv.py [--threads N] [CASE ...]   CASE as printed by smyrf, e.g. n32c32h32w32k32r3s1p1
(N defaults to 2, the smoke-config machines' cores)
"""
import json
import re
import statistics
import sys
import time

import torch

CASES = [
    (32, 32, 8, 32, 3, 1, 1), (32, 32, 16, 32, 3, 1, 1), (32, 32, 32, 32, 3, 1, 1),
    (32, 32, 16, 32, 1, 1, 0), (32, 3, 32, 32, 3, 1, 1), (32, 32, 32, 3, 3, 1, 1),
    (32, 128, 4, 128, 3, 1, 1), (32, 128, 8, 128, 3, 1, 1), (32, 128, 16, 128, 3, 1, 1),
    (32, 128, 32, 128, 3, 1, 1), (32, 128, 16, 128, 1, 1, 0),
    (64, 1, 32, 32, 3, 1, 1), (64, 32, 32, 32, 3, 1, 1), (64, 32, 16, 32, 3, 1, 1),
    (32, 32, 32, 1, 3, 1, 1), (32, 128, 32, 3, 3, 1, 1),
]


def name(c):
    n, ch, h, k, r, s, p = c
    return f"n{n}c{ch}h{h}w{h}k{k}r{r}s{s}p{p}"


def measure(fn):
    for _ in range(2):
        fn()
    times = []
    while len(times) < 3 or sum(times) < 300.0:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 1000:
            break
    return statistics.median(times), min(times)


def run(c):
    n, ch, h, k, r, s, p = c
    x = torch.rand(n, ch, h, h) - 0.5
    w = torch.rand(k, ch, r, r) - 0.5
    b = torch.rand(k) - 0.5
    out = (h + 2 * p - r) // s + 1
    dy = torch.rand(n, k, out, out) - 0.5
    flop = 2.0 * n * k * out * out * ch * r * r

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, b, s, p)

    xg, wg, bg = x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()

    def fwd_bwd():
        xg.grad = wg.grad = bg.grad = None
        torch.nn.functional.conv2d(xg, wg, bg, s, p).backward(dy)

    for label, fn, f in (("fwd", fwd, flop), ("fwd+bwd", fwd_bwd, 3 * flop)):
        med, mn = measure(fn)
        print(json.dumps({"impl": "torch", "workload": "conv2d", "shape": name(c), "pass": label,
                          "median_ms": med, "min_ms": mn, "gflops": f / (med * 1e6),
                          "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


def main():
    args = sys.argv[1:]
    threads = 2
    if args[:1] == ["--threads"]:
        threads, args = int(args[1]), args[2:]
    torch.set_num_threads(threads)
    wanted = set(args)
    for c in CASES:
        if not wanted or name(c) in wanted:
            run(c)


if __name__ == "__main__":
    main()
