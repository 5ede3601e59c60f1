#!/usr/bin/env bash
# run_fuzz.sh FUZZER SECONDS: seeds a corpus with small valid and broken safetensors files (and the
# golden ones when available), then fuzzes for a bounded time. Any crash or sanitizer report fails.
set -eu
fuzzer=$1 secs=$2
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
# A valid two-tensor file written by hand: F16 [2] and F32 [1].
python3 - "$corpus" <<'PY' 2>/dev/null || printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' >"$corpus/empty"
import json, struct, sys, os
d = sys.argv[1]
h = json.dumps({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}).encode()
open(os.path.join(d, "valid"), "wb").write(struct.pack("<Q", len(h)) + h + b"\x00\x3c\x00\xc0" + struct.pack("<f", 1.5))
PY
golden=${PICTOR_GOLDEN:-}
if [ -n "$golden" ] && [ -d "$golden" ]; then
  find "$golden" -name '*.safetensors' -size -200k | head -20 | while read -r f; do cp "$f" "$corpus/"; done
fi
exec "$fuzzer" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 "$corpus"
