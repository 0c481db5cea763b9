#!/usr/bin/env bash
# A sharded materialization on one machine: N shard processes side by side (xargs -P), then one
# commit. The same job as examples/airflow/fsctl_sharded.py, without Airflow. SPEC §3.3.
#
#   examples/airflow/materialize_sharded.sh END [SHARDS] [-- extra fsctl flags]
#   examples/airflow/materialize_sharded.sh 2025-11-23T00:00:00Z 4 -- --repo feature_repo
#
# The flags after `--` go to every shard and to the commit, so give only flags both take
# (--repo, --service, --start, --allow-future-end, -q/-v, --format).
# FSCTL (default: fsctl on PATH) is the binary; FSCTL_REDIS_URL points it at the store. Every
# shard computes the same snapshot id; the commit checks that all of them recorded it, runs the
# quality checks on their totals and flips `current` once. Rerunning a shard that was recorded
# is a no-op, so rerun the whole script after a failure: only the missing shards do work.
set -euo pipefail

usage="usage: $0 END [SHARDS] [-- flags for every shard and the commit]"
end="${1:?$usage}"
shift
shards=4
if [[ $# -gt 0 && "$1" != "--" ]]; then
    shards="$1"
    shift
fi
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "$0: SHARDS must be a positive integer, not \`$shards\`" >&2; exit 2; }
[[ "${1:-}" == "--" ]] && shift
fsctl="${FSCTL:-fsctl}"

seq 0 $((shards - 1)) |
    xargs -P "$shards" -I{} "$fsctl" materialize --end "$end" --shard "{}/$shards" "$@"
"$fsctl" commit --end "$end" --shards "$shards" "$@"
