#!/usr/bin/env bash
# The worked CI job (scripts/ci_gate.sh) against two builds of the same tree: the build folder
# and a copy of the parts the gate needs (standing in for a second build: same tree, no second
# compile in the test command). Checks the published JUnit (parsed with xml.etree) and Markdown,
# and that the exit status agrees with the JUnit failures; then that ab with too few rounds exits 2
# with an error case in its JUnit. Speed is not asserted: two builds of
# one tree may differ under a busy machine, which the JUnit then shows.
# Usage: ci_gate_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/acceptbench-gate-$$-XXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/branch/bin"
cp -a "$build/bin/acceptbench" "$build/bin/reuseport" "$build/bin/models.json" "$build/bin/presets" "$tmp/branch/bin/"
status=0
GITHUB_STEP_SUMMARY="$tmp/summary.md" bash "$src/scripts/ci_gate.sh" --base-build "$build" --branch-build "$tmp/branch" \
  --models reuseport --out "$tmp/out" -- --workloads cost --rates 1000 --server-threads 1 --rounds 6 \
  --duration 0.3 --warmup 0.1 || status=$?
echo "ci_gate.sh exit $status"
[[ $status -eq 0 || $status -eq 1 ]] || exit 1
for f in junit.xml compare.md A.json B.json; do [[ -s $tmp/out/$f ]] || { echo "missing $f"; exit 1; }; done
cmp -s "$tmp/out/compare.md" "$tmp/summary.md" || { echo "the job summary is not compare.md"; exit 1; }
/usr/bin/python3 - "$tmp/out/junit.xml" "$status" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall("testsuite/testcase")
failures = [c for c in cases if c.find("failure") is not None]
assert len(cases) == 3, [c.attrib for c in cases]  # one configuration x conn/s, CPU/conn, p99
assert {c.get("name") for c in cases} == {"conn_per_s", "server_cpu_us_per_conn", "p99_total_us"}
assert all(c.get("classname").startswith("reuseport|cost|t1|rate1000") for c in cases)
assert int(root.get("failures")) == len(failures)
assert (len(failures) > 0) == (sys.argv[2] == "1"), (len(failures), sys.argv[2])
print(f"junit ok: {len(cases)} cases, {len(failures)} failures")
PY

# Too few rounds ever to reach significance (2 paired rounds: the smallest p is 2/4): ab exits 2 and its
# JUnit carries an error case saying why, so a CI report shows red rather than nothing.
status=0
"$build/bin/acceptbench" ab --a "$build" --b "$tmp/branch" --models reuseport --workloads cost --rates 1000 \
  --server-threads 1 --rounds 2 --duration 0.2 --warmup 0.1 --out "$tmp/few" --junit "$tmp/few/junit.xml" \
  >"$tmp/few.log" 2>&1 || status=$?
[[ $status -eq 2 ]] || { echo "ab with 2 rounds: exit $status, expected 2"; cat "$tmp/few.log"; exit 1; }
/usr/bin/python3 - "$tmp/few/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
errors = [c for c in root.findall("testsuite/testcase") if c.find("error") is not None]
assert [(c.get("classname"), c.get("name")) for c in errors] == [("acceptbench.compare", "decision")], errors
assert "cannot reach significance" in errors[0].find("error").get("message")
assert root.get("errors") == "1" and root.get("failures") == "0", root.attrib
print("junit ok: ab that cannot decide is an error case")
PY
