#!/usr/bin/env bash
# Builds the suite with ASan + UBSan, and with TSan, each in its own build folder, and runs
# the unit, client, model and harness tests under each (the long end-to-end and benchmark
# tests are left to the plain build), with LeakSanitizer on under ASan. About 15 minutes
# on 2 cores.
# Usage: scripts/sanitize.sh [address|thread]...   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kinds=("$@")
((${#kinds[@]})) || kinds=(address thread)
status=0  # every kind runs; the exit status says whether all passed
for kind in "${kinds[@]}"; do
  dir=build-$kind
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACCEPTBENCH_SANITIZE="$kind" "${launcher[@]}"
  cmake --build "$dir" -j2
  # halt_on_error: the first report fails the test; servers, loadgen and the harness started
  # by the tests inherit it. LeakSanitizer is on (the servers run its check before _Exit);
  # scripts/lsan.supp lists third-party leaks, each with its reason.
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$dir" -j2 --output-on-failure -L 'unit|clients|models|harness' --timeout 600 \
    && echo "sanitize: $kind passed" || { echo "sanitize: $kind FAILED"; status=1; }
done
exit $status
