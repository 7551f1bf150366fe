#!/usr/bin/env bash
# A real MCP client against a real server: installs the official Python SDK
# (PyPI `mcp`) into target/mcp-venv, starts `strata serve` on a free port and
# runs tests/mcp_client_smoke.py (legacy and auto mode). Fails if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/mcp-venv
if ! "$VENV/bin/python" -c 'import mcp' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'mcp==2.3.0'
fi
cargo build --quiet --bin strata
DIR=$(mktemp -d)
LOG="$DIR/serve.log"
target/debug/strata serve --listen 127.0.0.1:0 --data-dir "$DIR/data" --no-demo --no-collector 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
URL=""
for _ in $(seq 1 300); do
  URL=$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's/listening on //' || true)
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { echo "strata serve did not start:"; cat "$LOG"; exit 1; }
"$VENV/bin/python" tests/mcp_client_smoke.py "$URL/mcp" "$(cat "$DIR/data/admin.token")" system.cpu
