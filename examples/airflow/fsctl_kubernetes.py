"""An Airflow DAG: the sharded fsctl materialization of fsctl_sharded.py, each task in its own pod.

The same job as examples/airflow/fsctl_sharded.py, run by KubernetesPodOperator
(apache-airflow-providers-cncf-kubernetes) instead of BashOperator: one mapped task per shard
runs `fsctl materialize --shard I/N` for the DAG run's data interval, then one task runs
`fsctl commit`, which flips `current` for every service at once (SPEC §3.3). Shards are explicit
`--shard I/N` arguments mapped with `.partial().expand()`: `--shard auto/N` reads
JOB_COMPLETION_INDEX, which only an Indexed Job sets, not a KPO pod.

`{{ data_interval_end }}` as `--end` names the snapshot, the same in every shard, and makes
every retry idempotent: a shard already recorded, or a snapshot already committed, is a no-op
that exits 0. Exit 1 is a failed job (store, data, quality gate), worth the retry; exit 2 a usage
or configuration error, which fails the same way on every retry. `--format json --json-out
/airflow/xcom/return.json` writes fsctl's one JSON document where the XCom sidecar of
`do_xcom_push=True` reads it, also when fsctl fails (`{"error": {"kind": ..., "message": ...}}`);
the image needs no shell.

The repo (feature_store.yaml) comes from the ConfigMap `fsctl-repo`, mounted at /repo, so its
sources must be s3://, gs:// or az:// paths; the Secret `fsctl-redis` (key `url`) gives
FSCTL_REDIS_URL and the Secret `fsctl-cloud` the object store's credentials, as in
examples/kubernetes/cronjob.yaml. OPENLINEAGE_PARENT_ID, from the OpenLineage provider's macro,
makes fsctl's run events children of the task's. ghcr.io/example/fsctl:0.1.0 is a placeholder
(no image is published): any image whose PATH has the binary `pip install fsctl` installs.
Pick SHARDS so that one shard's entities fit a pod's memory (bench/MEMORY.md, bench/SHARDS.md),
and run every shard on the same image: the shard of an entity is a hash computed by fsctl.
"""

from __future__ import annotations

import os

import pendulum
from airflow.decorators import dag
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s

SHARDS = int(os.environ.get("FSCTL_SHARDS", "4"))
IMAGE = os.environ.get("FSCTL_IMAGE", "ghcr.io/example/fsctl:0.1.0")
END = "{{ data_interval_end | ts }}"
# Where KPO's XCom sidecar reads the task's result (do_xcom_push=True).
XCOM = "/airflow/xcom/return.json"
# feature_store.yaml, mounted at /repo.
REPO = k8s.V1ConfigMapVolumeSource(name="fsctl-repo")
# Global flags first; the verb and its flags follow.
FSCTL = ["--repo", "/repo", "--format", "json", "--json-out", XCOM]
POD = {
    "namespace": os.environ.get("FSCTL_NAMESPACE", "features"),
    "image": IMAGE,
    "cmds": ["fsctl"],
    "do_xcom_push": True,
    "env_vars": {
        "FSCTL_LOG_FORMAT": "json",
        "FSCTL_PUSHGATEWAY_URL": "http://pushgateway.monitoring:9091",
        "OPENLINEAGE_URL": "http://marquez.lineage:5000",
        "OPENLINEAGE_NAMESPACE": "feature-store",
        "OPENLINEAGE_PARENT_ID": (
            "{{ macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance) }}"
        ),
    },
    "secrets": [
        Secret("env", "FSCTL_REDIS_URL", "fsctl-redis", "url"),
        Secret("env", None, "fsctl-cloud"),
    ],
    "volumes": [
        k8s.V1Volume(name="repo", config_map=REPO),
        k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
    ],
    "volume_mounts": [
        k8s.V1VolumeMount(name="repo", mount_path="/repo", read_only=True),
        k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
    ],
    # Sized as the CronJob's shards (examples/kubernetes/cronjob.yaml); the commit needs less.
    "container_resources": k8s.V1ResourceRequirements(
        requests={"cpu": "1", "memory": "1Gi"}, limits={"memory": "1Gi"}
    ),
    "security_context": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
    "container_security_context": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    # On failure fsctl writes its summary to /dev/termination-log; else the log tail.
    "termination_message_policy": "FallbackToLogsOnError",
}


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2025, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=2)},
    tags=["fsctl", "features"],
)
def fsctl_kubernetes():
    shard = KubernetesPodOperator.partial(
        task_id="materialize_shard",
        name="fsctl-materialize-shard",
        **POD,
    ).expand(
        arguments=[
            [
                *FSCTL,
                "materialize",
                "--end",
                END,
                "--shard",
                f"{i}/{SHARDS}",
                "--memory-budget",
                "768M",
            ]
            for i in range(SHARDS)
        ]
    )
    commit = KubernetesPodOperator(
        task_id="commit",
        name="fsctl-commit",
        arguments=[*FSCTL, "commit", "--end", END, "--shards", str(SHARDS)],
        **POD,
    )
    shard >> commit


fsctl_kubernetes()
