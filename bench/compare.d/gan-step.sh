# bench/compare gan-step: one full BigGAN training iteration (d_steps D steps, one G step, Adam,
# spectral norm, EMA), ours (smyrf bench gan-step) against the same G and D in PyTorch
# (bench/reference/biggan_torch.py), interleaved case by case for ROUNDS rounds. The SMYRF case
# (cpu) is compared with PyTorch's dense twin (cpu-dense): PyTorch 1.13 has no clustered
# attention. SHAPES filters cases by name (cpu,cpu-dense,ch32-attn16). REPEATS: timed iterations
# per process (default 2, after one warm-up iteration). THREADS: both sides' threads (default 2).

gan_step_ours() {
  "$SMYRF_BIN" bench gan-step --json --threads "${THREADS:-2}" --repeats "${REPEATS:-2}" \
    --shapes "$1"
}
gan_step_torch() {  # the SMYRF case (cpu) runs as its dense twin (cpu-dense)
  local twin="$1"
  [[ "$twin" == cpu ]] && twin=cpu-dense
  "$PY" "$ROOT/bench/reference/biggan_torch.py" --threads "${THREADS:-2}" \
    --repeats "${REPEATS:-2}" "$twin"
}

compare_gan_step() {
  local cases=(cpu cpu-dense ch32-attn16)
  if [[ -n "${SHAPES:-}" ]]; then cases=(${SHAPES//,/ }); fi
  local results
  results="$(mktemp)"
  run_twin_rounds "$results" gan_step_ours gan_step_torch "${cases[@]}"
  summarize_twins "$results" <<'PYEOF'
print("\ngan-step: images/s of one training iteration (D steps + G step + Adam + SN + EMA), batch 32,")
print(f"{runs[order[0]]['ours'][0]['threads']} threads, medians over rounds; PyTorch runs the dense twin of the SMYRF case (cpu).")
print("'cpu ratio': torch CPU ms / ours CPU ms per iteration, the load-independent figure with one")
print("thread on a shared host (wall time there includes preemption; with 2 threads CPU time also")
print("counts spinning, so use the images/s ratio on a quiet host).")
hdr = (f"{'case':>12} | {'ours img/s':>10} | {'torch img/s':>11} | {'ours/torch':>10} | "
       f"{'ours ms':>8} | {'torch ms':>8} | {'cpu ratio':>9} | {'params G/D (ours = torch)':>26}")
print(hdr)
print("-" * len(hdr))
out = []
for c in order:
    o, t = runs[c]["ours"], runs[c]["torch"]
    oi, ti = med(o, "images_per_s"), med(t, "images_per_s")
    same = (o[0]["g_parameters"] == t[0]["g_parameters"] and
            o[0]["d_parameters"] == t[0]["d_parameters"])
    params = f"{o[0]['g_parameters']}/{o[0]['d_parameters']} {'yes' if same else 'NO'}"
    print(f"{c:>12} | {oi:10.2f} | {ti:11.2f} | {oi / ti:10.2f} | {med(o, 'median_ms'):8.0f} | "
          f"{med(t, 'median_ms'):8.0f} | {med(t, 'cpu_ms') / med(o, 'cpu_ms'):9.2f} | {params:>26}")
    out.append({"workload": "gan-step", "shape": c, "ours_images_per_s": round(oi, 3),
                "torch_images_per_s": round(ti, 3), "ratio_vs_torch": round(oi / ti, 3),
                "ours_ms": round(med(o, "median_ms"), 1), "torch_ms": round(med(t, "median_ms"), 1),
                "ours_cpu_ms": round(med(o, "cpu_ms"), 1), "torch_cpu_ms": round(med(t, "cpu_ms"), 1),
                "cpu_ratio_vs_torch": round(med(t, "cpu_ms") / med(o, "cpu_ms"), 3),
                "torch_case": t[0]["shape"], "g_parameters": o[0]["g_parameters"],
                "d_parameters": o[0]["d_parameters"], "parameters_match": same,
                "rounds": len(o)})
print()
for l in out:
    print(json.dumps(l))
PYEOF
  rm -f "$results"
}
