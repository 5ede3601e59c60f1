#!/usr/bin/env bash
# Installs everything Pictor needs on Debian 12 (idempotent: installs only what is missing).
# Run as root, or as a user with sudo.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libtorch-dev            # the tensor engine (ATen), CPU build
  libopenblas0-openmp     # fast BLAS (35-80x the reference BLAS), sharing libtorch's OpenMP threads
  nlohmann-json3-dev      # JSON
  libcli11-dev            # command-line parsing
  libpng-dev libjpeg-dev libwebp-dev   # image codecs
  libcurl4-openssl-dev    # HTTPS downloads (pictor pull)
  libcpp-httplib-dev      # HTTP server (mock hub in tests, pictor serve)
  libsqlite3-dev          # storage
  libgtest-dev libgmock-dev   # tests
  clang libclang-rt-14-dev    # libFuzzer + sanitizers for the parser fuzz target
  chromium                    # the browser the end-to-end tests drive (tests/e2e)
  nodejs                      # runs the end-to-end tests (official openai client, playwright-core)
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
# libtorch must use OpenBLAS, not the reference BLAS, and the OpenMP build of it: the pthread build runs
# its own thread pool beside libtorch's OpenMP pool, and on 2 cores the two pools oversubscribe (measured:
# prefill 2.8x, decode 3.3x and the SD UNet 1.7x slower than with the OpenMP build). All three
# alternatives must point at the same build, or both get loaded.
OB=/usr/lib/x86_64-linux-gnu/openblas-openmp
for lib in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
  if [ -e "$OB/$lib" ]; then
    $SUDO update-alternatives --set "$lib-x86_64-linux-gnu" "$OB/$lib" >/dev/null
  fi
done
# End-to-end test dependencies (tests/e2e: the official OpenAI client and playwright-core). playwright-core
# downloads no browser: the tests launch the Debian chromium above. `npm ci` runs only when the lock file
# changed since the last install.
E2E_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
  lock_sum=$(sha256sum "$E2E_DIR/package-lock.json" | cut -d' ' -f1)
  stamp="$E2E_DIR/node_modules/.pictor-lock-sha256"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    echo "setup: npm ci in tests/e2e"
    (cd "$E2E_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" >"$stamp"
  fi
else
  echo "setup: Node.js >= 20 not found; the end-to-end tests (e2e.*) will be skipped"
fi
echo "setup: all packages present"
