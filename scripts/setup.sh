#!/usr/bin/env bash
# Idempotent set-up shared by the start and test commands: npm packages from the lockfile, then the
# pinned tools (Temporal CLI, OPA, PostgreSQL, MQTT broker, Chromium for the browser tests, schemathesis for the API fuzz run), built or installed once into the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt "$need_node_major" ]; then
  echo "fleetbrain: Node.js >= $need_node_major is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.fleetbrain-lock
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  echo "fleetbrain: installing npm packages (npm ci)"
  if ! npm ci --no-audit --no-fund --loglevel=error; then
    echo "fleetbrain: 'npm ci' failed; check that the npm registry is reachable and package-lock.json is committed" >&2
    exit 1
  fi
  echo "$lock_hash" > "$stamp"
fi

# The two Go builds are independent: run them side by side (a cold cache builds both once).
node --import tsx scripts/ensure-tools.ts temporal & temporal_pid=$!
node --import tsx scripts/ensure-tools.ts opa & opa_pid=$!
status=0
wait "$temporal_pid" || status=1
wait "$opa_pid" || status=1
node --import tsx scripts/ensure-tools.ts postgres mosquitto chromium schemathesis || status=1
if [ "$status" -ne 0 ]; then
  echo "fleetbrain: set-up failed: a required tool is missing (see the line above)" >&2
  exit 1
fi
