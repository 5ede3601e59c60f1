#!/usr/bin/env bash
# Configures and builds Pictor into build/ (Release). Extra args go to cmake configure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${PICTOR_BUILD_DIR:-build}
LAUNCHER=()
if command -v ccache >/dev/null; then
  # Precompiled headers are only cacheable with these settings (ccache manual, "Precompiled headers");
  # base_dir makes paths relative so separate checkouts share the cache.
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
  export CCACHE_NOHASHDIR=1
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_FLAGS=-fpch-preprocess)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${PICTOR_BUILD_TYPE:-Release} "${LAUNCHER[@]}" "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
