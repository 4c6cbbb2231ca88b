# bench/compare conv2d: the convolutions of the BigGAN configurations (smyrf bench conv2d) against
# torch.nn.functional.conv2d (bench/baselines/torch_conv.py), forward and forward+backward,
# interleaved case by case for ROUNDS rounds. SHAPES filters by case name (n32c32h32w32k32r3s1p1);
# THREADS sets both sides' thread count (default 2).

compare_conv2d() {
  local cases=(n32c32h8w8k32r3s1p1 n32c32h16w16k32r3s1p1 n32c32h32w32k32r3s1p1
               n32c32h16w16k32r1s1p0 n32c3h32w32k32r3s1p1 n32c32h32w32k3r3s1p1
               n32c128h4w4k128r3s1p1 n32c128h8w8k128r3s1p1 n32c128h16w16k128r3s1p1
               n32c128h32w32k128r3s1p1 n32c128h16w16k128r1s1p0
               n64c1h32w32k32r3s1p1 n64c32h32w32k32r3s1p1 n64c32h16w16k32r3s1p1
               n32c32h32w32k1r3s1p1 n32c128h32w32k3r3s1p1)
  if [[ -n "${SHAPES:-}" ]]; then cases=(${SHAPES//,/ }); fi
  local results round c threads="${THREADS:-2}"
  results="$(mktemp)"
  for ((round = 1; round <= ROUNDS; round++)); do
    echo "round $round/$ROUNDS" >&2
    for c in "${cases[@]}"; do
      "$SMYRF_BIN" bench conv2d --json --threads "$threads" --shapes "$c" | grep '^{' |
        sed 's/^/ours\t/' >>"$results"
      "$PY" "$ROOT/bench/baselines/torch_conv.py" --threads "$threads" "$c" | grep '^{' |
        sed 's/^/torch\t/' >>"$results"
    done
  done
  "$PY" - "$results" <<'PYEOF'
import json, statistics, sys
runs, order = {}, []
for line in open(sys.argv[1]):
    impl, js = line.rstrip("\n").split("\t", 1)
    r = json.loads(js)
    key = (r["shape"], r["pass"])
    if key not in runs:
        runs[key] = {}
        order.append(key)
    runs[key].setdefault(impl, []).append(r["median_ms"])
print("\nconv2d: median ms over rounds (batch in the name); speedup = torch ms / ours ms")
hdr = f"{'shape':>26} {'pass':>8} | {'ours ms':>9} | {'torch ms':>9} | {'speedup':>7}"
print(hdr)
print("-" * len(hdr))
out = []
for key in order:
    o, t = statistics.median(runs[key]["ours"]), statistics.median(runs[key]["torch"])
    print(f"{key[0]:>26} {key[1]:>8} | {o:9.3f} | {t:9.3f} | {t / o:7.2f}")
    out.append({"workload": "conv2d", "shape": key[0], "pass": key[1], "ours_ms": round(o, 4),
                "torch_ms": round(t, 4), "ratio_vs_torch": round(t / o, 3),
                "rounds": len(runs[key]["ours"])})
print()
for l in out:
    print(json.dumps(l))
PYEOF
  rm -f "$results"
}
