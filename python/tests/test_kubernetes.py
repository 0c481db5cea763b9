"""The Kubernetes and Airflow KubernetesPodOperator examples, checked without a cluster.

- Every document of examples/kubernetes/*.yaml against the Kubernetes API schemas that
  kubernetes-validate ships, in strict mode (an unknown or misspelt field fails), and what the
  schemas cannot say: completions = parallelism = the N of `--shard auto/N`, fsctl's exit codes
  mapped by the podFailurePolicy, the memory budget under the limit.
- The CronJob's container run as Kubernetes would run it, with no shell: `fsctl` (the image's
  entrypoint; the container sets no command) with its args as written, after Kubernetes' `$(VAR)`
  expansion, one process per completion index with JOB_COMPLETION_INDEX and JOB_NAME the name
  the CronJob controller gives its Job (`fsctl-materialize-<minutes>`, which `--end
  cronjob:$(JOB_NAME)` reads), against a real redis-server. Only `fsctl` (the binary under
  test), `/repo` (a copy of the golden repo) and the JSON output file are swapped; the
  Pushgateway and OpenLineage URLs are left unset (no such servers here).
- examples/airflow/fsctl_kubernetes.py imported with stand-ins for Airflow and the Kubernetes
  client: its shard and commit tasks' arguments run the same way, and its pod settings validate
  as a Pod.
"""

from __future__ import annotations

import copy
import json
import math
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import redis
import yaml
from conftest import ROOT, Repo, Server, fsctl_bin

from fsctl_client import FeatureClient

MANIFESTS = sorted((ROOT / "examples" / "kubernetes").glob("*.yaml"))
KPO_DAG = ROOT / "examples" / "airflow" / "fsctl_kubernetes.py"
# The first release with backoffLimitPerIndex GA, and the newest kubernetes-validate knows.
VERSIONS = ["1.33", kubernetes_validate.latest_version()]
GOLDEN_END_S = 1_763_856_000
# Set in the manifests, left unset here: no Pushgateway or OpenLineage server runs.
ABSENT_SERVERS = {"FSCTL_PUSHGATEWAY_URL", "OPENLINEAGE_URL"}
JOB_NAME_LABEL = "metadata.labels['batch.kubernetes.io/job-name']"
# What the image runs: its ENTRYPOINT ["fsctl"], the container setting no command.
ENTRYPOINT = ["fsctl"]


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, d) for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


def cronjob() -> dict[str, Any]:
    found = [d for _, d in documents() if d["kind"] == "CronJob"]
    assert len(found) == 1
    return found[0]


def job_spec() -> dict[str, Any]:
    return cronjob()["spec"]["jobTemplate"]["spec"]


def container() -> dict[str, Any]:
    (c,) = job_spec()["template"]["spec"]["containers"]
    return c


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def shard_count() -> int:
    index, n = flag(container()["args"], "--shard").split("/")
    assert index == "auto"
    return int(n)


