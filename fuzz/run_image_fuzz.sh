#!/usr/bin/env bash
# run_image_fuzz.sh FUZZER SEEDER SECONDS: generates a seed corpus of PNG/JPEG/WebP samples with
# SEEDER, then fuzzes for a bounded time. Any crash, leak, timeout or sanitizer report fails.
set -eu
fuzzer=$1 seeder=$2 secs=$3
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
"$seeder" "$corpus"
"$fuzzer" -max_total_time="$secs" -max_len=65536 -timeout=20 -rss_limit_mb=4096 -malloc_limit_mb=1024 "$corpus"
