#!/usr/bin/env bash
# Userspace instructions per request, counted by callgrind: stable where wall-clock numbers on a
# shared machine are not. Same upstream and config as bench/peers.sh, one RS256 token, cached.
# Run `bench/peers.sh --quick` first (it leaves keys, tokens and configs in $WORK).
#
#   bench/instructions.sh BINARY [BINARY…]
#
# Prints, per binary, instructions per request in total and without SHA-256 (the token-cache
# key): under valgrind aws-lc takes its AVX code path, not the SHA-NI one the CPU runs natively,
# so SHA-256 is counted many times its real cost.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/portico-bench}
[ -f "$WORK/portico.yaml" ] || { echo "run bench/peers.sh --quick first"; exit 1; }
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
grep -v 'extra-' "$WORK/portico.yaml" > "$WORK/portico-one.yaml"
taskset -c 0 nginx -c "$WORK/upstream.conf" -p "$WORK" -g "daemon on;"
trap 'pkill -F "$WORK/upstream.pid"' EXIT
load() { TOKENS_FILE=$WORK/rs256-one.txt taskset -c 0 wrk -t1 -c4 -d"$1" -s bench/tokens.lua http://127.0.0.1:18083/bench; }
for bin in "$@"; do
  out=$WORK/callgrind.$(basename "$bin").out
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve --config "$WORK/portico-one.yaml" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18084/health && break; sleep 0.2; done
  load 3s >/dev/null           # warm-up, then count from zero
  callgrind_control -z $pid >/dev/null 2>&1
  requests=$(load 8s | awk '/requests in/ {print $1}')
  callgrind_control -d $pid >/dev/null 2>&1
  kill $pid; wait $pid 2>/dev/null || true
  total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  sha=$(callgrind_annotate --inclusive=no --threshold=100 "$out.1" 2>/dev/null | awk '/sha256_block_data_order/ {gsub(",", "", $1); s += $1} END {print s + 0}')
  printf '%s: %s requests, %d instructions/request, %d without SHA-256\n' "$bin" "$requests" \
    $((total / requests)) $(((total - sha) / requests))
done
