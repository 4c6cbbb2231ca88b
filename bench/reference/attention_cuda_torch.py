#!/usr/bin/python3
"""PyTorch baselines on the GPU for `bench/compare attention-cuda` and scripts/gpu-check: dense
attention through `torch.nn.functional.scaled_dot_product_attention` pinned to its FlashAttention
backend (bfloat16; float32 has no FlashAttention kernel, so float32 rows use the memory-efficient
backend and say so), and the PyTorch SMYRF of bench/reference/smyrf_torch.py moved to the GPU.

One process measures a whole grid (CUDA start-up once), in the units of
`smyrf bench attention --device cuda --json`: one JSON line per case with median_ms, min_ms (CUDA
events around each call after a synchronisation), gflops (our convention: 4 N^2 d dense and
4 N C d R SMYRF forward FLOPs, 3.5x for fwd+bwd) and peak_mib (torch.cuda.max_memory_allocated
during one call minus what was allocated before it; inputs excluded).

usage:
  attention_cuda_torch.py [--bh 8,32] [--n 1024,4096,16384] [--d 64,128]
                          [--dtype bfloat16,float32] [--impl flash,smyrf-4x64,smyrf-4x256]
                          [--pass fwd,fwd+bwd] [--budget-s 120] [--repeats 5]
                          [--shapes 8x16384x64,32x4096x128]   (BHxNxD cases instead of the grid)
  attention_cuda_torch.py --probe     prints one JSON line: is CUDA usable, device, torch version

Without a usable CUDA device it prints {"workload": "attention", "device": "cuda", "skipped": ...}
and exits with status 3, so callers can tell "not measured" from "measured".
"""
import argparse
import itertools
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smyrf_torch  # noqa: E402  (the same algorithm as the CPU comparison, on the GPU here)

DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def cuda_unavailable_reason():
    if not torch.cuda.is_available():
        return (f"torch.cuda.is_available() is False (torch {torch.__version__}, built with CUDA "
                f"{torch.version.cuda}); PyTorch-on-GPU baselines not measured")
    return None


def probe():
    why = cuda_unavailable_reason()
    info = {"probe": "attention-cuda", "torch": torch.__version__, "cuda_ok": why is None}
    if why is None:
        info["device"] = torch.cuda.get_device_name(0)
        info["torch_cuda"] = torch.version.cuda
        info["flash_sdp_enabled"] = bool(torch.backends.cuda.flash_sdp_enabled())
    else:
        info["why"] = why
    print(json.dumps(info))
    return 0 if why is None else 3


def sdpa_backend(dtype):
    """Context manager pinning SDPA to FlashAttention (bf16/fp16) or to the memory-efficient
    kernel (float32, which FlashAttention does not take), and the backend's name."""
    flash = dtype in (torch.bfloat16, torch.float16)
    try:  # torch >= 2.3
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backend = SDPBackend.FLASH_ATTENTION if flash else SDPBackend.EFFICIENT_ATTENTION
        return sdpa_kernel(backend), "flash" if flash else "efficient"
    except ImportError:  # torch 2.0 - 2.2
        ctx = torch.backends.cuda.sdp_kernel(enable_flash=flash, enable_math=False,
                                             enable_mem_efficient=not flash)
        return ctx, "flash" if flash else "efficient"


def _hash_directions_on(device):
    """smyrf_torch draws its hash directions with a CPU generator; move them to the device."""
    original = smyrf_torch._hash_directions

    def on_device(n_hashes, dim, seed, dtype):
        return original(n_hashes, dim, seed, dtype).to(device)
    return on_device


def time_events(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        ms.append(start.elapsed_time(stop))
    return statistics.median(ms), min(ms)


def peak_added_mib(fn):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_allocated() - before) / 2**20


