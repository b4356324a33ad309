#!/usr/bin/env bash
# A/B: two Portico binaries and nginx, same pinning and config as bench/peers.sh, interleaved.
# Run `bench/peers.sh --quick` first (it leaves keys, tokens and configs in $WORK).
#
#   bench/ab.sh BINARY_A BINARY_B [TOKENS_FILE [PATH]]
#       defaults: $WORK/rs256-one.txt, /bench. ROUNDS (default 5), DURATION (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/portico-bench}
A=$1 B=$2
TOKENS=${3:-$WORK/rs256-one.txt}
URL_PATH=${4:-/bench}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
[ -f "$WORK/portico.yaml" ] || { echo "run bench/peers.sh --quick first"; exit 1; }
sed -e 's/18083/18086/; s/18084/18087/' "$WORK/portico.yaml" > "$WORK/portico-b.yaml"
taskset -c 0 nginx -c "$WORK/upstream.conf" -p "$WORK" -g "daemon on;"
taskset -c 1 nginx -c "$WORK/nginx.conf" -p "$WORK" -g "daemon on;"
taskset -c 1 "$A" serve --config "$WORK/portico.yaml" >/dev/null 2>&1 & PA=$!
taskset -c 1 "$B" serve --config "$WORK/portico-b.yaml" >/dev/null 2>&1 & PB=$!
trap 'kill $PA $PB; pkill -F "$WORK/upstream.pid"; pkill -F "$WORK/nginx.pid"' EXIT
sleep 1
declare -A rps
for target in a=18083 b=18086 nginx=18082; do rps[${target%%=*}]=""; done
for round in $(seq 0 "$ROUNDS"); do
  for target in a=18083 b=18086 nginx=18082; do
    d=$DURATION; [ "$round" = 0 ] && d=2  # round 0 warms up
    r=$(TOKENS_FILE=$TOKENS taskset -c 0 wrk -t1 -c64 -d${d}s -s bench/tokens.lua \
      "http://127.0.0.1:${target#*=}$URL_PATH" | awk '/Requests\/sec/ {print $2}')
    [ "$round" = 0 ] || rps[${target%%=*}]+="$r "
  done
done
for name in a b nginx; do
  printf '%-6s %s  median %s\n' "$name" "${rps[$name]}" \
    "$(echo "${rps[$name]}" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')"
done
