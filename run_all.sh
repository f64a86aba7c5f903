#!/usr/bin/env bash
# The main job: installs what is missing, builds, runs the default matrix (about 12
# minutes on a 2-core machine; --quick: under 2), writes results/<run-id>/results.json,
# and draws the figures and the report beside it.
#
# --experiments: the named experiments instead (herd, skew, stall, c10k: acceptbench experiment
# NAME, about 20 minutes on 2 cores at 6 repetitions; with --quick their tiny presets, under a minute), into
# results/<run-id>-experiments/NAME.json, then one report with a section each and the
# "Which model when" table.
#
# Usage: ./run_all.sh [--quick] [--experiments] [--resume RESULTS.json] [extra acceptbench sweep flags...]
set -euo pipefail
cd "$(dirname "$0")"

preset=default
resume=()
extra=()
experiments=0
while (($#)); do
  case $1 in
    --quick) preset=quick ;;
    --resume) resume=(--resume --out "$2"); shift ;;
    --experiments) experiments=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) extra+=("$1") ;;
  esac
  shift
done

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2

if ((experiments)); then
  run_id=$(date -u +%Y%m%d-%H%M%S)-$(git rev-parse --short=8 HEAD 2>/dev/null || echo nogit)
  dir=results/$run_id-experiments
  start=$(date +%s)
  status=0
  files=()
  for name in herd skew stall c10k; do
    echo "run_all: experiment $name -> $dir/$name.json"
    build/bin/acceptbench experiment "$name" $([[ $preset == quick ]] && echo --quick) --no-report \
      --out "$dir/$name.json" "${extra[@]}" || status=$?
    [[ -f $dir/$name.json ]] && files+=("$dir/$name.json")
  done
  if ((${#files[@]})); then
    /usr/bin/python3 plots/plot.py "${files[@]}" --out "$dir" || status=$?
  fi
  echo "run_all: experiments took $(( $(date +%s) - start )) s; report $dir/report.html (and report.md, findings.json)"
  exit $status
fi

if ((${#resume[@]})); then
  out=${resume[2]}
else
  run_id=$(date -u +%Y%m%d-%H%M%S)-$(git rev-parse --short=8 HEAD 2>/dev/null || echo nogit)
  out=results/$run_id/results.json
  resume=(--out "$out")
fi

echo "run_all: preset $preset -> $out"
status=0
build/bin/acceptbench sweep --preset "$preset" "${resume[@]}" "${extra[@]}" || status=$?
if [[ $preset == default && -f $out ]]; then
  # Head-of-line blocking under slow clients, into the same results file.
  build/bin/acceptbench sweep --preset slowclient --resume --out "$out" "${extra[@]}" || status=$?
fi
if [[ -f $out ]]; then
  if [[ -x build/bin/cost_model ]]; then
    echo "run_all: cost model (Google Benchmark) ..."
    cost_json=$(dirname "$out")/cost_model.json
    if build/bin/cost_model --benchmark_out="$cost_json" --benchmark_out_format=json \
        --benchmark_min_time="$([[ $preset == quick ]] && echo 0.01 || echo 0.1)" >/dev/null; then
      build/bin/acceptbench attach-cost-model --results "$out" --cost-model "$cost_json" || status=$?
    fi
  fi
  /usr/bin/python3 plots/plot.py "$out" || status=$?
  echo "run_all: results $out"
  echo "run_all: report  $(dirname "$out")/report.html (and report.md)"
fi
exit $status
