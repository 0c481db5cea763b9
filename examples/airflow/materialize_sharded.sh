#!/usr/bin/env bash
# A sharded materialization on one machine: N shard processes side by side (xargs -P), then one
# commit. The same job as examples/airflow/fsctl_sharded.py, without Airflow. SPEC §3.3.
#
#   examples/airflow/materialize_sharded.sh END [SHARDS] [-- extra fsctl flags]
#   examples/airflow/materialize_sharded.sh 2025-11-23T00:00:00Z 4 -- --repo feature_repo
#
# The flags after `--` go to every shard and to the commit (--repo, --service, --start...).
# FSCTL (default: fsctl on PATH) is the binary; FSCTL_REDIS_URL points it at the store. Every
# shard computes the same snapshot id; the commit checks that all of them recorded it, runs the
# quality checks on their totals and flips `current` once. Rerunning a shard that was recorded
# is a no-op, so rerun the whole script after a failure: only the missing shards do work.
set -euo pipefail

end="${1:?usage: $0 END [SHARDS] [-- fsctl flags]}"
shards="${2:-4}"
shift $(( $# >= 2 ? 2 : 1 ))
[[ "${1:-}" == "--" ]] && shift
fsctl="${FSCTL:-fsctl}"

seq 0 $((shards - 1)) |
    xargs -P "$shards" -I{} "$fsctl" materialize --end "$end" --shard "{}/$shards" "$@"
"$fsctl" commit --end "$end" --shards "$shards" "$@"
