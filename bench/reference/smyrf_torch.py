#!/usr/bin/python3
"""PyTorch baselines for `bench/compare attention`: dense softmax attention and SMYRF written the
way a PyTorch user would write it (from docs/smyrf.md, not from the GPL reference code): XBOX+
lifting, one Gaussian direction per round, argsort, gathers into (chunks, Cq, d) / (chunks, Ck, d)
tensors, batched matmuls inside clusters, logsumexp, scatter back, combine rounds with a softmax
over the per-round lse. Autograd provides the backward. Debian's torch 1.13 has no fused attention,
so dense attention materialises the (N, N) matrix.

The hash directions come from torch.Generator, not from our Philox stream, so the clusters differ
from the C++ kernels for the same seed; this file is a speed baseline and a second implementation
of the algorithm, not a bit-exact oracle.

usage:
  smyrf_torch.py BH N D dense PASS                  PASS: fwd | fwd+bwd
  smyrf_torch.py BH N D smyrf N_HASHES CLUSTER PASS
  smyrf_torch.py --check                            self-test (one cluster == dense, log M oracle)
Prints one JSON line in the units of `smyrf bench attention --json`.
"""
import json
import math
import statistics
import sys
import time

import torch


def dense_attention(q, k, v, scale=None, bias=None):
    """softmax(scale * q k^T + bias) v for (BH, Nq, d), (BH, Nk, d), (BH, Nk, dv)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = torch.bmm(q, k.transpose(1, 2)) * scale
    if bias is not None:
        s = s + bias
    return torch.bmm(torch.softmax(s, dim=-1), v)


def _hash_directions(n_hashes, dim, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_hashes, dim, generator=gen, dtype=torch.float64).to(dtype)


@torch.no_grad()
def smyrf_clusters(q, k, n_hashes, seed=0):
    """Sorted token indices per round: (R, BH, Nq) and (R, BH, Nk). XBOX+ lifting, then the
    projection on one Gaussian direction per round, then a stable argsort."""
    bh, nq, d = q.shape
    qn2 = (q.double() ** 2).sum(-1)  # (BH, Nq)
    kn2 = (k.double() ** 2).sum(-1)
    m2 = qn2.max(dim=1, keepdim=True).values + kn2.max(dim=1, keepdim=True).values
    a = _hash_directions(n_hashes, d + 2, seed, torch.float64)  # (R, d + 2)
    proj_q = torch.einsum("bnd,rd->rbn", q.double(), a[:, :d])
    proj_k = torch.einsum("bnd,rd->rbn", k.double(), a[:, :d])
    hq = proj_q + a[:, d + 1, None, None] * (m2 - qn2).clamp_min(0).sqrt()[None]
    hk = proj_k + a[:, d, None, None] * (m2 - kn2).clamp_min(0).sqrt()[None]
    return torch.sort(hq, dim=-1, stable=True).indices, torch.sort(hk, dim=-1, stable=True).indices


def _pad_rows(x, rows):
    """Append zero rows along dim 1 up to `rows`."""
    extra = rows - x.shape[1]
    if extra == 0:
        return x
    return torch.cat([x, x.new_zeros(x.shape[0], extra, x.shape[2])], dim=1)


def smyrf_attention(q, k, v, n_hashes, cq, ck, scale=None, seed=0, return_lse=False):
    """SMYRF attention of (BH, Nq, d) queries to (BH, Nk, d) keys and (BH, Nk, dv) values.
    Requires ceil(Nq/Cq) == ceil(Nk/Ck); tail chunks are padded with masked keys."""
    bh, nq, d = q.shape
    nk, dv = k.shape[1], v.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    nc = -(-nq // cq)
    if nc != -(-nk // ck):
        raise ValueError(f"[smyrf_attention] ceil(Nq/Cq) != ceil(Nk/Ck): Nq={nq} Cq={cq} Nk={nk} Ck={ck}")
    q_idx, k_idx = smyrf_clusters(q, k, n_hashes, seed)  # (R, BH, N)
    r = n_hashes
    # gather sorted copies for every round: (R * BH, N, d)
    qs = q.unsqueeze(0).expand(r, -1, -1, -1).gather(2, q_idx[..., None].expand(-1, -1, -1, d))
    ks = k.unsqueeze(0).expand(r, -1, -1, -1).gather(2, k_idx[..., None].expand(-1, -1, -1, d))
    vs = v.unsqueeze(0).expand(r, -1, -1, -1).gather(2, k_idx[..., None].expand(-1, -1, -1, dv))
    qs, ks, vs = (x.reshape(r * bh, x.shape[2], x.shape[3]) for x in (qs, ks, vs))
    qs, ks, vs = _pad_rows(qs, nc * cq), _pad_rows(ks, nc * ck), _pad_rows(vs, nc * ck)
    qc = qs.reshape(r * bh * nc, cq, d)
    kc = ks.reshape(r * bh * nc, ck, d)
    vc = vs.reshape(r * bh * nc, ck, dv)
    s = torch.bmm(qc, kc.transpose(1, 2)) * scale  # (R*BH*nc, Cq, Ck)
    if nk < nc * ck:  # padded keys in the tail chunk
        real = (torch.arange(nc * ck) < nk).reshape(1, nc, 1, ck).expand(r * bh, -1, -1, -1)
        s = s.masked_fill(~real.reshape(r * bh * nc, 1, ck), float("-inf"))
    lse = torch.logsumexp(s, dim=-1, keepdim=True)
    o = torch.bmm(torch.exp(s - lse), vc)  # (R*BH*nc, Cq, dv)
    o = o.reshape(r, bh, nc * cq, dv)[:, :, :nq]
    lse = lse.reshape(r, bh, nc * cq)[:, :, :nq]
    # scatter back to the original token order
    o = torch.empty_like(o).scatter(2, q_idx[..., None].expand(-1, -1, -1, dv), o)
    lse = torch.empty_like(lse).scatter(2, q_idx, lse)
    total = torch.logsumexp(lse, dim=0)  # (BH, Nq)
    out = (torch.exp(lse - total)[..., None] * o).sum(0)
    return (out, total) if return_lse else out


@torch.no_grad()
def multiplicity(q, k, n_hashes, cq, ck, seed=0):
    """M (BH, Nq, Nk): rounds in which query i and key j share a cluster."""
    q_idx, k_idx = smyrf_clusters(q, k, n_hashes, seed)
    bh, nq, nk = q.shape[0], q.shape[1], k.shape[1]
    qc = torch.empty_like(q_idx).scatter(2, q_idx, (torch.arange(nq) // cq).expand_as(q_idx))
    kc = torch.empty_like(k_idx).scatter(2, k_idx, (torch.arange(nk) // ck).expand_as(k_idx))
    return (qc[..., :, None] == kc[..., None, :]).sum(0)


def self_check():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, n, 8, dtype=torch.float64, requires_grad=True) for n in (40, 10, 10))
    # one cluster == dense, for any number of rounds
    a = smyrf_attention(q, k, v, n_hashes=3, cq=40, ck=10)
    b = dense_attention(q, k, v)
    assert torch.allclose(a, b, atol=1e-12), (a - b).abs().max()
    # log M oracle, forward and gradients, with Nq = 4 Nk and padded tail chunks
    q, k, v = (torch.randn(2, n, 8, dtype=torch.float64, requires_grad=True) for n in (50, 13, 13))
    g = torch.randn(2, 50, 8, dtype=torch.float64)
    out = smyrf_attention(q, k, v, n_hashes=4, cq=8, ck=2, seed=5)
    m = multiplicity(q, k, 4, 8, 2, seed=5).double()
    ref = dense_attention(q, k, v, bias=torch.log(m))
    gs = torch.autograd.grad(out, (q, k, v), g)
    gr = torch.autograd.grad(ref, (q, k, v), g)
    assert torch.allclose(out, ref, atol=1e-12), (out - ref).abs().max()
    for x, y in zip(gs, gr):
        assert torch.allclose(x, y, atol=1e-12), (x - y).abs().max()
    print(json.dumps({"check": "ok"}))


def peak_added_mib(fn):
    """Peak resident memory fn adds, MiB (as `smyrf bench attention`: reset VmHWM through
    /proc/self/clear_refs, VmHWM after minus VmRSS before); -1 where the reset is refused."""
    def read(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return float(line.split()[1])
        return -1.0
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return -1.0
    base = read("VmRSS:")
    fn()
    return (read("VmHWM:") - base) / 1024.0


def pin_mmap_threshold():
    """Buffers above 64 KiB are mmapped and unmapped on free (glibc would otherwise keep freed
    pages mapped after raising its threshold), so RSS follows live memory; same as our bench."""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD


def time_fn(fn):
    for _ in range(2):
        fn()
    times = []
    while len(times) < 3 or sum(times) < 300.0:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 200:
            break
    return statistics.median(times), min(times)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        self_check()
        return
    bh, n, d = (int(x) for x in sys.argv[1:4])
    impl = sys.argv[4]
    torch.set_num_threads(2)
    if impl == "smyrf":
        n_hashes, cluster, mode = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
        name = f"torch-smyrf-{n_hashes}x{cluster}"
        attn = lambda q, k, v: smyrf_attention(q, k, v, n_hashes, cluster, cluster, seed=1234)
    else:
        n_hashes, cluster, mode = 0, 0, sys.argv[5]
        name = "torch-dense"
        attn = dense_attention
    torch.manual_seed(0)
    backward = mode == "fwd+bwd"
    q, k, v, g = (torch.randn(bh, n, d, requires_grad=backward) for _ in range(4))

    def run():
        if backward:
            out = attn(q, k, v)
            torch.autograd.grad(out, (q, k, v), g)
        else:
            with torch.no_grad():
                attn(q, k, v)

    pin_mmap_threshold()
    med, mn = time_fn(run)
    mib = peak_added_mib(run)
    print(json.dumps({"workload": "attention", "impl": name, "pass": mode, "batch_heads": bh,
                      "n": n, "d": d, "n_hashes": n_hashes, "cluster": cluster,
                      "median_ms": med, "min_ms": mn, "peak_mib": mib, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
