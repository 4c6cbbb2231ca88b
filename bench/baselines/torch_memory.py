#!/usr/bin/env python3
"""PyTorch baseline for the memory-bound workloads of bench/memory_bench.cpp.

Same ops, shapes, layouts and byte counts; one JSON line per measurement with the fields our
benchmark prints (workload, op, shape, layout, threads, median_ms, min_ms, gbps, pct_triad, where
pct_triad is against a triad measured by PyTorch in this process right after the measurement:
torch.add(b, c, alpha=s, out=a)).
Outputs are preallocated and passed as out= where PyTorch has one, so allocation and page faults
are not timed (as in ours).

    /usr/bin/python3 bench/baselines/torch_memory.py [workload ...]   (default: all)

Env SHAPES="RxN,RxN" replaces the (rows, n) shapes of softmax, layernorm and cross-entropy (as
`smyrf bench <workload> --shapes` does for ours).
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
N = 1 << 24


def measure(fn, warmup=2, min_seconds=0.3):
    for _ in range(warmup):
        fn()
    ms = []
    total = 0.0
    while len(ms) < 3 or total < min_seconds * 1e3:
        t0 = time.perf_counter()
        fn()
        t = (time.perf_counter() - t0) * 1e3
        ms.append(t)
        total += t
        if len(ms) >= 1000:
            break
    return statistics.median(ms), min(ms), len(ms)


_triad_bufs = None


def measure_triad(min_seconds):
    """The triad torch.add(b, c, alpha=3, out=a) on buffers kept for the process."""
    global _triad_bufs
    if _triad_bufs is None:
        _triad_bufs = (torch.empty(N), torch.randn(N), torch.randn(N))
    a, b, c = _triad_bufs
    return measure(lambda: torch.add(b, c, alpha=3.0, out=a), min_seconds=min_seconds)


def triad_gbps(timing):
    return 3.0 * 4 * N / (timing[0] * 1e6)


def triad_beside():
    """The triad again, right after a measurement (0.1 s): the host's bandwidth drifts within
    seconds, so pct_triad is taken against the triad of the same moment (as ours does)."""
    return triad_gbps(measure_triad(0.1))


def row_shapes(default):
    """(rows, n) pairs: env SHAPES ("RxN,RxN") when set, else the workload's defaults."""
    spec = os.environ.get("SHAPES", "")
    if not spec:
        return default
    return [tuple(int(v) for v in s.split("x")) for s in spec.split(",") if "x" in s]


def emit(workload, op, shape, layout, timing, nbytes):
    med, mn, runs = timing
    gbps = nbytes / (med * 1e6)
    tri = gbps if workload == "triad" else triad_beside()
    print(json.dumps({"workload": workload, "op": op, "shape": shape, "layout": layout,
                      "threads": torch.get_num_threads(), "impl": "torch " + torch.__version__,
                      "median_ms": round(med, 4), "min_ms": round(mn, 4), "runs": runs,
                      "gbps": round(gbps, 4), "pct_triad": round(100 * gbps / tri, 2),
                      "triad_gbps": round(tri, 3)}), flush=True)


def w_triad():
    emit("triad", "triad", str(N), "contiguous", measure_triad(0.5), 3.0 * 4 * N)


def w_elementwise():
    w_triad()
    R, C = 4096, N // 4096
    shape = f"{R}x{C}"
    a = torch.randn(R, C)
    at = torch.randn(C, R).t()  # transposed view, as ours
    b = torch.randn(R, C)
    col = torch.randn(R, 1)
    row = torch.randn(1, C)
    y = torch.empty(R, C)
    for name, fn in (("add", torch.add), ("mul", torch.mul)):
        emit("elementwise", name, shape, "contiguous", measure(lambda: fn(a, b, out=y)), 3.0 * 4 * N)
        emit("elementwise", name, shape, "transposed", measure(lambda: fn(at, b, out=y)), 3.0 * 4 * N)
        emit("elementwise", name, shape, "broadcast", measure(lambda: fn(a, col, out=y)),
             2.0 * 4 * N + 4.0 * R)
    gelu_out = lambda x: torch._C._nn.gelu(x, out=y)
    for name, fn in (("exp", lambda x: torch.exp(x, out=y)), ("gelu", gelu_out)):
        emit("elementwise", name, shape, "contiguous", measure(lambda: fn(a)), 2.0 * 4 * N)
        emit("elementwise", name, shape, "transposed", measure(lambda: fn(at)), 2.0 * 4 * N)
        emit("elementwise", name, shape, "broadcast", measure(lambda: fn(row.expand(R, C))),
             1.0 * 4 * N + 4.0 * C)


