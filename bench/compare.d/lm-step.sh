# bench/compare lm-step: one GPT/BERT training step, ours (smyrf bench lm-step) against the same
# model in PyTorch (bench/reference/gpt_torch.py), interleaved case by case for ROUNDS rounds.
# SMYRF cases are compared with PyTorch's dense attention at the same model and context (PyTorch
# 1.13 has no clustered attention). SHAPES filters cases by name (gpt-256-dense,...). LM_THREADS
# (default 2) sets both sides' thread count: LM_THREADS=1 compares the work each side does on a
# loaded host, where two-thread runs mostly measure the other jobs and OpenMP spin-waiting.

lm_step_ours() {
  "$SMYRF_BIN" bench lm-step --json --repeats 2 --threads "${LM_THREADS:-2}" --shapes "$1"
}
lm_step_torch() {  # the dense twin of a case: same model and context
  OPENBLAS_NUM_THREADS="${LM_THREADS:-2}" "$PY" "$ROOT/bench/reference/gpt_torch.py" \
    --repeats 2 --threads "${LM_THREADS:-2}" "${1%-*}-dense"
}

compare_lm_step() {
  local cases=(gpt-256-dense gpt-1024-dense gpt-1024-smyrf gpt-4096-dense gpt-4096-smyrf
               bert-1024-dense bert-1024-smyrf)
  if [[ -n "${SHAPES:-}" ]]; then cases=(${SHAPES//,/ }); fi
  local results
  results="$(mktemp)"
  run_twin_rounds "$results" lm_step_ours lm_step_torch "${cases[@]}"
  summarize_twins "$results" <<'PYEOF'
print("\nlm-step: tokens/s per training step (fwd + loss + bwd + AdamW), medians over rounds;")
print("PyTorch runs dense attention (its twin of a SMYRF case is the dense model, same context).")
print("'ours step MiB': resident memory one step adds with the mmap threshold pinned (every")
print("buffer returned to the OS); PyTorch's allocator keeps freed pages, so its figure in the JSON")
print("(torch_peak_step_mib) only shows growth beyond the warm-up step and is not comparable.")
print("'cpu torch/ours': CPU time per step (user + system, all threads), PyTorch's over ours;")
print("it counts OpenMP spin-waiting too, so on a loaded host compare with LM_THREADS=1.")
hdr = (f"{'case':>16} | {'ours tok/s':>10} | {'torch tok/s':>11} | {'ours/torch':>10} | "
       f"{'cpu torch/ours':>14} | {'ours step MiB':>13}")
print(hdr)
print("-" * len(hdr))
out = []
for c in order:
    o, t = runs[c]["ours"], runs[c]["torch"]
    ot, tt = med(o, "tokens_per_s"), med(t, "tokens_per_s")
    om, tm = med(o, "peak_step_mib"), med(t, "peak_step_mib")
    # CPU time per step (all threads): on a loaded host the wall-time ratio mostly measures the
    # other jobs; the CPU-time ratio still compares the work each side does
    oc, tc = med(o, "cpu_ms_per_step"), med(t, "cpu_ms_per_step")
    print(f"{c:>16} | {ot:10.0f} | {tt:11.0f} | {ot / tt:10.2f} | {tc / oc:14.2f} | {om:13.0f}")
    out.append({"workload": "lm-step", "shape": c, "ours_tokens_per_s": round(ot, 1),
                "torch_tokens_per_s": round(tt, 1), "ratio_vs_torch": round(ot / tt, 3),
                "ours_cpu_ms_per_step": round(oc, 1), "torch_cpu_ms_per_step": round(tc, 1),
                "ours_peak_step_mib": round(om, 1), "torch_peak_step_mib": round(tm, 1),
                "attn_pairs_ratio": o[0].get("attn_pairs_ratio"), "rounds": len(o)})
print()
for l in out:
    print(json.dumps(l))
PYEOF
  rm -f "$results"
}
