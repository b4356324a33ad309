#!/usr/bin/env bash
# Quick start: builds Portico, starts a demo upstream on 127.0.0.1:9000 and Portico on
# 127.0.0.1:8080 with examples/quickstart/portico.yaml. Ctrl-C stops both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo build --release -p portico
python3 "$here/echo_upstream.py" 9000 &
upstream=$!
trap 'kill $upstream 2>/dev/null' EXIT
bin="$root/target/release/portico"
cat <<MSG

Portico is starting. In another terminal:

  TOKEN=\$($bin token mint --key $here/keys/demo-private.pem --alg RS256 \\
      --claims '{"iss":"https://demo.portico.local","aud":"demo-api","sub":"alice","scope":"demo:read"}')
  curl -i -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/demo/hello
  curl -s http://127.0.0.1:8081/metrics | grep portico_requests

MSG
"$bin" serve --config "$here/portico.yaml"
