#!/usr/bin/env bash
# Portico against HAProxy (RS256/ES256 JWT verification with jwt_verify) and nginx (plain
# reverse proxy, no auth) on this machine, in one run. See docs/performance.md.
#
#   bench/peers.sh            full run: correctness, then every scenario; rewrites the results
#                             section of docs/performance.md
#   bench/peers.sh --quick    correctness of every peer only
#
# Environment: ROUNDS (default 3), DURATION seconds per run (default 6), CONNECTIONS (default 64),
# WORK (scratch folder, default /tmp/portico-bench).
#
# Pinning on 2 cores: the proxy under test (each peer, one worker/thread) on CPU 1; wrk and the
# upstream (nginx, one worker) on CPU 0. Peers run one at a time, interleaved A B C A B C …
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-full}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6}
CONNECTIONS=${CONNECTIONS:-64}
WORK=${WORK:-/tmp/portico-bench}
ISS=https://bench.portico.local
AUD=bench-api
UPSTREAM=127.0.0.1:18080
# The same upstream over TLS (a CA made here signs its certificate for localhost).
UPSTREAM_TLS_PORT=18443
HAPROXY=127.0.0.1:18081
NGINX=127.0.0.1:18082
PORTICO=127.0.0.1:18083
PORTICO_ADMIN=127.0.0.1:18084
PORTICO_ONE_API=127.0.0.1:18086
REDIS_PORT=18379
# The real test IdP (tests/idp, npm oidc-provider): its opaque tokens are introspected.
IDP_PORT=18090
IDP=http://127.0.0.1:$IDP_PORT
PROXY_CPU=1
LOAD_CPU=0

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Stop peers a previous run may have left behind, then start from a clean folder.
for pid in "$WORK"/*.pid; do [ -f "$pid" ] && pkill -F "$pid" 2>/dev/null || true; done
rm -rf "$WORK" && mkdir -p "$WORK/logs" "$WORK/runs"
cleanup() { pkill -F "$WORK/upstream.pid" 2>/dev/null || true; pkill -F "$WORK/nginx.pid" 2>/dev/null || true
  pkill -F "$WORK/haproxy.pid" 2>/dev/null || true; [ -n "${PORTICO_PID:-}" ] && kill "$PORTICO_PID" 2>/dev/null || true
  [ -n "${ONE_API_PID:-}" ] && kill "$ONE_API_PID" 2>/dev/null || true
  pkill -F "$WORK/redis.pid" 2>/dev/null || true; [ -n "${IDP_PID:-}" ] && kill "$IDP_PID" 2>/dev/null || true; }
trap cleanup EXIT

cargo build --release -p portico -q
BIN=$ROOT/target/release/portico

# ---- keys and tokens -------------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.key" 2>/dev/null
openssl pkey -in "$WORK/rs256.key" -pubout -out "$WORK/rs256.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/es256.key" 2>/dev/null
openssl pkey -in "$WORK/es256.key" -pubout -out "$WORK/es256.pub"
mint() { "$BIN" token mint --key "$1" --alg "$2" --ttl 7200 "${@:3}"; }
base='"iss":"'$ISS'","aud":"'$AUD'","scope":"bench"'
mint "$WORK/rs256.key" RS256 --claims "{$base,\"sub\":\"user-1\"}" > "$WORK/rs256-one.txt"
mint "$WORK/es256.key" ES256 --claims "{$base,\"sub\":\"user-1\"}" > "$WORK/es256-one.txt"
mint "$WORK/rs256.key" RS256 --claims "{$base,\"sub\":\"user-1\",\"exp\":1000}" > "$WORK/rs256-expired.txt"
mint "$WORK/rs256.key" RS256 --claims "{\"iss\":\"https://evil.test\",\"aud\":\"$AUD\",\"sub\":\"x\"}" > "$WORK/rs256-wrong-iss.txt"
python3 - "$WORK" <<'PY'
import base64, json, sys
w = sys.argv[1]
tok = open(f"{w}/rs256-one.txt").read().strip()
h, p, s = tok.split(".")
# Change a character in the middle: the last one may only carry padding bits, which lenient
# base64 decoders (HAProxy's among them) ignore.
m = len(s) // 2
s = s[:m] + ("A" if s[m] != "A" else "B") + s[m + 1:]
open(f"{w}/rs256-badsig.txt", "w").write(f"{h}.{p}.{s}\n")
b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
open(f"{w}/alg-none.txt", "w").write(f"{b({'alg': 'none', 'typ': 'JWT'})}.{p}.\n")
PY
if [ "$MODE" != "--quick" ]; then
  echo "minting token pools…"
  mint "$WORK/rs256.key" RS256 --claims "{$base,\"sub\":\"user-{i}\"}" --count 10000 > "$WORK/rs256-identities.txt"
  mint "$WORK/rs256.key" RS256 --claims "{$base,\"sub\":\"user-1\"}" --count 20000 > "$WORK/rs256-distinct.txt"
  mint "$WORK/rs256.key" RS256 --claims "{$base,\"sub\":\"limited-{i}\"}" --count 100 > "$WORK/rs256-limited.txt"
fi

# ---- TLS upstream certificate -----------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/ca.key" -out "$WORK/ca.crt" -days 2 \
  -subj "/CN=Portico bench CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/upstream.key" -out "$WORK/upstream.csr" \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$WORK/upstream.ext"
openssl x509 -req -in "$WORK/upstream.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
  -CAcreateserial -out "$WORK/upstream.crt" -days 2 -extfile "$WORK/upstream.ext" 2>/dev/null

# ---- peers -----------------------------------------------------------------------------
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/logs/upstream.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen $UPSTREAM backlog=8192;
    listen 127.0.0.1:$UPSTREAM_TLS_PORT ssl backlog=8192;
    ssl_certificate $WORK/upstream.crt;
    ssl_certificate_key $WORK/upstream.key;
    location / { default_type application/json; return 200 '{"ok":true,"from":"upstream"}'; }
  }
}
CONF
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/logs/nginx.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream up { server $UPSTREAM; keepalive 128; }
  upstream up_tls { server 127.0.0.1:$UPSTREAM_TLS_PORT; keepalive 128; }
  limit_req_zone \$http_authorization zone=ids:32m rate=20r/s;
  server {
    listen $NGINX backlog=8192;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /tls/ { proxy_pass https://up_tls; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $WORK/ca.crt; proxy_ssl_session_reuse on; }
    location /limited/ { limit_req zone=ids burst=20 nodelay; limit_req_status 429;
      proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
jwt_frontend() { # name port alg pubkey
  cat <<CONF
frontend $1
  bind 127.0.0.1:$2
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('\$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('\$.aud')
  http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('\$.sub')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request set-var(txn.now) date()
  http-request return status 401 unless { var(txn.alg) -m str $3 }
  http-request return status 401 unless { var(txn.iss) -m str $ISS }
  http-request return status 401 unless { var(txn.aud) -m str $AUD }
  http-request return status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  http-request return status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$4") -m int 1 }
  http-request track-sc0 var(txn.sub) table limits if { path_beg /limited/ }
  http-request return status 429 if { path_beg /limited/ } { sc_http_req_rate(0) gt 20 }
  default_backend upstream
CONF
}
{
  cat <<CONF
global
  nbthread 1
  maxconn 4096
  pidfile $WORK/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
  option http-keep-alive
backend limits
  stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)
backend upstream
  server up $UPSTREAM maxconn 1000
CONF
  jwt_frontend rs256 18081 RS256 "$WORK/rs256.pub"
  jwt_frontend es256 18085 ES256 "$WORK/es256.pub"
} > "$WORK/haproxy.cfg"

portico_config() { # extra_apis_count token_cache_entries [redis] [introspection]
  cat <<CONF
listen: $PORTICO
admin_listen: $PORTICO_ADMIN
worker_threads: 1
log: { level: warn }
token_cache: { max_entries: ${2:-50000} }
limits: { backend: ${3:-local}${3:+, redis_url: "redis://127.0.0.1:$REDIS_PORT"} }
apis:
  - id: rs
    listen_path: /
    upstream: http://$UPSTREAM
    strip_listen_path: false
    jwt:
      issuers:
        - { issuer: $ISS, public_key_file: $WORK/rs256.pub, algorithms: [RS256], audiences: [$AUD] }
    policies: { scope_map: { bench: [bench] } }
  - id: es
    listen_path: /es
    upstream: http://$UPSTREAM
    strip_listen_path: false
    jwt:
      issuers:
        - { issuer: $ISS, public_key_file: $WORK/es256.pub, algorithms: [ES256], audiences: [$AUD] }
    policies: { scope_map: { bench: [bench] } }
  - id: limited
    listen_path: /limited
    upstream: http://$UPSTREAM
    strip_listen_path: false
    jwt:
      issuers:
        - { issuer: $ISS, public_key_file: $WORK/rs256.pub, algorithms: [RS256], audiences: [$AUD] }
    policies: { scope_map: { bench: [limited] } }
  - id: tls
    listen_path: /tls
    upstream: https://localhost:$UPSTREAM_TLS_PORT
    strip_listen_path: false
    keyless: true
    tls: { ca_file: $WORK/ca.crt }
CONF
  # Opaque tokens of the test IdP, introspected (answers cached 60 s, the default).
  [ -n "${4:-}" ] && cat <<CONF
  - id: intro
    listen_path: /intro
    upstream: http://$UPSTREAM
    strip_listen_path: false
    jwt:
      issuers:
        - issuer: $IDP
          introspection: { client_id: gateway-test, client_secret: gateway-test-secret }
    policies: { scope_map: { "orders:read": [bench] } }
CONF
  for i in $(seq 1 "${1:-0}"); do
    printf '  - { id: extra-%s, listen_path: /extra/%s/api, upstream: "http://%s", keyless: true }\n' "$i" "$i" "$UPSTREAM"
  done
  cat <<CONF
policies:
  - { id: bench, apis: { rs: {}, es: {}${4:+, intro: {\}} }, rate_limit: { requests: 100000000, per_secs: 1 } }
  - { id: limited, apis: { limited: {} }, rate_limit: { requests: 20, per_secs: 1 } }
CONF
}

taskset -c $LOAD_CPU nginx -c "$WORK/upstream.conf" -p "$WORK" -g "daemon on;"
taskset -c $PROXY_CPU nginx -c "$WORK/nginx.conf" -p "$WORK" -g "daemon on;"
taskset -c $PROXY_CPU haproxy -D -f "$WORK/haproxy.cfg"

start_portico() { # extra_apis token_cache_entries [redis] [introspection]
  [ -n "${PORTICO_PID:-}" ] && { kill "$PORTICO_PID"; wait "$PORTICO_PID" 2>/dev/null || true; }
  portico_config "${1:-0}" "${2:-50000}" "${3:-}" "${4:-}" > "$WORK/portico.yaml"
  taskset -c $PROXY_CPU "$BIN" serve --config "$WORK/portico.yaml" > "$WORK/logs/portico.out" 2> "$WORK/logs/portico.err" &
  PORTICO_PID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://$PORTICO_ADMIN/health" && return; sleep 0.1; done
  echo "portico did not start"; cat "$WORK/logs/portico.err"; exit 1
}
start_portico 0
sleep 0.5

# ---- correctness -----------------------------------------------------------------------
status() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$2")" "http://$1$3"; }
fail=0
check() { # label url-host token-file path expected
  local got; got=$(status "$2" "$3" "$4")
  if [ "$got" = "$5" ]; then echo "  ok   $1: $got"; else echo "  FAIL $1: got $got, want $5"; fail=1; fi
}
echo "correctness:"
check "nginx valid" $NGINX "$WORK/rs256-one.txt" /bench 200
for peer in "haproxy $HAPROXY" "portico $PORTICO"; do
  set -- $peer
  check "$1 RS256 valid" "$2" "$WORK/rs256-one.txt" /bench 200
  check "$1 bad signature" "$2" "$WORK/rs256-badsig.txt" /bench 401
  check "$1 expired" "$2" "$WORK/rs256-expired.txt" /bench 401
  check "$1 wrong iss" "$2" "$WORK/rs256-wrong-iss.txt" /bench 401
  check "$1 alg none" "$2" "$WORK/alg-none.txt" /bench 401
done
check "haproxy ES256 valid" 127.0.0.1:18085 "$WORK/es256-one.txt" /es/bench 200
check "portico ES256 valid" $PORTICO "$WORK/es256-one.txt" /es/bench 200
check "nginx HTTPS upstream" $NGINX "$WORK/rs256-one.txt" /tls/bench 200
check "portico HTTPS upstream" $PORTICO "$WORK/rs256-one.txt" /tls/bench 200

# The test IdP, and an opaque token of it (scope orders:read, 10 minutes).
[ -d tests/idp/node_modules/oidc-provider ] || (cd tests/idp && npm ci --no-audit --no-fund -s)
(cd tests/idp && PORT=$IDP_PORT KEYS_FILE="$WORK/idp-keys.json" taskset -c $LOAD_CPU node server.js \
  > "$WORK/logs/idp.out" 2> "$WORK/logs/idp.err") & IDP_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "$IDP/.well-known/openid-configuration" && break; sleep 0.1; done
opaque_token() {
  curl -s -u gateway-test:gateway-test-secret -d grant_type=client_credentials -d scope=orders:read \
    -d resource=https://opaque.portico.test "$IDP/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
opaque_token > "$WORK/opaque-one.txt"
echo 'not-a-token-the-idp-issued' > "$WORK/opaque-unknown.txt"
introspections() { curl -s "$IDP/__test/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["introspections"])'; }
start_portico 0 50000 "" introspection
check "portico opaque token, introspected" $PORTICO "$WORK/opaque-one.txt" /intro/bench 200
check "portico unknown opaque token" $PORTICO "$WORK/opaque-unknown.txt" /intro/bench 401
start_portico 0
[ $fail = 0 ] || { echo "correctness checks failed"; exit 1; }
[ "$MODE" = "--quick" ] && { echo "quick mode: correctness only"; exit 0; }

# ---- load ------------------------------------------------------------------------------
run_wrk() { # out host path tokens-file
  TOKENS_FILE="$4" taskset -c $LOAD_CPU wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s "$ROOT/bench/tokens.lua" "http://$2$3" > "$1" 2>&1 || true
}
portico_hwm() { awk '/VmHWM/ {print $2}' "/proc/$PORTICO_PID/status"; }
results="$WORK/results.tsv"
: > "$results"
scenario() { # name path tokens peers…
  local name=$1 path=$2 tokens=$3; shift 3
  echo "scenario: $name"
  for peer in "$@"; do  # warm-up
    DURATION=2 run_wrk /dev/null "${peer#*=}" "$path" "$tokens"
  done
  for round in $(seq "$ROUNDS"); do
    for peer in "$@"; do
      local label=${peer%%=*} host=${peer#*=} out="$WORK/runs/$name-$round-${peer%%=*}.txt"
      run_wrk "$out" "$host" "$path" "$tokens"
      printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$label" "$out" >> "$results"
    done
  done
  printf '%s\tpeak_rss_kib\t%s\n' "$name" "$(portico_hwm)" >> "$WORK/rss.tsv"
}
: > "$WORK/rss.tsv"
start_portico 0
scenario "RS256, one token" /bench "$WORK/rs256-one.txt" haproxy=$HAPROXY nginx=$NGINX portico=$PORTICO
# An opaque token, its introspection answer cached (60 s; the token lives 10 minutes), right
# after the RS256 row it is compared with. The IdP must see one introspection call for the
# whole scenario.
start_portico 0 50000 "" introspection
opaque_token > "$WORK/opaque-one.txt"
before=$(introspections)
scenario "cached introspection" /intro/bench "$WORK/opaque-one.txt" nginx=$NGINX portico=$PORTICO
calls=$(( $(introspections) - before ))
echo "  introspection calls during the scenario: $calls"
echo "$calls" > "$WORK/introspection_calls.txt"
[ "$calls" -le 1 ] || { echo "the introspection answer was not cached ($calls calls)"; exit 1; }
start_portico 0
scenario "RS256, 10,000 identities" /bench "$WORK/rs256-identities.txt" haproxy=$HAPROXY nginx=$NGINX portico=$PORTICO
start_portico 0
scenario "ES256, one token" /es/bench "$WORK/es256-one.txt" haproxy=127.0.0.1:18085 nginx=$NGINX portico=$PORTICO
# Raw verification: the token cache is off, so no token can be served from it.
start_portico 0 0
scenario "RS256, every token distinct" /bench "$WORK/rs256-distinct.txt" haproxy=$HAPROXY nginx=$NGINX portico=$PORTICO
start_portico 0
scenario "HTTPS upstream (no auth)" /tls/bench "$WORK/rs256-one.txt" nginx=$NGINX portico=$PORTICO
start_portico 0
scenario "rate limit rejecting" /limited/bench "$WORK/rs256-limited.txt" haproxy=$HAPROXY nginx=$NGINX portico=$PORTICO
# 10,000 APIs against 1, interleaved in the same scenario so that machine drift cancels out:
# a second Portico with one API on other ports.
start_portico 10000
portico_config 0 | sed -e "s/${PORTICO##*:}/${PORTICO_ONE_API##*:}/; s/${PORTICO_ADMIN##*:}/18087/" > "$WORK/portico-one-api.yaml"
taskset -c $PROXY_CPU "$BIN" serve --config "$WORK/portico-one-api.yaml" > /dev/null 2>&1 &
ONE_API_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:18087/health" && break; sleep 0.1; done
scenario "RS256, one token, 10,000 APIs" /bench "$WORK/rs256-one.txt" portico-1-api=$PORTICO_ONE_API portico=$PORTICO
kill "$ONE_API_PID"

# The Redis limiter against the in-process one, interleaved in one scenario: a Portico whose
# counters live in one local Redis (pinned with the load and the upstream), and a second one
# with the in-process limiter on other ports. Every request runs the limiter (the bench policy
# has a rate limit that is never reached).
taskset -c $LOAD_CPU redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize yes --pidfile "$WORK/redis.pid" > /dev/null
start_portico 0 50000 redis
check "portico RS256 valid, Redis limiter" $PORTICO "$WORK/rs256-one.txt" /bench 200
# The counters' keys expire within microseconds at the bench's rate; the script's calls show.
redis-cli -p $REDIS_PORT info commandstats | grep -q 'cmdstat_evalsha' || { echo "the limiter did not use Redis"; exit 1; }
taskset -c $PROXY_CPU "$BIN" serve --config "$WORK/portico-one-api.yaml" > /dev/null 2>&1 &
ONE_API_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:18087/health" && break; sleep 0.1; done
scenario "RS256, one token, Redis limiter" /bench "$WORK/rs256-one.txt" portico-local=$PORTICO_ONE_API portico=$PORTICO
kill "$ONE_API_PID"
pkill -F "$WORK/redis.pid"

# Memory per identity session, measured on the limiter itself.
cargo run --release -q -p portico-limits --example session_memory > "$WORK/sessions.txt"

python3 "$ROOT/bench/report.py" "$WORK" "$ROOT/docs/performance.md"
