#!/usr/bin/env bash
# Runs `pictor dev conform` on one golden case folder, relative to $PICTOR_GOLDEN.
set -u
cli=$1 rel=$2
root=${PICTOR_GOLDEN:-$(dirname "$0")/../../shared/golden}
if [ ! -d "$root" ]; then
  echo "golden vectors not found at '$root': set PICTOR_GOLDEN to the golden folder (../shared/golden beside the repo)" >&2
  exit 1
fi
exec "$cli" dev conform "$root/$rel"
