#!/usr/bin/env bash
# Soak: each multi-acceptor model (--threads 2) under a steady connection load for MINUTES
# (default 10), each with its own loadgen. Samples the server's zombie children, open
# descriptors and RSS before the run, after its first minute and at its end, and counts the
# loadgen's errors. Zombies and descriptors must stay flat, RSS within 1 MB of its value at
# the first minute, and there must be no client errors; the exit status says whether all did.
# Loopback only; every run is bounded by --duration.
#
# By default the models run one after another (server on CPU 1, loadgen on CPU 0, closed loop
# of 32 connections: the highest rate). With --parallel they all run at the same time, so that
# ten 10-minute soaks take 10 minutes: model i's server on CPU i%2 and its loadgen on the
# other one, each loadgen an open loop at --rate connections/s (default 300) so that the
# machine is shared evenly and every server gets a steady load. This checks behaviour (leaks,
# zombies, errors), not speed: its rates mean nothing.
#
# Usage: scripts/soak.sh [--parallel] [--rate N] [MINUTES (may be fractional)] [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
parallel=0
rate=300
while (($#)); do
  case $1 in
    --parallel) parallel=1; shift ;;
    --rate) rate=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
minutes=${1:-10}
shift || true
bin=build/bin
models=("$@")
if ((${#models[@]} == 0)); then
  mapfile -t models < <(/usr/bin/python3 -c 'import json; [print(m["id"]) for m in json.load(open("build/bin/models.json"))["models"] if m["acceptors"] != "one"]')
fi
seconds=$(awk -v m="$minutes" 'BEGIN {print int(m * 60 + 0.5)}')
((seconds >= 60)) || { echo "error: a soak needs at least 1 minute (RSS is compared from the first minute on)" >&2; exit 2; }
work=$(mktemp -d)
cleanup() {  # servers still running (interrupted): stop them
  for f in "$work"/*.pid; do [[ -e $f ]] && kill -TERM "$(cat "$f")" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

snapshot() {  # pid -> "zombies fds rss_kb"
  local pid=$1 z=0
  for s in /proc/[0-9]*/stat; do
    read -r -a f 2>/dev/null <"$s" || continue
    [[ ${f[3]:-} == "$pid" && ${f[2]:-} == Z ]] && z=$((z + 1))
  done
  echo "$z $(ls /proc/"$pid"/fd | wc -l) $(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status)"
}

# One model's soak; writes "model zomb0 fds0 zomb1 fds1 rss_1min rss_end conns errors kinds" to $work/<model>.row
soak_one() {
  local m=$1 server_cpu=$2 client_cpu=$3 load=("${@:4}")
  local out=$work/$m.out
  taskset -c "$server_cpu" "$bin/$m" --threads 2 >"$out" &
  local pid=$!
  echo "$pid" >"$work/$m.pid"
  for _ in $(seq 200); do grep -q READY "$out" && break; sleep 0.05; done
  local port
  port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")
  [[ -n $port ]] || { echo "$m no-READY" >"$work/$m.row"; return; }
  # Warm-up, then the first sample.
  taskset -c "$client_cpu" "$bin/loadgen" --target "127.0.0.1:$port" "${load[@]}" --duration 5 --quiet >/dev/null || true
  local start one end
  start=$(snapshot "$pid")
  taskset -c "$client_cpu" "$bin/loadgen" --target "127.0.0.1:$port" "${load[@]}" --duration "$seconds" --quiet \
    --json "$out.json" >/dev/null &
  local lg=$!
  sleep 60
  one=$(snapshot "$pid")
  wait "$lg" || true
  sleep 1
  end=$(snapshot "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$work/$m.pid"
  local conns errors kinds
  read -r conns errors kinds < <(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); e=d["errors"]; print(d["connections"], e["total"], ",".join(f"{k}={v}" for k, v in e.items() if k != "total" and v) or "-")' "$out.json")
  read -r z0 f0 _ <<<"$start"
  read -r _ _ r1 <<<"$one"
  read -r z1 f1 r2 <<<"$end"
  echo "$m $z0 $f0 $z1 $f1 $r1 $r2 $conns $errors $kinds" >"$work/$m.row"
}

if ((parallel)); then
  i=0
  for m in "${models[@]}"; do
    soak_one "$m" $((i % 2)) $(((i + 1) % 2)) --rate "$rate" --threads 1 &
    i=$((i + 1))
  done
  wait
else
  for m in "${models[@]}"; do soak_one "$m" 1 0 --connections 32; done
fi

printf '%-18s %6s %6s | %6s %6s | %10s %10s %8s | %12s %7s | %s\n' \
  model zomb0 zomb1 fds0 fds1 rss_1min_kb rss_end_kb drss_kb connections errors verdict
status=0
for m in "${models[@]}"; do
  read -r _ z0 f0 z1 f1 r1 r2 conns errors kinds <"$work/$m.row" || true
  if [[ -z ${errors:-} ]]; then
    printf '%-18s %s\n' "$m" "FAIL (did not start or finish)"; status=1; continue
  fi
  verdict=ok
  ((z1 <= z0)) || verdict="FAIL zombies"
  ((f1 <= f0)) || verdict="FAIL descriptors"
  (((r2 - r1) <= 1024)) || verdict="FAIL rss"
  ((errors == 0)) || verdict="FAIL client errors ($kinds)"
  [[ $verdict == ok ]] || status=1
  printf '%-18s %6s %6s | %6s %6s | %10s %10s %8s | %12s %7s | %s\n' \
    "$m" "$z0" "$z1" "$f0" "$f1" "$r1" "$r2" $((r2 - r1)) "$conns" "$errors" "$verdict"
done
exit $status
