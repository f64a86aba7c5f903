#!/usr/bin/env bash
# Builds were done by CTest's caller: runs cost_model with a tiny minimum time, checks that
# its JSON is valid Google Benchmark output with every primitive, and that
# acceptbench attach-cost-model folds it into a results file (and refuses garbage).
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/cost_model" --benchmark_min_time=0.001 --benchmark_out="$tmp/cost.json" --benchmark_out_format=json >/dev/null
/usr/bin/python3 - "$tmp/cost.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
names = {b["name"].split("/")[0] for b in doc["benchmarks"]}
want = {"BM_ConnectAcceptClose", "BM_AcceptReadyBacklog", "BM_ForkExitWait", "BM_ThreadCreateJoin",
        "BM_MutexUncontended", "BM_MutexContended", "BM_HandoffMutexCondvar", "BM_HandoffEventfd",
        "BM_HandoffPipe", "BM_EpollWakeRoundTrip", "BM_AcceptWakeRoundTrip", "BM_ReuseportConnect", "BM_IoUringAccept"}
missing = want - names
assert not missing, f"missing benchmarks: {missing}"
for b in doc["benchmarks"]:
    assert b["real_time"] > 0 or "error_occurred" in b, b
print(f"ok: {len(doc['benchmarks'])} benchmarks")
PY
cp "$src/tests/fixtures/quick_results.json" "$tmp/results.json"
"$bin/acceptbench" attach-cost-model --results "$tmp/results.json" --cost-model "$tmp/cost.json"
/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['cost_model']['benchmarks'] and d['cost_model']['per_model']" "$tmp/results.json"
# The primitives each model pays are models.json's: a changed models.json changes them.
mkdir "$tmp/models"
/usr/bin/python3 - "$bin/models.json" "$tmp/models/models.json" "$tmp/results.json" <<'PY'
import json, sys
models = json.load(open(sys.argv[1]))
per_model = json.load(open(sys.argv[3]))["cost_model"]["per_model"]
assert per_model == {m["id"]: m["primitives"] for m in models["models"]}, per_model
models["models"][0]["primitives"] = ["BM_Changed"]
json.dump(models, open(sys.argv[2], "w"))
PY
"$bin/acceptbench" attach-cost-model --results "$tmp/results.json" --cost-model "$tmp/cost.json" --models-dir "$tmp/models"
/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); m=json.load(open(sys.argv[2]))['models'][0]['id']; assert d['cost_model']['per_model'][m] == ['BM_Changed']" "$tmp/results.json" "$tmp/models/models.json"
echo '{"nope": 1}' > "$tmp/bad.json"
if "$bin/acceptbench" attach-cost-model --results "$tmp/results.json" --cost-model "$tmp/bad.json" 2>"$tmp/err"; then
  echo "FAIL: garbage accepted"; exit 1
fi
grep -q "no benchmarks" "$tmp/err"
/usr/bin/python3 "$src/plots/plot.py" "$tmp/results.json" --out "$tmp/plots" >/dev/null
grep -q "Cost model" "$tmp/plots/report.md"
echo "ok: attached, refused garbage, reported"
