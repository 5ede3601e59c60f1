#!/usr/bin/env bash
# Installs everything Pictor needs on Debian 12 (idempotent: installs only what is missing).
# Run as root, or as a user with sudo.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libtorch-dev            # the tensor engine (ATen), CPU build
  libopenblas0-pthread    # fast BLAS; the reference BLAS is 35-80x slower
  nlohmann-json3-dev      # JSON
  libcli11-dev            # command-line parsing
  libpng-dev libjpeg-dev libwebp-dev   # image codecs
  libcurl4-openssl-dev    # HTTPS downloads (pictor pull)
  libcpp-httplib-dev      # HTTP server (mock hub in tests, pictor serve)
  libsqlite3-dev          # storage
  libgtest-dev libgmock-dev   # tests
  clang libclang-rt-14-dev    # libFuzzer + sanitizers for the parser fuzz target
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# libtorch must use OpenBLAS, not the reference BLAS.
if [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
  $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1 || true
fi
echo "setup: all packages present"
