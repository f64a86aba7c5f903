#!/usr/bin/env bash
# Installs every Debian package acceptbench needs, and nothing when all are present.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config dpkg-dev ccache
  libboost-dev libboost-program-options-dev libboost-math-dev
  libfmt-dev nlohmann-json3-dev libbenchmark-dev libbenchmark-tools libgtest-dev googletest
  liburing-dev clang libclang-rt-14-dev
  python3 python3-matplotlib python3-jsonschema
  wrk apache2-utils nghttp2-client curl iproute2 procps
  openssh-client openssh-server util-linux
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