def w_softmax():
    w_triad()
    for rows, n in row_shapes(((1048576, 16), (16384, 1024), (4096, 4096), (1024, 16384),
                               (64, 262144))):
        shape = f"{rows}x{n}"
        x = torch.randn(rows, n)
        y = torch.empty(rows, n)
        dy = torch.randn(rows, n)
        dx = torch.empty(rows, n)
        emit("softmax", "softmax_fwd", shape, "contiguous",
             measure(lambda: torch._softmax(x, -1, False, out=y)), 2.0 * 4 * rows * n)
        ys = torch.softmax(x, -1)
        emit("softmax", "softmax_bwd", shape, "contiguous",
             measure(lambda: torch.ops.aten._softmax_backward_data.out(
                 dy, ys, -1, torch.float32, grad_input=dx)),
             3.0 * 4 * rows * n)
        emit("softmax", "log_softmax_fwd", shape, "contiguous",
             measure(lambda: torch._log_softmax(x, -1, False, out=y)), 2.0 * 4 * rows * n)


def w_layernorm():
    w_triad()
    for rows, n in row_shapes(((1048576, 16), (16384, 1024), (4096, 4096), (1024, 16384))):
        shape = f"{rows}x{n}"
        x = torch.randn(rows, n)
        w = torch.randn(n)
        b = torch.randn(n)
        emit("layernorm", "layernorm_fwd", shape, "contiguous",
             measure(lambda: torch.native_layer_norm(x, (n,), w, b, 1e-5)),
             2.0 * 4 * rows * n + 8.0 * rows + 8.0 * n)  # the bytes ours counts
        _, mean, rstd = torch.native_layer_norm(x, (n,), w, b, 1e-5)
        dy = torch.randn(rows, n)
        emit("layernorm", "layernorm_bwd", shape, "contiguous",
             measure(lambda: torch.ops.aten.native_layer_norm_backward(
                 dy, x, (n,), mean, rstd, w, b, [True, True, True])),
             3.0 * 4 * rows * n + 8.0 * rows + 12.0 * n)


def w_cross_entropy():
    w_triad()
    for rows, C in row_shapes(((1048576, 16), (16384, 1024), (2048, 8192), (512, 32768))):
        shape = f"{rows}x{C}"
        x = torch.randn(rows, C)
        t = (torch.arange(rows) * 7919) % C
        emit("cross-entropy", "ce_fwd", shape, "contiguous",
             measure(lambda: F.cross_entropy(x, t, reduction="none")), 4.0 * rows * C + 16.0 * rows)
        xg = x.clone().requires_grad_(True)
        g = torch.full((rows,), 1.0 / rows)

        def bwd():
            xg.grad = None
            F.cross_entropy(xg, t, reduction="none").backward(g)
        # includes the forward (PyTorch has no separate fused backward entry for this): an upper
        # bound on its backward time
        emit("cross-entropy", "ce_bwd", shape, "contiguous", measure(bwd),
             2.0 * 4 * rows * C + 16.0 * rows)


def w_reduce():
    w_triad()
    R, C = 4096, N // 4096
    shape = f"{R}x{C}"
    x = torch.randn(R, C)
    xt = x.t()
    out_r, out_c = torch.empty(R), torch.empty(C)
    for name in ("sum", "max"):
        if name == "sum":
            # torch 1.13 has no out= form of a full sum; the 0-d result it allocates is noise
            f_all = lambda: torch.sum(x)
            f_rows = lambda: torch.sum(x, 1, out=out_r)
            f_cols = lambda: torch.sum(x, 0, out=out_c)
            f_tr = lambda: torch.sum(xt, 1, out=out_c)
        else:
            f_all = lambda: torch.max(x)
            f_rows = lambda: torch.amax(x, 1, out=out_r)
            f_cols = lambda: torch.amax(x, 0, out=out_c)
            f_tr = lambda: torch.amax(xt, 1, out=out_c)
        for layout, f in (("all", f_all), ("rows", f_rows), ("columns", f_cols), ("transposed", f_tr)):
            emit("reduce", name, shape, layout, measure(f), 4.0 * N)


