#!/bin/bash
# The CI gate's sensitivity (a benchmark, not a test; run it on a quiet machine):
#  1. detection: `acceptbench ab` of reuseport against reuseport with --work-us raised by WORK_US
#     (B's server spins WORK_US more per request: about +5% server CPU per connection at the
#     default 2 us, where reuseport costs about 45 us), at growing --rounds until the CPU row is
#     flagged (p < alpha after Holm): the rounds and the wall-clock time of that ab run;
#  2. false alarms: TRIES runs of ab of the same binary against itself at the default rounds,
#     counting the ones that flag anything (exit 1).
# Usage: scripts/gate_sensitivity.sh [BUILD_DIR=build] [WORK_US=2] [TRIES=5] [extra ab flags...]
# Environment: ROUNDS="4 6 8 ..." the detection attempts (one list: stops at the first flagged);
# SAME_ROUNDS=N the rounds of each false-alarm try (default 0: ab's automatic); KEEP=DIR keeps
# every ab folder there.
# Default load: the cost workload (open loop 4000/s), 2 server threads, 1 s windows after 0.3 s.
set -euo pipefail
build=${1:-build}
work_us=${2:-2}
tries=${3:-5}
shift $(($# < 3 ? $# : 3))
bin=$(cd "$build/bin" && pwd)
tmp=$(mktemp -d "/tmp/acceptbench-gate-$$-XXXX")
if [[ -n ${KEEP:-} ]]; then rmdir "$tmp"; mkdir -p "$KEEP"; tmp=$(cd "$KEEP" && pwd); else trap 'rm -rf "$tmp"' EXIT; fi
load=(--workloads cost --rates 4000 --server-threads 2 --duration 1 --warmup 0.3 "$@")

# B: reuseport with WORK_US added to its --work-us (the harness passes --work-us only when the
# configuration's work is above 0, so the wrapper adds the flag when it is absent).
mkdir -p "$tmp/b"
cat >"$tmp/b/reuseport" <<WRAP
#!/bin/bash
args=() work=0
while ((\$#)); do
  if [[ \$1 == --work-us ]]; then work=\$2; shift 2; else args+=("\$1"); shift; fi
done
exec "$bin/reuseport" "\${args[@]}" --work-us "\$((work + $work_us))"
WRAP
chmod +x "$tmp/b/reuseport"

row() {  # the verdict and ratio of server CPU per connection from an ab folder
  "$bin/acceptbench" compare "$1/A.json" "$1/B.json" --json "$1/rows.json" >/dev/null 2>&1 || true
  python3 -c "import json,sys
rows = json.load(open(sys.argv[1]))['rows']
r = [x for x in rows if x['metric'] == 'server_cpu_us_per_conn'][0]
print(f\"cpu/conn A {r['base_median']:.1f} us  B {r['new_median']:.1f} us  ratio {r['ratio']:.3f}  p {r['p_value']:.2g}  p(Holm) {r['p_holm']:.2g}  {r['verdict']}\")" "$1/rows.json"
}

echo "== detection: reuseport vs reuseport with --work-us +$work_us"
for rounds in ${ROUNDS:-4 6 8 10 12 16 20}; do
  out="$tmp/detect-$rounds"
  start=$(date +%s%N)
  rc=0
  "$bin/acceptbench" ab --a "$bin/reuseport" --b "$tmp/b/reuseport" --rounds "$rounds" "${load[@]}" --out "$out" \
    >"$out.log" 2>&1 || rc=$?
  secs=$((($(date +%s%N) - start) / 1000000000))
  printf 'rounds %2d: exit %d, %4d s (%d min %02d s)  %s\n' "$rounds" "$rc" "$secs" $((secs / 60)) $((secs % 60)) "$(row "$out")"
  [[ $rc == 1 ]] && grep -q REGRESSION "$out/compare.md" && { echo "flagged at $rounds rounds"; break; }
done

echo "== false alarms: reuseport vs itself, --rounds ${SAME_ROUNDS:-0}, $tries tries"
alarms=0
for i in $(seq "$tries"); do
  out="$tmp/same-$i"
  start=$(date +%s%N)
  rc=0
  "$bin/acceptbench" ab --a "$bin/reuseport" --b "$bin/reuseport" --rounds "${SAME_ROUNDS:-0}" "${load[@]}" --out "$out" >"$out.log" 2>&1 || rc=$?
  secs=$((($(date +%s%N) - start) / 1000000000))
  [[ $rc == 1 ]] && alarms=$((alarms + 1))
  printf 'try %d: exit %d, %4d s  %s\n' "$i" "$rc" "$secs" "$(row "$out")"
done
echo "false alarms: $alarms of $tries"
