#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` builds it from this build folder, `dpkg-deb --info` shows
# Depends on the Debian runtime libraries (from dpkg-shlibdeps) and python3-matplotlib as a
# Recommends, and it holds the installed layout.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$1
out=$(mktemp -d "${TMPDIR:-/tmp}/acceptbench-deb-$$-XXXX")
trap 'rm -rf "$out"' EXIT
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log") || { cat "$out/cpack.log"; exit 1; }
debs=("$out"/acceptbench_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "no single acceptbench_*.deb in $out"; ls "$out"; exit 1; }
info=$(dpkg-deb --info "${debs[0]}")
echo "$info"
depends=$(dpkg-deb --field "${debs[0]}" Depends)
recommends=$(dpkg-deb --field "${debs[0]}" Recommends)
for lib in libfmt9 libboost-program-options1.74.0 liburing2 libstdc++6 libc6; do
  [[ ", $depends," == *", $lib "* || ", $depends," == *", $lib,"* ]] || { echo "Depends lacks $lib: $depends"; exit 1; }
done
[[ $recommends == *python3-matplotlib* ]] || { echo "Recommends lacks python3-matplotlib: $recommends"; exit 1; }
contents=$(dpkg-deb --contents "${debs[0]}")
for f in ./usr/bin/acceptbench ./usr/bin/loadgen ./usr/libexec/acceptbench/reuseport ./usr/share/acceptbench/models.json \
         ./usr/share/acceptbench/presets/quick.json ./usr/share/acceptbench/plot.py \
         ./usr/share/acceptbench/experiments.py ./usr/share/acceptbench/presets/c10k.json; do
  grep -q " $f\$" <<<"$contents" || { echo "package lacks $f"; exit 1; }
done
echo "package ok: ${debs[0]##*/}"
