# shellcheck shell=bash
# bench/compare attention-cuda (sourced by bench/compare, and by scripts/gpu-check directly):
# our CUDA attention (`smyrf bench attention --device cuda`: bfloat16 on the tensor-core kernels,
# float32 on the CUDA-core ones) against PyTorch on the same GPU
# (bench/reference/attention_cuda_torch.py: scaled_dot_product_attention pinned to FlashAttention
# for bfloat16 / memory-efficient for float32, and the PyTorch SMYRF of smyrf_torch.py on the GPU).
#
# Environment:
#   ATTN_CUDA_SHAPES   BHxNxD cases (default: the issue's targets, see below)
#   ATTN_CUDA_DTYPES   bfloat16,float32 subset (default bfloat16)
#   ATTN_CUDA_IMPLS    ours: dense,smyrf-4x64,smyrf-4x256 subset (default dense,smyrf-4x256);
#                      PyTorch runs flash plus the same SMYRF configurations
#   ATTN_CUDA_BUDGET_S seconds for each side per round (default 120)
#   ATTN_CUDA_ROUNDS   rounds, each ours then PyTorch (default 1: GPU timings do not drift like
#                      the shared CPU host's; medians over rounds otherwise)
#   ATTN_CUDA_PY       the Python with CUDA-enabled torch (default: the first of python3 on PATH
#                      and /usr/bin/python3 whose torch sees a GPU)
# Without a GPU our side prints the CLI's error; without a CUDA-enabled torch the PyTorch side
# says so (one "skipped" line) and the table shows our rows only. Nothing is installed.
#
# The table: per case and pass, our ms, PyTorch FlashAttention ms and PyTorch SMYRF ms, and the
# ratios (above 1: we are faster), then the issue's targets evaluated on the measured rows:
#   SMYRF (4, 256), N 16384, bf16, fwd+bwd >= 3x PyTorch FlashAttention and >= 5x PyTorch SMYRF;
#   our dense within 2x of FlashAttention (ratio >= 0.5) at N >= 4096.

attention_cuda_default_shapes() {
  echo "8x4096x64,8x16384x64,32x16384x64,8x16384x128,32x4096x128,8x65536x64"
}

# The Python whose torch can use the GPU, or "" (the reason goes to stderr).
attention_cuda_python() {
  local cand
  for cand in ${ATTN_CUDA_PY:-} "$(command -v python3 || true)" /usr/bin/python3; do
    [[ -n "$cand" && -x "$cand" ]] || continue
    if "$cand" "$ROOT/bench/reference/attention_cuda_torch.py" --probe >/dev/null 2>&1; then
      echo "$cand"
      return 0
    fi
    echo "attention-cuda: $cand: $("$cand" "$ROOT/bench/reference/attention_cuda_torch.py" --probe 2>&1 | tail -1)" >&2
  done
  return 1
}

