#!/usr/bin/env bash
# Runs one end-to-end test file against a real `pictor serve` with tiny random-weight models.
#   tests/e2e/run.sh PATH/TO/pictor openai_client|browser
# Exit 77 (CTest SKIP_RETURN_CODE) when Node.js >= 20, or Chromium for the browser test, is missing.
# Screenshots and the server log go to $PICTOR_E2E_ARTIFACTS (default build/e2e-artifacts).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PICTOR="${1:?usage: run.sh PICTOR_BINARY openai_client|browser}"
NAME="${2:?usage: run.sh PICTOR_BINARY openai_client|browser}"
TEST_FILE="$HERE/$NAME.test.mjs"
[ -f "$TEST_FILE" ] || { echo "e2e: no test file $TEST_FILE"; exit 2; }

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "e2e: SKIPPED: Node.js >= 20 not found (install it, then run scripts/setup.sh)"
  exit 77
fi
export PICTOR_CHROMIUM="${PICTOR_CHROMIUM:-/usr/bin/chromium}"
if [ "$NAME" = browser ] && [ ! -x "$PICTOR_CHROMIUM" ]; then
  echo "e2e: SKIPPED: Chromium not found at $PICTOR_CHROMIUM (scripts/setup.sh installs the Debian package)"
  exit 77
fi
if [ ! -d "$HERE/node_modules/openai" ] || [ ! -d "$HERE/node_modules/playwright-core" ]; then
  echo "e2e: tests/e2e/node_modules is missing: run scripts/setup.sh (it runs npm ci there)"
  exit 1
fi

ARTIFACTS="${PICTOR_E2E_ARTIFACTS:-$(cd "$HERE/../.." && pwd)/build/e2e-artifacts}/$NAME"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pictor-e2e-$NAME.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  cp "$WORK/server.log" "$ARTIFACTS/server.log" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Tiny random-weight models: a Stable Diffusion pipeline with a TAESD for previews, and a SmolVLM.
# The TAESD folder stays outside the models folder so the catalog does not list it as a model.
"$PICTOR" dev make-tiny-sd "$WORK/models/tiny-sd" --taesd "$WORK/taesd" >/dev/null
"$PICTOR" dev make-tiny-vlm "$WORK/models/tiny-vlm" >/dev/null

# Port 0: the server binds any free port and writes it to --port-file once it listens.
SERVE_ARGS=(--host 127.0.0.1 --port 0 --port-file "$WORK/port" --models "$WORK/models" --data "$WORK/data"
            --taesd "$WORK/taesd" --threads 2)
if [ "$NAME" = openai_client ]; then
  # The OpenAI client test runs against a protected server (the SDK always sends a key).
  export PICTOR_API_KEY="e2e-tester:sk-e2e-$RANDOM$RANDOM"
  SERVE_ARGS+=(--api-key "$PICTOR_API_KEY")
  export PICTOR_API_KEY="${PICTOR_API_KEY#*:}"
fi
"$PICTOR" serve "${SERVE_ARGS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 600); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "e2e: pictor serve exited early:"; cat "$WORK/server.log"; exit 1
  fi
  [ -s "$WORK/port" ] || { sleep 0.1; continue; }
  export PICTOR_URL="http://127.0.0.1:$(cat "$WORK/port")"
  node -e 'fetch(process.env.PICTOR_URL + "/health").then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    2>/dev/null && break
  sleep 0.1
done
[ -n "${PICTOR_URL:-}" ] && node -e 'fetch(process.env.PICTOR_URL + "/health").then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
  || { echo "e2e: server did not become healthy in 60 s"; cat "$WORK/server.log"; exit 1; }

export PICTOR_E2E_ARTIFACTS_DIR="$ARTIFACTS"
cd "$HERE"
status=0
node --test --test-reporter=spec "$TEST_FILE" || status=$?
if [ "$status" -ne 0 ]; then
  echo "e2e: server log (last 60 lines):"; tail -n 60 "$WORK/server.log"
fi
echo "e2e: artefacts in $ARTIFACTS"
exit "$status"
