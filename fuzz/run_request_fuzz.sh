#!/usr/bin/env bash
# run_request_fuzz.sh FUZZER SECONDS: seeds a corpus with well-formed chat requests, a data: URI and a
# prompt pair, then fuzzes for a bounded time. Any crash or sanitizer report fails.
set -eu
fuzzer=$1 secs=$2
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
printf '%s' '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}}]}],"max_tokens":20,"temperature":0.5,"stop":["\n"],"stream":true,"stream_options":{"include_usage":true}}' >"$corpus/chat"
printf '%s' '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},{"role":"assistant","content":"A cat."},{"role":"user","content":"Colour?"}],"seed":3,"top_p":0.9}' >"$corpus/multi"
printf '%s' 'data:image/png;base64,aGVsbG8gd29ybGQ=' >"$corpus/datauri"
printf '%s' 'a red cube on a table  a blue cube under a table' >"$corpus/prompts"
exec "$fuzzer" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 "$corpus"
