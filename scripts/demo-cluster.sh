#!/usr/bin/env bash
# make demo-cluster: the example banking repo end to end against a throwaway local Redis Cluster
# of three primaries (online_store.type: redis_cluster, the seed nodes in FSCTL_REDIS_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
FSCTL=target/release/fsctl
. scripts/throwaway-cluster.sh
REPO=$(mktemp -d)
trap 'stop_throwaway_cluster; rm -rf "$REPO"' EXIT
cp feature_repo/feature_store.yaml "$REPO/"
sed -i 's/^  type: redis$/  type: redis_cluster/' "$REPO/feature_store.yaml"
ln -s "$(pwd)/feature_repo/data" "$REPO/data"
export FSCTL_REDIS_URL="$CLUSTER_URL"
END=$(date -u +%Y-%m-%dT%H:00:00Z)
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "cluster: ${CLUSTER_PORTS[*]} (online_store.type: redis_cluster)"
say fsctl materialize --end "$END"
$FSCTL --repo "$REPO" materialize --end "$END"
for p in "${CLUSTER_PORTS[@]}"; do echo "  127.0.0.1:$p holds $(redis-cli -p "$p" dbsize) keys"; done
say fsctl get --service realtime_scoring --entity customer_id=1000042
$FSCTL --repo "$REPO" get --service realtime_scoring --entity customer_id=1000042
say fsctl warm --top-n 2000 --service realtime_scoring
$FSCTL --repo "$REPO" warm --top-n 2000 --service realtime_scoring
say fsctl validate --online
$FSCTL --repo "$REPO" validate --online
say fsctl snapshots
$FSCTL --repo "$REPO" snapshots
echo "(the cluster on ports ${CLUSTER_PORTS[*]} is stopped now)"
