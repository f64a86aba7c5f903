#!/usr/bin/env bash
# The port-space check: loadgen at its highest rate against one reuseport worker for
# SECONDS (default 120) with the client closing first, so every connection leaves a
# TIME_WAIT on the client side. With source addresses spread over 127.0.0.0/8
# (IP_BIND_ADDRESS_NO_PORT) there must be zero EADDRNOTAVAIL ("no_address") errors.
# Loopback only; bounded by --duration. Prints the rate, the errors and the TIME_WAIT count.
# Usage: scripts/long_run.sh [SECONDS] [--no-spread]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
shift || true
out=$(mktemp)
taskset -c 1 build/bin/reuseport --threads 1 >"$out" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; rm -f "$out" "$out.json"' EXIT
for _ in $(seq 100); do grep -q READY "$out" && break; sleep 0.05; done
port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")
taskset -c 0 build/bin/loadgen --target "127.0.0.1:$port" --connections 64 --duration "$seconds" --close client \
  --quiet --json "$out.json" "$@"
tw=$(awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "tw") print $(i + 1)}' /proc/net/sockstat)
/usr/bin/python3 - "$out.json" "$tw" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["errors"]
print(f"{d['connections']} connections in {d['window_s']:.0f} s ({d['conn_per_s']:.0f}/s), "
      f"{d['source_addresses']} source addresses, TIME_WAIT now {sys.argv[2]}, "
      f"no_address (EADDRNOTAVAIL) {e['no_address']}, errors total {e['total']}")
sys.exit(1 if e["no_address"] else 0)
PY