compare_attention_cuda() {
  local shapes="${ATTN_CUDA_SHAPES:-$(attention_cuda_default_shapes)}"
  local dtypes="${ATTN_CUDA_DTYPES:-bfloat16}" impls="${ATTN_CUDA_IMPLS:-dense,smyrf-4x256}"
  local budget="${ATTN_CUDA_BUDGET_S:-120}" rounds="${ATTN_CUDA_ROUNDS:-1}" round py results
  local torch_impls="flash" impl
  for impl in ${impls//,/ }; do [[ "$impl" == dense ]] || torch_impls+=",$impl"; done
  results="$(mktemp)"
  py="$(attention_cuda_python)" || py=""
  echo "attention-cuda: shapes $shapes, dtypes $dtypes, ours $impls, PyTorch $torch_impls"
  for ((round = 1; round <= rounds; round++)); do
    echo "round $round/$rounds: ours" >&2
    # timeouts: the benchmarks check their budget between cases; a hung kernel must not hang us
    SMYRF_ATTN_DTYPES="$dtypes" SMYRF_ATTN_IMPLS="$impls" SMYRF_ATTN_BUDGET_S="$budget" \
      timeout "$((budget + 60))" "$SMYRF_BIN" bench attention --device cuda --json --repeats 5 --shapes "$shapes" 2>&1 |
      sed 's/^/ours\t/' >>"$results" || true
    if [[ -n "$py" ]]; then
      echo "round $round/$rounds: PyTorch ($py)" >&2
      timeout "$((budget + 60))" "$py" "$ROOT/bench/reference/attention_cuda_torch.py" --shapes "$shapes" --dtype "$dtypes" \
        --impl "$torch_impls" --budget-s "$budget" 2>&1 | sed 's/^/torch\t/' >>"$results" || true
    elif ((round == 1)); then
      printf 'torch\t{"skipped": "no Python with CUDA-enabled torch found (set ATTN_CUDA_PY); PyTorch-on-GPU baselines not measured"}\n' >>"$results"
    fi
  done
  summarize_attention_cuda "$results"
  rm -f "$results"
}

summarize_attention_cuda() {  # results-file
  "${PY:-python3}" - "$1" <<'EOF'
import json, statistics, sys
runs, notes = {}, []
for line in open(sys.argv[1]):
    who, text = line.rstrip("\n").split("\t", 1)
    if not text.startswith("{"):
        if text.strip():
            notes.append(f"{who}: {text.strip()}")
        continue
    r = json.loads(text)
    if "skipped" in r:
        notes.append(f"{who} {r.get('impl', '')} BH={r.get('batch_heads', '-')} N={r.get('n', '-')} "
                     f"d={r.get('d', '-')} {r.get('dtype', '')} {r.get('pass', '')}: skipped "
                     f"({r['skipped']})")
        continue
    if r.get("workload") != "attention" or "median_ms" not in r:
        continue
    impl = r["impl"].replace("torch-", "")
    if impl.startswith("sdpa-"):
        impl = "flash"
    key = (r["batch_heads"], r["n"], r["d"], r["dtype"], r["pass"])
    runs.setdefault(key, {}).setdefault((who, impl), []).append((r["median_ms"], r.get("peak_mib", 0)))

med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
lines = []
print(f"{'BH':>3} {'N':>6} {'d':>4} {'dtype':>8} {'pass':>8} {'impl':>12} | {'ours ms':>9} "
      f"{'flash ms':>9} {'t-smyrf ms':>10} | {'vs flash':>8} {'vs t-smyrf':>10} | "
      f"{'ours MiB':>9} {'flash MiB':>9}")
for key in sorted(runs):
    bh, n, d, dtype, p = key
    v = runs[key]
    flash = v.get(("torch", "flash"))
    for (who, impl), xs in sorted(v.items()):
        if who != "ours":
            continue
        om = med(xs, 0)
        ts = v.get(("torch", impl)) if impl != "dense" else None
        fm = med(flash, 0) if flash else float("nan")
        tm = med(ts, 0) if ts else float("nan")
        vf, vt = fm / om, tm / om
        print(f"{bh:>3} {n:>6} {d:>4} {dtype:>8} {p:>8} {impl:>12} | {om:9.3f} {fm:9.3f} "
              f"{tm:10.3f} | {vf:8.2f} {vt:10.2f} | {med(xs, 1):9.1f} "
              f"{(med(flash, 1) if flash else float('nan')):9.1f}")
        lines.append({"workload": "attention-cuda", "batch_heads": bh, "n": n, "d": d,
                      "dtype": dtype, "pass": p, "impl": impl, "ours_ms": round(om, 4),
                      "torch_flash_ms": None if not flash else round(fm, 4),
                      "torch_smyrf_ms": None if not ts else round(tm, 4),
                      "ratio_vs_flash": None if not flash else round(vf, 3),
                      "ratio_vs_torch_smyrf": None if not ts else round(vt, 3),
                      "ours_peak_mib": round(med(xs, 1), 2), "rounds": len(xs)})

print("\ntargets (issue 5, H100):")
def target(desc, rows, field, need):
    if not rows:
        print(f"  {desc}: not measured")
        return
    for l in rows:
        got = l[field]
        verdict = "not measured" if got is None else ("met" if got >= need else "NOT met")
        print(f"  {desc} BH={l['batch_heads']} d={l['d']} N={l['n']}: {got} (need >= {need}): {verdict}")
smyrf_t = [l for l in lines if l["impl"] == "smyrf-4x256" and l["n"] == 16384
           and l["dtype"] == "bfloat16" and l["pass"] == "fwd+bwd"]
target("SMYRF 4x256 bf16 fwd+bwd vs FlashAttention", smyrf_t, "ratio_vs_flash", 3.0)
target("SMYRF 4x256 bf16 fwd+bwd vs PyTorch SMYRF", smyrf_t, "ratio_vs_torch_smyrf", 5.0)
dense_t = [l for l in lines if l["impl"] == "dense" and l["n"] >= 4096 and l["dtype"] == "bfloat16"]
target("dense bf16 vs FlashAttention (within 2x)", dense_t, "ratio_vs_flash", 0.5)
if notes:
    print("\nnotes:")
    for n_ in notes:
        print("  " + n_)
print()
for l in lines:
    print(json.dumps(l))
EOF
}
