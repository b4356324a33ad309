#!/usr/bin/env bash
# Fuzzes the admin REST API from its own OpenAPI document with schemathesis (PyPI): a control
# plane on a fresh SQLite store, every operation, and no answer may be a 5xx.
#   scripts/fuzz-admin.sh [MAX_EXAMPLES]   (default 50 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet schemathesis
fi
# The same build as the test run (so nothing is compiled again after it).
cargo test --no-run --workspace --quiet 2>/dev/null
work=$(mktemp -d)
token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PORTICO_ADMIN_TOKEN=$token PORTICO_LOG=error target/debug/portico serve \
  --database "sqlite:$work/portico.db" --data-dir "$work" \
  --listen 127.0.0.1:0 --admin-listen "127.0.0.1:$port" > "$work/out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" --checks not_a_server_error \
  --max-examples "${1:-50}" --no-color
