#!/usr/bin/env bash
# Soak: each multi-acceptor model under a high connection rate for MINUTES (default 10),
# server on CPU 1 and loadgen on CPU 0. Reports, at the start and at the end of each run,
# the server's zombie children, open descriptors and RSS, and the loadgen errors. All must
# stay flat. Loopback only; every run is bounded by --duration.
# Usage: scripts/soak.sh [MINUTES (may be fractional)] [MODEL...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
shift || true
bin=build/bin
models=("$@")
if ((${#models[@]} == 0)); then
  mapfile -t models < <(/usr/bin/python3 -c 'import json; [print(m["id"]) for m in json.load(open("build/bin/models.json"))["models"] if m["acceptors"] != "one"]')
fi
snapshot() {  # pid -> "zombies fds rss_kb"
  local pid=$1 z=0
  for s in /proc/[0-9]*/stat; do
    read -r -a f <"$s" 2>/dev/null || continue
    [[ ${f[3]:-} == "$pid" && ${f[2]:-} == Z ]] && z=$((z + 1))
  done
  echo "$z $(ls /proc/"$pid"/fd | wc -l) $(awk '/^VmRSS/ {print $2}' /proc/"$pid"/status)"
}
printf '%-18s %8s %8s %10s | %8s %8s %10s | %10s %8s\n' model zomb0 fds0 rss0_kb zomb1 fds1 rss1_kb conn/s errors
for m in "${models[@]}"; do
  out=$(mktemp)
  taskset -c 1 "$bin/$m" --threads 2 >"$out" &
  pid=$!
  for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
  port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")
  taskset -c 0 "$bin/loadgen" --target "127.0.0.1:$port" --connections 8 --duration 5 --quiet >/dev/null
  start=$(snapshot "$pid")
  taskset -c 0 "$bin/loadgen" --target "127.0.0.1:$port" --connections 32 --duration "$(awk -v m="$minutes" 'BEGIN {print m * 60}')" --quiet \
    --json "$out.json" >/dev/null || true
  sleep 1
  end=$(snapshot "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  read -r rate errors < <(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(round(d["conn_per_s"]), d["errors"]["total"])' "$out.json")
  # shellcheck disable=SC2086
  printf '%-18s %8s %8s %10s | %8s %8s %10s | %10s %8s\n' "$m" $start $end "$rate" "$errors"
  rm -f "$out" "$out.json"
done
