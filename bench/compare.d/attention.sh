# shellcheck shell=bash
# bench/compare attention (sourced by bench/compare): bench/attention_bench.cpp against
# bench/reference/smyrf_torch.py.
#
# Dense and SMYRF attention, d = 64, batch*heads in $ATTN_BH (default 1,8), N in $SHAPES (default
# 1024,2048,4096; the issue's full grid is SHAPES=1024,2048,4096,8192,16384), fwd and fwd+bwd.
# Per round, BH and N: our whole case (one process: dense and the three SMYRF configurations
# (2,32), (4,64), (8,128) through the autograd ops), then PyTorch dense and PyTorch SMYRF (the same
# algorithm written with gathers and bmm, autograd backward), each in its own process. PyTorch
# dense cases whose (BH, N, N) score matrices cannot fit in this machine's memory are skipped and
# listed as such (fwd+bwd keeps about three of them: 25 GB at BH 8, N 16384).
# Output: medians over rounds of ms and of the peak resident memory one call adds; ratios above 1
# mean we are faster (vs_same: PyTorch running the same algorithm; vs_dense: PyTorch dense, the
# speed-up a SMYRF user sees over plain attention); the exponents of time and memory in N fitted
# over N in 2048..16384 (where at least two such N were measured); and the approximation table
# (SMYRF vs dense: relative output error, q/k/v gradient cosine, Gaussian and clustered inputs).

# Bytes PyTorch dense attention needs for its score matrices (about three BH*N*N float32 for
# fwd+bwd, two for fwd) against the available memory; echoes "" when it fits, else the reason.
attention_torch_dense_skip() {  # bh n pass
  local bh="$1" n="$2" pass="$3" mats=2 need_gb avail_gb
  [[ "$pass" == fwd+bwd ]] && mats=3
  need_gb=$(((mats * bh * n * n * 4) / 1000000000))
  avail_gb=$(($(awk '/MemAvailable/ {print $2}' /proc/meminfo) / 1000000))
  if ((need_gb * 10 > avail_gb * 9)); then
    echo "needs ~${need_gb} GB of score matrices, ${avail_gb} GB available"
  fi
}

