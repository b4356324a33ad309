#!/usr/bin/env bash
# Where Portico's time goes: runs the upstream and Portico as bench/peers.sh does (same pinning,
# same config, one RS256 token), loads it with wrk and samples Portico with perf.
# Run `bench/peers.sh --quick` first (it leaves keys, tokens and configs in $WORK).
#
#   bench/profile.sh [TOKENS_FILE]     default: $WORK/rs256-one.txt
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/portico-bench}
TOKENS=${1:-$WORK/rs256-one.txt}
[ -f "$WORK/portico.yaml" ] || { echo "run bench/peers.sh --quick first"; exit 1; }
command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
cargo build --release -p portico -q
taskset -c 0 nginx -c "$WORK/upstream.conf" -p "$WORK" -g "daemon on;"
taskset -c 1 target/release/portico serve --config "$WORK/portico.yaml" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID; pkill -F "$WORK/upstream.pid"' EXIT
sleep 1
TOKENS_FILE=$TOKENS taskset -c 0 wrk -t1 -c64 -d12s --latency -s bench/tokens.lua http://127.0.0.1:18083/bench > "$WORK/profile-wrk.txt" &
sleep 3
perf record -F 4000 -e cpu-clock -g -p $PID -o "$WORK/portico.perf" -- sleep 5 2>/dev/null
wait %2 || true
grep -E "Requests/sec|99%" "$WORK/profile-wrk.txt"
echo "--- by binary (kernel = TCP on loopback, both sides) ---"
perf report -i "$WORK/portico.perf" --no-children --stdio --sort dso -g none 2>/dev/null | grep -E "^ +[0-9]" | head -5
echo "--- top userspace symbols ---"
perf report -i "$WORK/portico.perf" --no-children --stdio --sort sym -g none 2>/dev/null | grep -E "^ +[0-9]" | grep -v "\[k\]" | head -25
