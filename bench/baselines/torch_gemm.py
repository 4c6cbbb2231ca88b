#!/usr/bin/python3
"""PyTorch baseline for `bench/compare gemm` / `gemm-batched`: times torch.mm or torch.bmm on one
shape with 2 threads and prints one JSON line in the units of `smyrf bench gemm --json`.

usage: torch_gemm.py [BATCHx]MxNxK NN|NT|TN|TT [f64]

Transposed operands are transposed views of contiguous tensors, which is what the backward pass
of a matmul hands to the kernel.
"""
import json
import statistics
import sys
import time

import torch


def operand(rows, cols, transposed, batch, dtype):
    """A (rows x cols) operand, stored (cols x rows) and viewed transposed when `transposed`."""
    shape = (cols, rows) if transposed else (rows, cols)
    if batch > 1:
        shape = (batch,) + shape
    t = torch.rand(shape, dtype=dtype) - 0.5
    return t.transpose(-1, -2) if transposed else t


def main():
    dims = [int(x) for x in sys.argv[1].split("x")]
    trans = sys.argv[2] if len(sys.argv) > 2 else "NN"
    batch, (m, n, k) = (dims[0], dims[1:]) if len(dims) == 4 else (1, dims)
    torch.set_num_threads(2)
    dtype = torch.float64 if len(sys.argv) > 3 and sys.argv[3] == "f64" else torch.float32
    a = operand(m, k, trans[0] == "T", batch, dtype)
    b = operand(k, n, trans[1] == "T", batch, dtype)
    out = torch.empty((batch, m, n) if batch > 1 else (m, n), dtype=dtype)
    fn = (lambda: torch.bmm(a, b, out=out)) if batch > 1 else (lambda: torch.mm(a, b, out=out))
    with torch.no_grad():
        for _ in range(2):
            fn()
        times = []
        while len(times) < 3 or sum(times) < 300.0:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
            if len(times) >= 1000:
                break
    med = statistics.median(times)
    print(json.dumps({"impl": "torch", "shape": sys.argv[1], "trans": trans,
                      "median_ms": med, "min_ms": min(times),
                      "gflops": 2.0 * batch * m * n * k / (med * 1e6),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