def w_layouts():
    """bench/memory_bench.cpp "layouts": the same cases through PyTorch's allocating ops (ours
    allocate too). PyTorch's CPU allocator takes plain 4 KiB pages where ours advises huge pages
    for large tensors, so where page faults are costly (VMs) its fresh outputs cost it more."""
    w_triad()
    F, n = 4.0, float(N)
    a3, b3, m3 = torch.randn(64, 512, 512), torch.randn(64, 512, 512), torch.randn(64, 1, 512)
    wide, a2, b2, r1 = torch.randn(4096, 8192), torch.randn(4096, 4096), torch.randn(4096, 4096), torch.randn(4096)
    h1, h2 = torch.randn(4096, 2048), torch.randn(4096, 2048)
    table, idx = torch.randn(65536, 256), torch.randint(0, 65536, (65536,))
    cond = torch.randn(4096, 4096) > 0
    gidx = torch.randint(0, 4096, (4096, 4096))
    b3t, step2 = b3.permute(0, 2, 1), wide[:, ::2]
    n4, c4 = a2.reshape(4194304, 4), torch.randn(4194304, 1)
    cond4 = c4 > 0
    sel = torch.randint(0, 4096, (2048,))
    d2, i2 = h1.double(), torch.randint(0, 1000, (4096, 2048))
    h4, px = torch.randn(64, 128, 12, 64), torch.randn(32, 128, 32, 32)
    o33, v33 = torch.randn(508400, 33), torch.randn(33)
    o100, v100 = torch.randn(167772, 100), torch.randn(100)
    h = n / 2
    cases = [
        ("add", "64x512x512", "permute021", 3 * F * n, lambda: a3 + b3t),
        ("add", "4096x4096", "step2", 3 * F * n, lambda: step2 + b2),
        ("add", "64x512x512", "bcast-mid", 2 * F * n, lambda: a3 + m3),
        ("mul", "4096x4096", "bcast-row", 2 * F * n, lambda: a2 * r1),
        ("exp", "4096x4096", "step2", 2 * F * n, lambda: torch.exp(step2)),
        ("copy", "64x512x512", "permute021", 2 * F * n, lambda: b3t.contiguous()),
        ("copy", "64x512x512", "permute201", 2 * F * n, lambda: a3.permute(2, 0, 1).contiguous()),
        ("sum", "64x512x512", "dim1", F * n, lambda: a3.sum(1)),
        ("sum", "64x512x512", "dims02", F * n, lambda: a3.sum((0, 2))),
        ("mean", "4096x4096", "dim1", F * n, lambda: a2.mean(1)),
        ("max", "4096x4096", "dim0", F * n, lambda: a2.amax(0)),
        ("var", "4096x4096", "dim1", F * n, lambda: a2.var(1)),
        ("logsumexp", "4096x4096", "dim1", F * n, lambda: torch.logsumexp(a2, 1)),
        ("argmax", "4096x4096", "dim1", F * n, lambda: a2.argmax(1)),
        ("softmax", "4096x4096", "dim0", 2 * F * n, lambda: torch.softmax(a2, 0)),
        ("softmax", "4096x4096", "dim1", 2 * F * n, lambda: torch.softmax(a2, 1)),
        ("softmax", "64x512x512", "dim1", 2 * F * n, lambda: torch.softmax(a3, 1)),
        ("where", "4096x4096", "contiguous", (3 * F + 1) * n, lambda: torch.where(cond, a2, b2)),
        ("index_select", "65536x256", "dim0", 2 * F * n + 8.0 * 65536,
         lambda: table.index_select(0, idx)),
        ("cat", "4096x4096", "dim1", 2 * F * n, lambda: torch.cat([h1, h2], 1)),
        ("var", "4096x4096", "dim0", F * n, lambda: a2.var(0)),
        ("argmax", "4096x4096", "dim0", F * n, lambda: a2.argmax(0)),
        ("mean", "16x1048576", "dim0", F * n, lambda: a2.reshape(16, -1).mean(0)),
        ("softmax", "2x8388608", "dim0", 2 * F * n, lambda: torch.softmax(a2.reshape(2, -1), 0)),
        ("softmax", "1x16777216", "dim1", 2 * F * n, lambda: torch.softmax(a2.reshape(1, -1), 1)),
        ("logsumexp", "1x16777216", "dim1", F * n, lambda: torch.logsumexp(a2.reshape(1, -1), 1)),
        ("var", "1x16777216", "dim1", F * n, lambda: a2.reshape(1, -1).var(1)),
        ("gather", "4096x4096", "dim1", 2 * F * n + 8.0 * n, lambda: torch.gather(a2, 1, gidx)),
        ("add", "4194304x4", "bcast-col", 2 * F * n + F * n / 4, lambda: n4 + c4),
        ("where", "4194304x4", "cond-col", 2 * F * n + n / 4,
         lambda: torch.where(cond4, n4, b2.reshape(4194304, 4))),
        ("sum", "64x512x512", "all-permute201", F * n, lambda: a3.permute(2, 0, 1).sum()),
        ("topk1", "4194304x4", "dim1", F * n + 12.0 * n / 4, lambda: torch.topk(n4, 1, 1)),
        ("topk2", "2097152x8", "dim1", F * n + 12.0 * n / 4,
         lambda: torch.topk(a2.reshape(2097152, 8), 2, 1)),
        ("sort", "4194304x4", "dim1", F * n + 12.0 * n, lambda: torch.sort(n4, 1)),
        ("index_select", "4096x4096", "dim1", F * n + 8.0 * 2048,
         lambda: a2.index_select(1, sel)),
        ("expm1", "4096x4096", "contiguous", 2 * F * n, lambda: torch.expm1(a2)),
        ("abs-f64", "4096x2048", "contiguous", 2 * 8 * h, lambda: d2.abs()),
        ("sum-f64", "4096x2048", "dim1", 8 * h, lambda: d2.sum(1)),
        ("sum-f64", "4096x2048", "dim0", 8 * h, lambda: d2.sum(0)),
        ("eq-i64", "4096x2048", "contiguous", 2 * 8 * h + h, lambda: i2 == i2),
        ("max-i64", "4096x2048", "dim1", 8 * h, lambda: i2.amax(1)),
        ("copy", "64x128x12x64", "permute0213", 2 * F * h4.numel(),
         lambda: h4.permute(0, 2, 1, 3).contiguous()),
        ("dropout", "4096x4096", "p0.1", 2 * F * n + n,
         lambda: torch.nn.functional.dropout(a2, 0.1, True)),
        ("max_pool2d", "32x128x32x32", "2x2", F * (n / 4 + n / 16),
         lambda: torch.nn.functional.max_pool2d(px, 2)),
        ("add", "508400x33", "bcast-row", 2 * F * 508400 * 33, lambda: o33 + v33),
        ("mul", "167772x100", "bcast-row", 2 * F * 167772 * 100, lambda: o100 * v100),
    ]
    # env SHAPES: a comma-separated list of op names or op:layout (as ours' --shapes)
    picked = [s for s in os.environ.get("SHAPES", "").split(",") if s]
    for op, shape, layout, nbytes, fn in cases:
        if picked and op not in picked and f"{op}:{layout}" not in picked:
            continue
        emit("layouts", op, shape, layout, measure(fn), nbytes)


WORKLOADS = {"triad": w_triad, "elementwise": w_elementwise, "softmax": w_softmax,
             "layernorm": w_layernorm, "cross-entropy": w_cross_entropy, "reduce": w_reduce,
             "layouts": w_layouts}

if __name__ == "__main__":
    names = sys.argv[1:] or list(WORKLOADS)
    for name in names:
        if name not in WORKLOADS:
            sys.exit(f"unknown workload {name}; one of {', '.join(WORKLOADS)}")
        if name == "cross-entropy":
            WORKLOADS[name]()
        else:
            with torch.no_grad():
                WORKLOADS[name]()
