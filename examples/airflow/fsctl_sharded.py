"""An Airflow DAG: one fsctl materialization fanned out over N shard tasks, committed once.

Each mapped task runs `fsctl materialize --shard I/N` for the DAG run's data interval; the
commit task runs after all of them and flips `current` for every service at once (SPEC §3.3).
`{{ data_interval_end }}` as `--end` makes every retry idempotent: a shard already recorded, or
a snapshot already committed, is a no-op that exits 0. `--format json` prints one document per
task; on failure it holds `{"error": {"kind": ..., "message": ...}}`. BashOperator pushes the
last line of stdout as the XCom, so the document is joined into one line (`pipefail` keeps
fsctl's exit code).

Point the tasks at the repo and the store with FSCTL_REPO and FSCTL_REDIS_URL (an Airflow
connection or a secret), and pick SHARDS so that one shard's entities fit a worker: each shard
reads every input file's key columns but keeps only its own entities. Run the shards on
workers of the same fsctl version: the shard of an entity is a hash computed by fsctl.
`examples/airflow/materialize_sharded.sh` is the same job without Airflow.
"""

from __future__ import annotations

import os

import pendulum
from airflow.decorators import dag
from airflow.operators.bash import BashOperator

SHARDS = int(os.environ.get("FSCTL_SHARDS", "4"))
FSCTL = 'set -o pipefail; fsctl --repo "$FSCTL_REPO" --format json'
ONE_LINE = " | tr -d '\\n'"
ENV = {
    "FSCTL_REPO": os.environ.get("FSCTL_REPO", "/opt/feature_repo"),
    "FSCTL_REDIS_URL": os.environ.get("FSCTL_REDIS_URL", "redis://redis:6379/0"),
}


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2025, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=2)},
    tags=["fsctl", "features"],
)
def fsctl_sharded():
    shard = BashOperator.partial(
        task_id="materialize_shard",
        env=ENV,
        append_env=True,
    ).expand(
        bash_command=[
            f"{FSCTL} materialize --end '{{{{ data_interval_end }}}}' "
            f"--shard {i}/{SHARDS}{ONE_LINE}"
            for i in range(SHARDS)
        ]
    )
    commit = BashOperator(
        task_id="commit",
        env=ENV,
        append_env=True,
        bash_command=(
            f"{FSCTL} commit --end '{{{{ data_interval_end }}}}' --shards {SHARDS}"
            f"{ONE_LINE}"
        ),
    )
    shard >> commit


fsctl_sharded()