def size_bytes(text: str) -> int:
    """A Kubernetes quantity (1Gi, 768Mi) or an fsctl size (768M, 1G: powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    number = text.removesuffix("i").removesuffix("B")
    if number[-1] in units:
        return int(float(number[:-1]) * units[number[-1]])
    return int(number)


def action_for_exit(code: int) -> str:
    """What the Job's podFailurePolicy does when container fsctl exits with `code`."""
    for rule in job_spec()["podFailurePolicy"]["rules"]:
        on = rule.get("onExitCodes")
        if (
            on
            and on["containerName"] == "fsctl"
            and (code in on["values"]) == (on["operator"] == "In")
        ):
            return rule["action"]
    return "default (counted)"


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of a container's command and args: `$(VAR)` of a defined variable
    is replaced, of an undefined one kept as written, and `$$` is a literal `$`. No shell runs
    after it: each arg reaches fsctl as one argv element."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and ")" in text[i:]:
            end = text.index(")", i)
            name = text[i + 2 : end]
            out.append(env.get(name, text[i : end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def base_env(tmp: Path) -> dict[str, str]:
    """This process's environment without fsctl's, OpenLineage's and the Job's variables, with
    `fsctl` on PATH being the binary under test."""
    bin_dir = tmp / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (bin_dir / "fsctl").symlink_to(fsctl_bin())
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FSCTL_", "OPENLINEAGE_", "JOB_"))
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def job_name(end_s: int = GOLDEN_END_S) -> str:
    """The name the CronJob controller gives the Job it creates for the schedule time `end_s`."""
    return f"{cronjob()['metadata']['name']}-{end_s // 60}"


def run_pod(
    tmp: Path,
    index: int,
    repo: Path,
    redis_url: str,
    out: Path,
    name: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs the CronJob's container for completion index `index`: the image's entrypoint with
    the container's args, expanded as Kubernetes does, no shell."""
    c = container()
    assert "command" not in c, "the container runs the image's ENTRYPOINT, fsctl"
    env = {"JOB_COMPLETION_INDEX": str(index), **(extra_env or {})}
    for var in c["env"]:
        key, source = var["name"], var.get("valueFrom", {})
        if key in ABSENT_SERVERS:
            continue
        if "value" in var:
            env[key] = var["value"]
        elif source.get("secretKeyRef") and key == "FSCTL_REDIS_URL":
            env[key] = redis_url
        elif source.get("fieldRef", {}).get("fieldPath") == JOB_NAME_LABEL:
            env[key] = job_name() if name is None else name
        else:
            raise AssertionError(f"no stand-in for the variable {key}: {var}")
    args = list(c["args"])
    args[args.index("--repo") + 1] = str(repo)
    args[args.index("--json-out") + 1] = str(out)
    argv = [*ENTRYPOINT, *(expand(a, env) for a in args)]
    return subprocess.run(
        argv, env={**base_env(tmp), **env}, capture_output=True, text=True, cwd=tmp
    )


def statuses(doc: dict[str, Any]) -> set[str]:
    return {s["status"] for s in doc["services"]}


def one_document(done: subprocess.CompletedProcess[str], out: Path) -> dict[str, Any]:
    """The run's one JSON document, on stdout and in the --json-out file alike."""
    doc = json.loads(done.stdout)
    assert json.loads(out.read_text()) == doc
    return doc


def json_log_lines(stderr: str) -> list[dict[str, Any]]:
    """FSCTL_LOG_FORMAT=json: every line on stderr is one JSON object."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


# --- the manifests, offline -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str) -> None:
    assert MANIFESTS, "no examples/kubernetes/*.yaml"
    for name, doc in documents():
        assert kubernetes_validate.validate(doc, version, strict=True), name


def test_strict_validation_rejects_a_misspelt_field() -> None:
    doc = copy.deepcopy(cronjob())
    doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["argz"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)


def test_the_indexed_job_is_shaped_for_a_sharded_run() -> None:
    cron, job, c = cronjob(), job_spec(), container()
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    # The controller appends 11 characters to a CronJob's name for its Jobs' (at most 63).
    assert len(cron["metadata"]["name"]) <= 52
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == shard_count()
    assert job["backoffLimitPerIndex"] >= 1 and job["maxFailedIndexes"] == 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["activeDeadlineSeconds"] > 0 and job["ttlSecondsAfterFinished"] == 86400
    assert c["name"] == "fsctl"
    assert "--commit-when-complete" in c["args"]
    # No shell: the image's entrypoint runs the args; --end comes from the Job's name.
    assert "command" not in c
    assert flag(c["args"], "--end") == "cronjob:$(JOB_NAME)"
    assert not any("$$" in a or a in ("sh", "-c") for a in c["args"])
    # fsctl's exit codes (SPEC §4): 2 is never retried, 1 is, per index.
    assert action_for_exit(2) == "FailJob"
    assert action_for_exit(1) == "Count"
    assert {"type": "DisruptionTarget", "status": "True"} in [
        cond
        for rule in job["podFailurePolicy"]["rules"]
        if rule["action"] == "Ignore"
        for cond in rule.get("onPodConditions", [])
    ]
    # The budget fsctl plans its memory by stays under what the container may use.
    limit = size_bytes(c["resources"]["limits"]["memory"])
    assert size_bytes(flag(c["args"], "--memory-budget")) < limit
    assert size_bytes(c["resources"]["requests"]["memory"]) == limit
    # The repo is the ConfigMap's mount; the JSON document goes to the writable emptyDir.
    volumes = {v["name"]: v for v in job["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    assert "configMap" in mounts[flag(c["args"], "--repo")]
    assert "emptyDir" in mounts[str(Path(flag(c["args"], "--json-out")).parent)]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {v["name"]: v for v in c["env"]}
    assert env["FSCTL_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert env["JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == JOB_NAME_LABEL
    assert env["FSCTL_LOG_FORMAT"]["value"] == "json"
    assert {"FSCTL_PUSHGATEWAY_URL", "OPENLINEAGE_URL", "OPENLINEAGE_NAMESPACE"} <= set(env)


# --- the CronJob's container, run -------------------------------------------------------------


def data_keys(r: redis.Redis, service: str) -> list[str]:
    return sorted(k.decode() for k in r.scan_iter(f"fst:golden:{service}:*"))


def entity_of(key: str, join_keys: list[dict[str, str]]) -> dict[str, Any]:
    """The entity of a data key `fst:golden:<service>:<snapshot>:<values>` (more than one value:
    `:` between them, `\\` escaping)."""
    rendered = key.split(":", 4)[4]
    values, cur, escaped = [], "", False
    for ch in rendered if len(join_keys) > 1 else "":
        if escaped:
            cur, escaped = cur + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            values.append(cur)
            cur = ""
        else:
            cur += ch
    values = [*values, cur] if len(join_keys) > 1 else [rendered]
    return {
        k["name"]: int(v) if k["dtype"].startswith("int") else v for k, v in zip(join_keys, values)
    }


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_the_cronjob_container_runs_every_shard_and_the_last_commits(
    tmp_path: Path, server: Server
) -> None:
    repo = Repo(tmp_path, server)
    n = shard_count()
    docs = []
    # Index 0 twice: a retried index that already recorded its shard is a no-op.
    for index in [0, 0, *range(1, n)]:
        out = tmp_path / f"result-{index}.json"
        done = run_pod(tmp_path, index, repo.dir, server.url, out)
        assert done.returncode == 0, done.stderr
        assert json_log_lines(done.stderr)
        docs.append(one_document(done, out))
    assert statuses(docs[0]) == {"shard_recorded"}
    assert statuses(docs[1]) == {"already_recorded"}
    assert all(s["keys_written"] == 0 for s in docs[1]["services"])
    assert all(statuses(d) == {"shard_recorded"} for d in docs[2:-1])
    last = docs[-1]
    assert statuses(last) == {"committed"}
    # Every shard took --end from the Job's name: the CronJob's scheduled time.
    assert {
        s["manifest"]["as_of_ms"] for d in docs for s in d["services"] if s.get("manifest")
    } == {GOLDEN_END_S * 1000}
    for s in last["services"]:
        assert s["manifest"]["as_of_ms"] == GOLDEN_END_S * 1000
        # Every shard computed the snapshot id the commit flipped to.
        ids = {x["snapshot"] for d in docs for x in d["services"] if x["service"] == s["service"]}
        assert ids == {s["snapshot"]}

    # Rerunning any index once committed: exit 0, nothing written.
    for index in (0, n - 1):
        out = tmp_path / f"rerun-{index}.json"
        done = run_pod(tmp_path, index, repo.dir, server.url, out)
        assert done.returncode == 0, done.stderr
        rerun = one_document(done, out)
        assert statuses(rerun) == {"already_committed"}
        assert all(s["keys_written"] == 0 for s in rerun["services"])

    # The same job unsharded, into another redis-server: the same snapshots, keys and vectors.
    (tmp_path / "other").mkdir()
    other = Server(tmp_path / "other")
    try:
        unsharded = Repo(tmp_path / "other", other)
        unsharded.materialize()
        sharded_r, unsharded_r = server.client(), other.client()
        sharded_c = FeatureClient.from_repo(repo.dir, url=server.url)
        unsharded_c = FeatureClient.from_repo(unsharded.dir, url=other.url)
        for s in last["services"]:
            service, join_keys = s["service"], s["manifest"]["entity"]["join_keys"]
            keys = data_keys(sharded_r, service)
            assert keys and keys == data_keys(unsharded_r, service)
            assert all(k.split(":")[3] == s["snapshot"] for k in keys)
            for key in keys:
                assert sharded_r.get(key) == unsharded_r.get(key), key
                entity = entity_of(key, join_keys)
                got, want = sharded_c.get(service, entity), unsharded_c.get(service, entity)
                assert got.found and want.found and got.snapshot == want.snapshot
                assert list(got.values) == list(want.values)
                assert all(same(got.values[f], want.values[f]) for f in want.values), key
    finally:
        other.stop()


def test_the_exit_codes_of_a_failing_pod_meet_the_failure_policy(
    tmp_path: Path, server: Server
) -> None:
    repo = Repo(tmp_path, server)
    n = shard_count()

    def usage_error(
        case: str, index: int, says: str, name: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A flag that fails to parse: exit 2 (FailJob), and still the JSON document on stdout
        and in --json-out, the summary in the termination log, and JSON log lines."""
        out = tmp_path / f"result-{case}.json"
        log = tmp_path / f"termination-log-{case}"
        log.touch()
        extra = {"FSCTL_TERMINATION_LOG": str(log)}
        done = run_pod(tmp_path, index, repo.dir, server.url, out, name=name, extra_env=extra)
        assert done.returncode == 2, done.stderr
        assert action_for_exit(done.returncode) == "FailJob"
        error = one_document(done, out)["error"]
        assert error["kind"] == "usage" and error["exit_code"] == 2 and says in error["message"]
        assert "exit 2: usage:" in log.read_text() and says in log.read_text()
        lines = json_log_lines(done.stderr)
        assert any(
            line.get("level") == "error" and says in line.get("message", "") for line in lines
        )
        return done

    # An index the Job should not have (completions != N): usage error, the Job fails at once.
    usage_error("bad-index", n, "JOB_COMPLETION_INDEX")
    # A Job not named by the CronJob controller: `cronjob:` cannot read --end from it.
    usage_error("bad-name", 0, "fsctl-by-hand", name="fsctl-by-hand")
    # Redis unreachable: the job failed, the index is retried.
    (tmp_path / "down").mkdir()
    down = Server(tmp_path / "down")
    down.stop()
    # FSCTL_TERMINATION_LOG stands in for /dev/termination-log, which only a pod has.
    out = tmp_path / "result.json"
    termination_log = tmp_path / "termination-log"
    termination_log.touch()
    extra = {"FSCTL_TERMINATION_LOG": str(termination_log)}
    done = run_pod(tmp_path, 0, repo.dir, down.url, out, extra_env=extra)
    assert done.returncode == 1
    assert one_document(done, out)["error"]["kind"] == "redis"
    assert "exit 1: redis:" in termination_log.read_text()
    assert any(line.get("level") == "error" for line in json_log_lines(done.stderr))
    assert action_for_exit(done.returncode) == "Count"


# --- the Airflow KubernetesPodOperator DAG ------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def serialized(value: Any) -> Any:
    if hasattr(value, "kwargs"):
        return {camel(k): serialized(v) for k, v in value.kwargs.items() if v is not None}
    if isinstance(value, list):
        return [serialized(v) for v in value]
    return value


class Model:
    """Stands in for a kubernetes.client model: keeps its keyword arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class Task:
    """Stands in for KubernetesPodOperator: records each task's keyword arguments."""

    tasks: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        Task.tasks.append(kwargs)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        class Partial:
            def expand(self, **mapped: list[Any]) -> Task:
                ((field, values),) = mapped.items()
                for i, value in enumerate(values):
                    Task.tasks.append({**kwargs, field: value, "map_index": i})
                return Task.__new__(Task)

        return Partial()

    def __rshift__(self, other: Task) -> Task:
        return other


class Secret:
    def __init__(self, deploy_type: str, deploy_target: str | None, secret: str, key=None):
        self.deploy_type, self.deploy_target, self.secret, self.key = (
            deploy_type,
            deploy_target,
            secret,
            key,
        )


def kpo_tasks(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Imports the DAG file with stand-ins for Airflow, the Kubernetes client and pendulum;
    returns the tasks it made (in order) and the module's globals."""

    def module(name: str, **attrs: Any) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, m)
        return m

    for name in ["airflow", "airflow.providers", "airflow.providers.cncf"]:
        module(name)
    module("airflow.providers.cncf.kubernetes")
    module("airflow.providers.cncf.kubernetes.operators")
    module("airflow.providers.cncf.kubernetes.operators.pod", KubernetesPodOperator=Task)
    module("airflow.providers.cncf.kubernetes.secret", Secret=Secret)
    module("airflow.decorators", dag=lambda **_: lambda f: f)
    module("pendulum", datetime=lambda *a, **k: None, duration=lambda **k: None)
    module("kubernetes")
    module("kubernetes.client")
    models = module("kubernetes.client.models")
    models.__getattr__ = lambda name: type(name, (Model,), {})
    monkeypatch.delenv("FSCTL_SHARDS", raising=False)
    monkeypatch.setattr(Task, "tasks", [])
    namespace = runpy.run_path(str(KPO_DAG))
    return Task.tasks, namespace


# What Airflow renders the DAG's templates to, for a run whose interval ends at GOLDEN_END
# (`ts` is isoformat) and a task whose OpenLineage parent is some run.
TEMPLATES = {
    "{{ data_interval_end | ts }}": "2025-11-23T00:00:00+00:00",
    "{{ macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance) }}": (
        "default/fsctl_kubernetes.materialize_shard/01a25337-8752-7f6c-8843-dcf2214f7b1e"
    ),
}


def render(text: str) -> str:
    for template, value in TEMPLATES.items():
        text = text.replace(template, value)
    assert "{{" not in text and "{%" not in text, text
    return text


def test_the_kpo_dag_compiles() -> None:
    compile(KPO_DAG.read_text(), str(KPO_DAG), "exec")


def test_the_kpo_dag_shards_and_commit_run_as_written(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks, namespace = kpo_tasks(monkeypatch)
    shards, commit = tasks[:-1], tasks[-1]
    n = namespace["SHARDS"]
    assert [t["task_id"] for t in tasks] == ["materialize_shard"] * n + ["commit"]
    assert [flag(t["arguments"], "--shard") for t in shards] == [f"{i}/{n}" for i in range(n)]
    assert flag(commit["arguments"], "--shards") == str(n)
    repo = Repo(tmp_path, server)
    for task in tasks:
        assert task["cmds"] == ["fsctl"] and task["do_xcom_push"] is True
        # OpenLineage's macro, from the provider's plugin: (OpenLineageProviderPlugin, its
        # lineage_parent_id), as in apache-airflow-providers-openlineage 2.20.3.
        parent = task["env_vars"]["OPENLINEAGE_PARENT_ID"]
        assert parent in TEMPLATES
        env = {k: render(v) for k, v in task["env_vars"].items() if k not in ABSENT_SERVERS}
        for secret in task["secrets"]:
            if secret.deploy_target == "FSCTL_REDIS_URL":
                env["FSCTL_REDIS_URL"] = server.url
        args = [render(a) for a in task["arguments"]]
        assert flag(args, "--json-out") == "/airflow/xcom/return.json"
        xcom = tmp_path / f"xcom-{task['task_id']}-{task.get('map_index', 0)}.json"
        args[args.index("--json-out") + 1] = str(xcom)
        args[args.index("--repo") + 1] = str(repo.dir)
        done = subprocess.run(
            [*task["cmds"], *args],
            env={**base_env(tmp_path), **env},
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        task["doc"] = one_document(done, xcom)
    assert all(statuses(t["doc"]) == {"shard_recorded"} for t in shards)
    assert commit["doc"]["command"] == "commit"
    assert statuses(commit["doc"]) == {"committed"}
    assert {s["manifest"]["as_of_ms"] for s in commit["doc"]["services"]} == {GOLDEN_END_S * 1000}


def test_the_kpo_pod_settings_validate_as_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks, _ = kpo_tasks(monkeypatch)
    for task in tasks:
        env = [{"name": k, "value": render(v)} for k, v in task["env_vars"].items()]
        env_from = []
        for s in task["secrets"]:
            assert s.deploy_type == "env"
            if s.deploy_target is None:
                env_from.append({"secretRef": {"name": s.secret}})
            else:
                ref = {"name": s.secret, "key": s.key}
                env.append({"name": s.deploy_target, "valueFrom": {"secretKeyRef": ref}})
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": task["name"], "namespace": task["namespace"]},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": task["security_context"],
                "volumes": serialized(task["volumes"]),
                "containers": [
                    {
                        "name": "base",
                        "image": task["image"],
                        "command": task["cmds"],
                        "args": [render(a) for a in task["arguments"]],
                        "env": env,
                        "envFrom": env_from,
                        "volumeMounts": serialized(task["volume_mounts"]),
                        "resources": serialized(task["container_resources"]),
                        "securityContext": task["container_security_context"],
                        "terminationMessagePolicy": task["termination_message_policy"],
                    }
                ],
            },
        }
        for version in VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
