#!/usr/bin/env bash
# run_sentencepiece_fuzz.sh FUZZER SECONDS: seeds a corpus with small hand-written SentencePiece models
# (Unigram, BPE, byte fallback, user-defined pieces) and the golden tokenizer.model files when
# $PICTOR_GOLDEN is set, then fuzzes for a bounded time. Any crash or sanitizer report fails.
set -eu
fuzzer=$1 secs=$2
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
python3 - "$corpus" <<'PY'
import os, struct, sys
d = sys.argv[1]
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 5:
        return key + struct.pack("<f", payload)
    return key + varint(len(payload)) + payload
def piece(text, score, kind=1):
    return field(1, 2, field(1, 2, text.encode()) + field(2, 5, score) + field(3, 0, kind))
def model(model_type, byte_fallback, extra=()):
    pieces = [piece("<unk>", 0, 2), piece("<s>", 0, 3), piece("</s>", 0, 3)]
    if byte_fallback:
        pieces += [piece("<0x%02X>" % b, 0, 6) for b in range(256)]
    words = ["\u2581", "\u2581H", "e", "l", "o", "ll", "\u2581w", "or", "d", "He", "\u2581He", "llo", "\u2581world"]
    pieces += [piece(w, -float(i + 1)) for i, w in enumerate(words)]
    pieces += [piece(t, 0, k) for t, k in extra]
    trainer = field(3, 0, model_type) + field(4, 0, len(pieces)) + field(35, 0, int(byte_fallback))
    normalizer = field(1, 2, b"identity") + field(3, 0, 1) + field(4, 0, 1) + field(5, 0, 1)
    return b"".join(pieces) + field(2, 2, trainer) + field(3, 2, normalizer)
seeds = {
    "unigram": model(1, False),
    "unigram_bytes": model(1, True, [("<user>", 4), ("\u2581unused", 5)]),
    "bpe": model(2, False, [("<user>", 4), ("llo\u2581", 5)]),
    "bpe_bytes": model(2, True),
}
for name, blob in seeds.items():
    open(os.path.join(d, name), "wb").write(blob)
PY
golden=${PICTOR_GOLDEN:-}
if [ -n "$golden" ] && [ -d "$golden" ]; then
  find "$golden" -name 'tokenizer.model' -size -400k | head -4 | while read -r f; do
    cp "$f" "$corpus/golden_$(echo "$f" | md5sum | cut -c1-8).model"
  done
fi
exec "$fuzzer" -max_total_time="$secs" -max_len=300000 -timeout=20 -rss_limit_mb=2048 "$corpus"
