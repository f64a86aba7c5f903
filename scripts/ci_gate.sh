#!/usr/bin/env bash
# A worked example of a CI job that gates a merge on acceptbench: build the base and the
# branch (or take two build folders), run both interleaved in one job (`acceptbench ab`),
# publish JUnit XML (for the CI's test report) and Markdown (for the job summary).
#
# Usage: scripts/ci_gate.sh [options] [-- extra acceptbench ab flags]
#   --base-ref REF      build the base from git REF (default: main) in a temporary worktree
#   --base-build DIR    or take the base from a build folder (DIR/bin/acceptbench, models...)
#   --branch-build DIR  the branch's build folder (default: build this working tree into OUT/build-branch)
#   --models LIST       models to gate on, comma list (default: reuseport); only these are built
#   --out DIR           where to publish (default: ci-gate-out): junit.xml, compare.md, A.json, B.json
# The default ab flags measure the cost view (open loop at a fixed rate, see README "Measuring"):
#   --workloads cost --rates 2000 --server-threads 1 --rounds 6 --duration 1 --warmup 0.3
# Flags after `--` replace these defaults (--a, --b, --models, --out and --junit stay the gate's).
# Builds use ccache when it is installed. The job's exit status is ab's: 0 no regression,
# 1 a regression (the failed test cases in junit.xml say which), 2 bad input or no decision.
#
# GitLab:  script: scripts/ci_gate.sh --base-ref "$CI_MERGE_REQUEST_DIFF_BASE_SHA"
#          artifacts: { when: always, reports: { junit: ci-gate-out/junit.xml }, paths: [ci-gate-out/] }
# GitHub:  run: scripts/ci_gate.sh --base-ref origin/${{ github.base_ref }}   (compare.md goes to
#          $GITHUB_STEP_SUMMARY), then a JUnit reporter action on ci-gate-out/junit.xml
# Jenkins: sh 'scripts/ci_gate.sh --base-ref origin/main'; junit 'ci-gate-out/junit.xml'
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
base_ref=main base_build="" branch_build="" models=reuseport out=ci-gate-out
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --base-ref) base_ref=$2; shift 2 ;;
    --base-build) base_build=$2; shift 2 ;;
    --branch-build) branch_build=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "ci_gate.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Configures and builds only what the gate needs: the harness and the gated models.
build() {  # build SOURCE_DIR BUILD_DIR
  local launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$1}; fi
  cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release -DACCEPTBENCH_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  cmake --build "$2" -j"$(nproc)" --target acceptbench ${models//,/ }
}

cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
if [[ -z $base_build ]]; then
  worktree=$(mktemp -d "${TMPDIR:-/tmp}/acceptbench-base-$$-XXXX")
  git -C "$src" worktree add --detach --quiet "$worktree" "$base_ref"
  cleanup+=("git -C '$src' worktree remove --force '$worktree'")
  echo "ci_gate: building the base ($base_ref)" >&2
  build "$worktree" "$worktree/build"
  base_build=$worktree/build
fi
if [[ -z $branch_build ]]; then
  echo "ci_gate: building the branch ($src)" >&2
  build "$src" "$out/build-branch"
  branch_build=$out/build-branch
fi
for d in "$base_build" "$branch_build"; do
  [[ -x $d/bin/acceptbench ]] || { echo "ci_gate.sh: error: $d/bin/acceptbench is missing" >&2; exit 2; }
done

# The branch's harness runs both sides (A = base, B = branch), interleaved A B, B A, ...
ab_flags=(--workloads cost --rates 2000 --server-threads 1 --rounds 6 --duration 1 --warmup 0.3)
[[ $# -gt 0 ]] && ab_flags=("$@")
status=0
"$branch_build/bin/acceptbench" ab --a "$base_build" --b "$branch_build" --models "$models" \
  --out "$out" --junit "$out/junit.xml" "${ab_flags[@]}" || status=$?

# Publish: the files stay in $out (CI artifacts); the Markdown also goes to the job summary.
if [[ -f $out/compare.md ]]; then
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then cat "$out/compare.md" >>"$GITHUB_STEP_SUMMARY"; fi
  echo "ci_gate: junit $out/junit.xml, summary $out/compare.md, exit $status" >&2
fi
exit "$status"
