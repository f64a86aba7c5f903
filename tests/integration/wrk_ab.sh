#!/usr/bin/env bash
# wrk (keep-alive, and Connection: close) and ab drive one model for about a second each;
# any socket error, non-2xx response or failed request fails the test. Loopback only.
# Usage: wrk_ab.sh BIN_DIR MODEL
set -euo pipefail
bin=$1 model=$2
# Multi-acceptor models run with two acceptors (on 2 cores the default would hide a model
# that cannot take more than one). models.json is read as JSON, not grepped by line.
acceptors=$(python3 -c 'import json, sys
for m in json.load(open(sys.argv[1]))["models"]:
    if m["id"] == sys.argv[2]: print(m["acceptors"])' "$bin/models.json" "$model")
[[ -n $acceptors ]] || { echo "FAIL: $model is not in $bin/models.json"; exit 1; }
threads=()
want_threads=1
if [[ $acceptors != one ]]; then threads=(--threads 2); want_threads=2; fi

out=$(mktemp)
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
"$bin/$model" --port 0 "${threads[@]}" >"$out" &
pid=$!
for _ in $(seq 100); do grep -q '^READY' "$out" && break; sleep 0.05; done
port=$(sed -n 's/^READY port=\([0-9]*\).*/\1/p' "$out")
[[ -n $port ]] || { echo "no READY from $model"; exit 1; }
ready_threads=$(sed -n 's/^READY .* threads=\([0-9]*\).*/\1/p' "$out")
[[ $ready_threads == "$want_threads" ]] || { echo "FAIL: $model runs $ready_threads acceptors, wanted $want_threads"; exit 1; }
url="http://127.0.0.1:$port/"

fail=0
check_wrk() {
  local label=$1; shift
  local report
  report=$(timeout 20 wrk -t1 -c8 -d1s "$@" "$url" 2>&1)
  local reqs
  reqs=$(awk '/requests in/ {print $1}' <<<"$report")
  if grep -qE 'Socket errors|Non-2xx' <<<"$report" || [[ -z $reqs || $reqs -eq 0 ]]; then
    echo "FAIL wrk $label on $model:"; echo "$report"; fail=1
  else
    echo "ok   wrk $label on $model: $reqs requests, no errors"
  fi
}
check_wrk keep-alive
check_wrk close -H 'Connection: close'

report=$(timeout 30 ab -q -n 2000 -c 8 "$url" 2>&1)
if grep -qE '^Failed requests: +0$' <<<"$report" && grep -qE '^Complete requests: +2000$' <<<"$report" \
   && ! grep -q '^Non-2xx' <<<"$report"; then
  echo "ok   ab on $model: 2000 requests, 0 failed"
else
  echo "FAIL ab on $model:"; echo "$report"; fail=1
fi

kill -TERM "$pid"; wait "$pid"; rc=$?
stats=$(tail -n 1 "$out")
python3 -c 'import json,sys; json.loads(sys.argv[1])' "$stats" || { echo "FAIL: stats are not JSON: $stats"; fail=1; }
[[ $rc -eq 0 ]] || { echo "FAIL: exit $rc after SIGTERM"; fail=1; }
trap 'rm -f "$out"' EXIT
exit $fail
