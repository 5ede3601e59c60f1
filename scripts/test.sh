#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with CTest.
# Golden vectors are read from $PICTOR_GOLDEN (default ../shared/golden).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
export PICTOR_GOLDEN=${PICTOR_GOLDEN:-$(cd .. && pwd)/shared/golden}
[ -d "$PICTOR_GOLDEN" ] || echo "test: golden vectors not found at $PICTOR_GOLDEN; golden tests will fail"
cd "${PICTOR_BUILD_DIR:-build}"
ctest --output-on-failure -j 2 --timeout 1200 "$@"