compare_attention() {
  local bhs="${ATTN_BH:-1,8}" lengths="${SHAPES:-1024,2048,4096}" results round n cfg pass bh
  local configs=("2 32" "4 64" "8 128") why
  results="$(mktemp)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  for ((round = 1; round <= ROUNDS; round++)); do
    for bh in ${bhs//,/ }; do
      for n in ${lengths//,/ }; do
        echo "round $round/$ROUNDS: BH=$bh N=$n" >&2
        "$SMYRF_BIN" bench attention --json --shapes "${bh}x$n" | grep '^{' |
          grep '"workload": "attention"' | sed 's/^/ours\t/' >>"$results"
        for pass in fwd fwd+bwd; do
          why="$(attention_torch_dense_skip "$bh" "$n" "$pass")"
          if [[ -n "$why" ]]; then
            printf 'skip\t{"batch_heads": %d, "n": %d, "impl": "dense", "pass": "%s", "why": "%s"}\n' \
              "$bh" "$n" "$pass" "$why" >>"$results"
          else
            printf 'torch\t%s\n' \
              "$("$PY" "$ROOT/bench/reference/smyrf_torch.py" "$bh" "$n" 64 dense "$pass")" \
              >>"$results"
          fi
          for cfg in "${configs[@]}"; do
            # shellcheck disable=SC2086  # cfg is "n_hashes cluster"
            printf 'torch\t%s\n' \
              "$("$PY" "$ROOT/bench/reference/smyrf_torch.py" "$bh" "$n" 64 smyrf $cfg "$pass")" \
              >>"$results"
          done
        done
      done
    done
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$SMYRF_BIN" bench attention --json --shapes approx | grep '^{' | sed 's/^/approx\t/' \
    >>"$results"
  summarize_attention "$results"
  rm -f "$results"
}

summarize_attention() {  # results-file
  "$PY" - "$1" <<'EOF'
import json, math, statistics, sys
runs, order, skipped, approx = {}, [], {}, []
for line in open(sys.argv[1]):
    who, js = line.rstrip("\n").split("\t", 1)
    r = json.loads(js)
    if who == "approx":
        approx.append(r)
        continue
    key = (r["batch_heads"], r["n"], r["impl"].replace("torch-", ""), r["pass"])
    if who == "skip":
        skipped[key] = r["why"]
    if key not in runs:
        runs[key] = {}
        order.append(key)
    if "median_ms" in r:
        runs[key].setdefault(who, []).append((r["median_ms"], r.get("peak_mib", -1)))
med = lambda v, i: statistics.median(x[i] for x in v) if v else float("nan")
div = lambda a, b: a / b if b == b and a == a and b > 0 else float("nan")
print("\nattention: medians over rounds of ms per call and of the peak MiB one call adds")
hdr = (f"{'BH':>3} {'N':>6} {'impl':>12} {'pass':>8} | {'ours ms':>9} {'torch ms':>9} "
       f"{'vs_same':>7} | {'torch dense':>11} {'vs_dense':>8} | {'ours MiB':>9} {'torch MiB':>9}")
print(hdr)
print("-" * len(hdr))
lines = []
for key in order:
    bh, n, impl, p = key
    o, t = runs[key].get("ours", []), runs[key].get("torch", [])
    td = runs.get((bh, n, "dense", p), {}).get("torch", [])
    om, tm, tdm = med(o, 0), med(t, 0), med(td, 0)
    vs_same, vs_dense = div(tm, om), div(tdm, om)
    print(f"{bh:>3} {n:>6} {impl:>12} {p:>8} | {om:9.2f} {tm:9.2f} {vs_same:7.2f} | {tdm:11.2f} "
          f"{vs_dense:8.2f} | {med(o, 1):9.1f} {med(t, 1):9.1f}")
    lines.append({"workload": "attention", "batch_heads": bh, "n": n, "impl": impl, "pass": p,
                  "ours_ms": round(om, 3), "torch_ms": round(tm, 3), "torch_dense_ms": round(tdm, 3),
                  "ratio_vs_torch_same": round(vs_same, 3), "ratio_vs_torch_dense": round(vs_dense, 3),
                  "ours_peak_mib": round(med(o, 1), 2), "torch_peak_mib": round(med(t, 1), 2),
                  "rounds": len(o)})
for key, why in skipped.items():
    print(f"torch dense BH={key[0]} N={key[1]} {key[3]}: skipped ({why})")

def slope(pts):  # least-squares exponent of y ~ x^e
    pts = [(math.log(x), math.log(y)) for x, y in pts if y > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx

print("\nexponent e of time ~ N^e and memory ~ N^e over N in 2048..16384 (medians above)")
print(f"{'who':>6} {'BH':>3} {'impl':>12} {'pass':>8} | {'N points':>8} {'time e':>7} {'mem e':>7}")
groups = {}
for (bh, n, impl, p), v in runs.items():
    for who in ("ours", "torch"):
        if v.get(who) and 2048 <= n <= 16384:
            groups.setdefault((who, bh, impl, p), []).append((n, med(v[who], 0), med(v[who], 1)))
for (who, bh, impl, p), pts in sorted(groups.items()):
    if len(pts) < 2:
        continue
    te, me = slope([(n, ms) for n, ms, _ in pts]), slope([(n, mb) for n, _, mb in pts])
    print(f"{who:>6} {bh:>3} {impl:>12} {p:>8} | {len(pts):>8} {te:7.2f} {me:7.2f}")
    lines.append({"workload": "attention-fit", "who": who, "batch_heads": bh, "impl": impl,
                  "pass": p, "n_points": len(pts), "time_exponent": round(te, 3),
                  "mem_exponent": round(me, 3)})

if approx:
    print(f"\napproximation vs dense attention (ours, BH {approx[0]['batch_heads']}, "
          f"N {approx[0]['n']}, d {approx[0]['d']}, float32)")
    print(f"{'inputs':>10} {'impl':>12} | {'out rel err':>11} {'dq cos':>7} {'dk cos':>7} "
          f"{'dv cos':>7}")
    for r in approx:
        print(f"{r['inputs']:>10} {r['impl']:>12} | {r['out_rel_err']:11.4f} {r['dq_cos']:7.4f} "
              f"{r['dk_cos']:7.4f} {r['dv_cos']:7.4f}")
print()
for l in lines:
    print(json.dumps(l))
for r in approx:
    print(json.dumps(r))
EOF
}
