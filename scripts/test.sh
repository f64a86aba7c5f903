#!/usr/bin/env bash
# The test command: installs what is missing, builds (Release, -j2) and runs every test.
# Usage: scripts/test.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
bash scripts/setup.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j2
cd "$build"
ctest -j2 --output-on-failure --timeout 600