def measure(bh, n, d, dtype_name, impl, mode, repeats):
    dtype = DTYPES[dtype_name]
    dev = torch.device("cuda", 0)
    backward = mode == "fwd+bwd"
    gen = torch.Generator(device=dev).manual_seed(0)
    q, k, v, g = (torch.randn(1, bh, n, d, device=dev, dtype=dtype, generator=gen)
                  for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(backward)
    rec = {"workload": "attention", "pass": mode, "batch_heads": bh, "n": n, "d": d,
           "device": "cuda", "dtype": dtype_name, "timer": "cuda-event", "torch": torch.__version__}
    if impl == "flash":
        backend = sdpa_backend(dtype)[1]
        rec.update({"impl": f"torch-sdpa-{backend}", "n_hashes": 0, "cluster": 0})
        flops = 4.0 * bh * n * n * d

        def attn():
            with sdpa_backend(dtype)[0]:  # a fresh (single-use) context manager per call
                return torch.nn.functional.scaled_dot_product_attention(q, k, v)
    else:
        nh, cl = (int(x) for x in impl.split("-")[1].split("x"))
        rec.update({"impl": f"torch-smyrf-{nh}x{cl}", "n_hashes": nh, "cluster": cl})
        flops = 4.0 * bh * n * cl * d * nh
        smyrf_torch._hash_directions = _hash_directions_on(dev)

        def attn():
            out = smyrf_torch.smyrf_attention(q.view(bh, n, d), k.view(bh, n, d),
                                              v.view(bh, n, d), nh, cl, cl, seed=1234)
            return out.view(1, bh, n, d)

    def run():
        if backward:
            torch.autograd.grad(attn(), (q, k, v), g)
        else:
            with torch.no_grad():
                attn()

    med, mn = time_events(run, 2, repeats)
    rec.update({"median_ms": med, "min_ms": mn,
                "gflops": (3.5 if backward else 1.0) * flops / (med * 1e6),
                "peak_mib": peak_added_mib(run)})
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--bh", default="8,32")
    ap.add_argument("--n", default="1024,4096,16384")
    ap.add_argument("--d", default="64,128")
    ap.add_argument("--dtype", default="bfloat16,float32")
    ap.add_argument("--impl", default="flash,smyrf-4x64,smyrf-4x256")
    ap.add_argument("--pass", dest="passes", default="fwd,fwd+bwd")
    ap.add_argument("--shapes", default="", help="BHxNxD cases (replaces --bh/--n/--d)")
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.probe:
        return probe()
    why = cuda_unavailable_reason()
    if why is not None:
        print(json.dumps({"workload": "attention", "device": "cuda", "impl": "torch",
                          "skipped": why}))
        print(f"attention_cuda_torch.py: {why}", file=sys.stderr)
        return 3
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    if a.shapes:
        cases = [tuple(int(x) for x in c.split("x")) for c in a.shapes.split(",") if c]
        if any(len(c) != 3 for c in cases):
            ap.error("--shapes takes BHxNxD entries, e.g. 8x16384x64")
    else:
        cases = [(bh, n, d) for bh in ints(a.bh) for d in ints(a.d) for n in ints(a.n)]
    t0 = time.monotonic()
    for (bh, n, d), dtype_name, impl, mode in itertools.product(
            cases, a.dtype.split(","), a.impl.split(","), a.passes.split(",")):
        if impl.startswith("smyrf-") and int(impl.split("x")[1]) > n:
            continue
        base = {"workload": "attention", "batch_heads": bh, "n": n, "d": d, "device": "cuda",
                "dtype": dtype_name, "pass": mode, "impl": f"torch-{impl}"}
        if time.monotonic() - t0 > a.budget_s:
            base["skipped"] = f"time budget ({a.budget_s:g} s) spent"
            print(json.dumps(base), flush=True)
            continue
        try:
            print(json.dumps(measure(bh, n, d, dtype_name, impl, mode, a.repeats)), flush=True)
        except RuntimeError as e:  # out of memory, or no kernel of the pinned backend
            base["skipped"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
            print(json.dumps(base), flush=True)
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
