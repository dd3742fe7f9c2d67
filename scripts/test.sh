#!/usr/bin/env bash
# The whole test suite: set-up, static checks (format/lint, types, import boundaries), then vitest
# (which starts its own PostgreSQL, Temporal dev server, OPA and MQTT broker on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { printf '\n== %s\n' "$1"; }
step 'lint and format (biome)'
npx biome check --diagnostic-level=error .
step 'type check (tsc --strict)'
npx tsc --noEmit -p tsconfig.json
step 'import boundaries (ARCHITECTURE.md "may import")'
npm run --silent boundaries
step 'tests (vitest)'
npx vitest run "$@"
