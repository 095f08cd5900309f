#!/usr/bin/env bash
# `make demo`: starts confab-server on the demo config and the demo page, prints what to try.
set -euo pipefail
cd "$(dirname "$0")/.."

NATIVE=build/native-release
WASM=build/wasm-release
API_PORT=${CONFAB_DEMO_API_PORT:-8787}
PAGE_PORT=${CONFAB_DEMO_PAGE_PORT:-8080}
CORE_PORT=${CONFAB_DEMO_CORE_PORT:-8081}
WIDGET_PORT=${CONFAB_DEMO_WIDGET_PORT:-8082}
DATA_DIR=${CONFAB_DEMO_DATA_DIR:-build/demo-data}
PID_FILE="$DATA_DIR/demo.pid"
mkdir -p "$DATA_DIR"

# A demo already running (its pid file names a live process and its API answers): say so and
# leave it alone. Starting again would fail on the ports after truncating the running server's log.
if [[ -f $PID_FILE ]]; then
  running=$(cat "$PID_FILE")
  if kill -0 "$running" 2>/dev/null && curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then
    cat <<MSG
The demo is already running (pid $running):
  API server : http://127.0.0.1:$API_PORT   (log: $DATA_DIR/server.log)
  Chat page  : http://127.0.0.1:$PAGE_PORT/
  Widget page: http://127.0.0.1:$WIDGET_PORT/
  Core page  : http://127.0.0.1:$CORE_PORT/
Stop it with Ctrl-C in its terminal, or: kill $running
MSG
    exit 0
  fi
fi
# Anything else on one of the ports: stop before starting half a demo.
for port in "$API_PORT" "$PAGE_PORT" "$CORE_PORT" "$WIDGET_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use by another program: stop it, or choose other ports with" \
      "CONFAB_DEMO_API_PORT / _PAGE_PORT / _CORE_PORT / _WIDGET_PORT" >&2
    exit 1
  fi
done
echo $$ > "$PID_FILE"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ "$(cat "$PID_FILE" 2>/dev/null)" == "$$" ]]; then rm -f "$PID_FILE"; fi
}
trap cleanup EXIT INT TERM

"$NATIVE/confab-server" serve --listen "127.0.0.1:$API_PORT" --config examples/config/demo.json \
  --data-dir "$DATA_DIR" 2>"$DATA_DIR/server.log" &
pids+=($!)
# The SDK's script-tag page (it also plays the site's backend that signs the user id) ...
node examples/script-tag/serve.mjs --port "$PAGE_PORT" --api "http://127.0.0.1:$API_PORT" &
pids+=($!)
# ... the chat widget on a site with a strict CSP (its backend serves the widget's identity URL) ...
node examples/chat-embed/serve.mjs --port "$WIDGET_PORT" --api "http://127.0.0.1:$API_PORT" >/dev/null &
pids+=($!)
# ... and the wasm core on its own, under a strict CSP.
node scripts/serve-static.mjs --root examples/core-demo --mount "/wasm=$WASM/wasm" \
  --host 127.0.0.1 --port "$CORE_PORT" >/dev/null &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null || { echo "server did not start; see $DATA_DIR/server.log" >&2; exit 1; }

SECRET=$(node -e 'const c=require("./examples/config/demo.json");process.stdout.write(c.workspaces[0].secrets[0])')
WS=$(node -e 'const c=require("./examples/config/demo.json");process.stdout.write(c.workspaces[0].id)')
printf %s "$SECRET" > "$DATA_DIR/demo.secret"
HASH=$("$NATIVE/confab-server" sign --secret-file "$DATA_DIR/demo.secret" --workspace "$WS" --user alice)

cat <<MSG

  Confab demo
  -----------
  API server : http://127.0.0.1:$API_PORT   (log: $DATA_DIR/server.log)
  Chat page  : http://127.0.0.1:$PAGE_PORT/   (script-tag SDK: public app + signed-in chat)
  Widget page: http://127.0.0.1:$WIDGET_PORT/   (the <confab-chat> widget from one script tag, signed-in user)
  Core page  : http://127.0.0.1:$CORE_PORT/   (the wasm core alone: user hash, SSE parsing)

  Sign a user id (what a site's backend does):
    $NATIVE/confab-server sign --secret-file $DATA_DIR/demo.secret --workspace $WS --user alice
    -> $HASH

  Stream a demo app in one round trip:
    curl -N -X POST http://127.0.0.1:$API_PORT/v1/apps/assistant/chat \\
      -H 'Accept: text/event-stream' -H 'Content-Type: application/json' \\
      -H 'X-Confab-Workspace: $WS' -H 'X-Confab-User: alice' -H 'X-Confab-User-Hash: $HASH' \\
      -d '{"message":"Hello, **Confab**!"}'

  Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
