#!/usr/bin/env bash
# Runs Portico's whole test suite: unit, integration (real upstreams, the real test IdP),
# CLI, the portal in headless Chromium. Installs the npm packages of the test IdP and of the
# browser test first when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

for dir in tests/idp tests/browser; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
done

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi

# The admin REST API, fuzzed from its OpenAPI document: no 5xx.
./scripts/fuzz-admin.sh
