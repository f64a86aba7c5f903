#!/usr/bin/env bash
# Builds the libFuzzer target for the HTTP request reader with clang (ASan + UBSan) and runs
# it for SECONDS (default 60) from the seed corpus in tests/fuzz/corpus. New inputs go to a
# scratch corpus, not into git. Exit non-zero on a crash (the reproducer is in the output dir).
# Usage: scripts/fuzz.sh [SECONDS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=${2:-build-fuzz}
mkdir -p "$out/corpus" "$out/artifacts"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I models/common -I base models/common/http.cpp models/common/http_core.cpp tests/fuzz/http_fuzz.cpp -lfmt -o "$out/http_fuzz"
"$out/http_fuzz" -max_total_time="$seconds" -max_len=20000 -timeout=5 \
  -artifact_prefix="$out/artifacts/" "$out/corpus" tests/fuzz/corpus 2>&1 | tail -n 5
echo "fuzz: ${seconds}s without a crash"
