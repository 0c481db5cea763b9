#!/usr/bin/env bash
# make demo: the example banking repo end to end against a throwaway local Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
FSCTL=target/release/fsctl
. scripts/throwaway-redis.sh
export FSCTL_REDIS_URL="$REDIS_URL"
END=$(date -u +%Y-%m-%dT%H:00:00Z)
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say fsctl validate --locked --data   "(the CI gate: definitions, data, schema lock, quality checks)"
$FSCTL validate --locked --data
say fsctl materialize --end "$END"
$FSCTL materialize --end "$END"
say fsctl materialize --end "$END"  "(the same job again: a no-op)"
$FSCTL materialize --end "$END"
say fsctl get --service realtime_scoring --entity customer_id=1000042
$FSCTL get --service realtime_scoring --entity customer_id=1000042
say fsctl get --service recommendations --entity customer_id=1000007 --format json
$FSCTL --format json get --service recommendations --entity customer_id=1000007 | head -n 20
say fsctl warm --top-n 2000 --service realtime_scoring   "(before a deploy: hottest entities get the hot TTL)"
$FSCTL warm --top-n 2000 --service realtime_scoring
say fsctl validate --online   "(the committed snapshots match the repo; sampled vectors decode)"
$FSCTL validate --online
say fsctl snapshots   "(each service's history: current, kept, retired)"
$FSCTL snapshots
say fsctl status   "(for monitoring: each service's freshness; exit 1 when one is stale)"
$FSCTL status
echo "(Redis on port $REDIS_PORT is stopped now)"
