#!/usr/bin/env bash
# scripts/bench-dataset.sh DIR ENTITIES [fsctl-datagen options...]: the benchmarks' banking
# dataset under DIR, regenerated when missing or older than 20 h (its rows must fall in the
# views' windows, which end at its anchor hour, written to DIR/ANCHOR); prints DIR. Needs
# target/release/fsctl-datagen (every bench script builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 entities=$2
shift 2
now_hour=$(( $(date +%s) / 3600 ))
if [ ! -f "$dir/ANCHOR" ] || [ $(( now_hour - $(cat "$dir/ANCHOR") )) -gt 20 ]; then
  rm -rf "$dir"
  target/release/fsctl-datagen banking "$dir" --entities "$entities" "$@" --anchor-hour "$now_hour" >&2
  cp feature_repo/feature_store.yaml "$dir/"
  echo "$now_hour" > "$dir/ANCHOR"
fi
echo "$dir"
