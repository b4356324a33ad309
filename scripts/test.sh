#!/usr/bin/env bash
# Runs Portico's whole test suite: unit, integration (real upstreams, the real test IdP),
# CLI. Installs the test IdP's npm packages first when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d tests/idp/node_modules/oidc-provider ] || [ tests/idp/package-lock.json -nt tests/idp/node_modules/.package-lock.json ]; then
  (cd tests/idp && npm ci --no-audit --no-fund)
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi

# The admin REST API, fuzzed from its OpenAPI document: no 5xx.
./scripts/fuzz-admin.sh
