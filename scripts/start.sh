#!/usr/bin/env bash
# Starts the whole system on this machine (embedded PostgreSQL and Temporal, worker, API).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bin/fleetbrain dev "$@"
