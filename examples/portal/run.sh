#!/usr/bin/env bash
# Portal quick start: builds Portico, starts the real test IdP (tests/idp, oidc-provider), a
# demo upstream on 127.0.0.1:9000, and Portico as a control plane with the developer portal on
# 127.0.0.1:3000, then applies examples/portal/portal.yaml (a provider, a client type, the
# product "orders" and two plans). State lives in ./data-portal. Ctrl-C stops everything.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo build --release -p portico
if [ ! -d tests/idp/node_modules/oidc-provider ]; then
  (cd tests/idp && npm ci --no-audit --no-fund)
fi
bin="$root/target/release/portico"
data="$root/data-portal"
mkdir -p "$data"
log="$data/logs"
mkdir -p "$log"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT

python3 "$root/examples/quickstart/echo_upstream.py" 9000 >"$log/upstream.log" 2>&1 &
pids+=($!)

# The IdP prints {"issuer": ...} on its first line.
(cd "$root/tests/idp" && PORT=0 exec node server.js >"$log/idp.out" 2>"$log/idp.log") &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$log/idp.out" ] && break
  sleep 0.1
done
issuer=$(head -n 1 "$log/idp.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["issuer"])')

# A demo admin token, kept in the data folder (mode 0600) so a restart keeps it.
if [ ! -f "$data/admin.token" ]; then
  (umask 077; openssl rand -hex 24 >"$data/admin.token")
fi
export PORTICO_ADMIN_TOKEN
PORTICO_ADMIN_TOKEN=$(cat "$data/admin.token")
IDP_IAT=portico-test-initial-access-token PORTICO_LOG=${PORTICO_LOG:-warn} "$bin" serve \
  --database "sqlite:$data/portico.db" --data-dir "$data" \
  --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:8081 \
  --portal-listen 127.0.0.1:3000 --notify admin@portal.local >"$log/portico.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:8081/health >/dev/null 2>&1 && break
  sleep 0.1
done

sed "s#ISSUER#$issuer#" "$here/portal.yaml" >"$data/portal.yaml"
"$bin" apply -f "$data/portal.yaml" --server http://127.0.0.1:8081

cat <<MSG

Portico is up, with its developer portal and a real OAuth server (the test IdP at $issuer).

  Developer portal   http://127.0.0.1:3000/         (create an account, add "Orders" to the
                                                    cart, check out)
  Admin pages        http://127.0.0.1:3000/manage   admin token: $PORTICO_ADMIN_TOKEN
                                                    (approve the request; emails are in the
                                                    Outbox)
  Gateway            http://127.0.0.1:8080/orders/  (the API the product opens)

Once approved, the app's page shows its credentials and a curl that gets a token; then:

  curl -i -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/orders/1

Logs are in $log. Ctrl-C stops everything.
MSG
wait
