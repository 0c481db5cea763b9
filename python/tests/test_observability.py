"""What a run tells production about itself, against real parts: metrics pushed to a real
Prometheus Pushgateway (Debian's prometheus-pushgateway, started here on a free port) and read
back with prometheus_client's parser; OpenLineage events caught by a local HTTP receiver and
rebuilt with openlineage-python's own event classes, whose validators check the spec's types;
JSON log lines; the Kubernetes termination message; and endpoints that are down never failing
a run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import GOLDEN_END, Repo, Server, free_port, fsctl_bin
from prometheus_client.parser import text_string_to_metric_families

GOLDEN_AS_OF_S = 1_763_856_000.0
SERVICES = ["scoring", "balances"]


class Pushgateway:
    def __init__(self, tmp: Path) -> None:
        binary = os.environ.get("FSCTL_PUSHGATEWAY", shutil.which("prometheus-pushgateway"))
        if not binary:
            pytest.fail("prometheus-pushgateway is missing: run scripts/ensure-pushgateway.sh")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(tmp / "pushgateway.log", "w")
        self.proc = subprocess.Popen(
            [binary, f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, (tmp / "pushgateway.log").read_text()
            assert time.monotonic() < deadline, "the Pushgateway did not get ready"
            time.sleep(0.05)

    def samples(self) -> list:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            text = r.read().decode()
        return [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        found = [
            s.value
            for s in self.samples()
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


class Receiver:
    """An OpenLineage HTTP endpoint: keeps every event POSTed to /api/v1/lineage."""

    def __init__(self) -> None:
        events = self.events = []
        auth = self.auth = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events.append((self.path, self.headers["Content-Type"], json.loads(body)))
                auth.append(self.headers.get("Authorization"))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def gateway(tmp_path: Path):
    g = Pushgateway(tmp_path)
    yield g
    g.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def run(repo: Repo, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "FSCTL_REDIS_URL": repo.server.url, **env}
    return subprocess.run(
        [fsctl_bin(), "--repo", str(repo.dir), *args], capture_output=True, text=True, env=full
    )


def dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_the_gateway_holds_each_run_and_a_failure_keeps_the_last_success(
    tmp_path: Path, server: Server, gateway: Pushgateway
) -> None:
    repo = Repo(tmp_path, server)
    before = time.time()
    done = run(
        repo, "--format", "json", "materialize", "--end", GOLDEN_END,
        FSCTL_PUSHGATEWAY_URL=gateway.url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reports = {r["service"]: r for r in json.loads(done.stdout)["services"]}
    state = {"job": "fsctl", "project": "golden"}
    run_group = {**state, "command": "materialize"}
    success = {}
    for s in SERVICES:
        r = reports[s]
        success[s] = gateway.value("fsctl_last_success_timestamp_seconds", **state, service=s)
        assert before - 1 <= success[s] <= time.time() + 1
        as_of = gateway.value("fsctl_snapshot_as_of_timestamp_seconds", **state, service=s)
        assert as_of == GOLDEN_AS_OF_S
        group = {**run_group, "service": s}
        assert gateway.value("fsctl_last_run_exit_code", **group) == 0
        assert gateway.value("fsctl_last_run_keys_written", **group) == r["keys_written"] > 0
        assert gateway.value("fsctl_last_run_entities", **group) == r["entities"] > 0
        assert gateway.value("fsctl_last_run_bytes_written", **group) == r["bytes_written"] > 0
        rows = sum(v["rows_in_window"] for v in r["manifest"]["sources"].values())
        assert gateway.value("fsctl_last_run_rows_read", **group) == rows > 0
        assert gateway.value("fsctl_last_run_retries", **group) == 0
        for phase, ms in r["phases_ms"].items():
            got = gateway.value("fsctl_phase_duration_seconds", **group, phase=phase)
            assert got == pytest.approx(ms / 1000)
        ended = gateway.value("fsctl_last_run_timestamp_seconds", **group, outcome="success")
        assert before - 1 <= ended <= time.time() + 1

    # The next run cannot reach its Redis: the run group says so, the last success stays.
    failed = run(
        repo, "materialize", "--end", GOLDEN_END,
        FSCTL_PUSHGATEWAY_URL=gateway.url, FSCTL_REDIS_URL=dead_url(),
    )  # fmt: skip
    assert failed.returncode == 1
    for s in SERVICES:
        group = {**run_group, "service": s}
        assert gateway.value("fsctl_last_run_exit_code", **group) == 1
        assert gateway.value("fsctl_last_run_timestamp_seconds", **group, outcome="failure") > 0
        last = gateway.value("fsctl_last_success_timestamp_seconds", **state, service=s)
        assert last == success[s]
        assert gateway.value("fsctl_snapshot_as_of_timestamp_seconds", **state, service=s) == (
            GOLDEN_AS_OF_S
        )
        # The run group is replaced whole: no figure of the good run stays beside exit code 1.
        left = {
            x.name for x in gateway.samples() if all(x.labels.get(k) == v for k, v in group.items())
        }
        assert (
            "fsctl_last_run_keys_written" not in left and "fsctl_phase_duration_seconds" not in left
        )
        assert "fsctl_run_duration_seconds" in left
    # A shard's run is its own group; a configuration error (exit 2) is pushed too.
    bad = run(
        repo, "materialize", "--service", "nope", "--end", GOLDEN_END,
        FSCTL_PUSHGATEWAY_URL=gateway.url,
    )  # fmt: skip
    assert bad.returncode == 2
    assert gateway.value("fsctl_last_run_exit_code", **run_group, service="nope") == 2


def test_sharded_runs_push_one_group_per_shard(
    tmp_path: Path, server: Server, gateway: Pushgateway
) -> None:
    repo = Repo(tmp_path, server)
    for i in range(2):
        done = run(
            repo, "materialize", "--service", "scoring", "--end", GOLDEN_END,
            "--shard", f"{i}/2", "--commit-when-complete", FSCTL_PUSHGATEWAY_URL=gateway.url,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    group = {"job": "fsctl", "project": "golden", "service": "scoring", "command": "materialize"}
    keys = [gateway.value("fsctl_last_run_keys_written", **group, shard=f"{i}/2") for i in (0, 1)]
    status = json.loads(run(repo, "--format", "json", "status").stdout)["services"]
    # Shard 0 reports its own keys; shard 1, which committed, the snapshot's.
    scoring = next(s for s in status if s["service"] == "scoring")
    assert 0 < keys[0] < keys[1] == scoring["keys"]
    # Only the shard that committed set the store's state.
    assert gateway.value(
        "fsctl_snapshot_as_of_timestamp_seconds", job="fsctl", project="golden", service="scoring"
    ) == (GOLDEN_AS_OF_S)


def test_endpoints_that_are_down_never_fail_the_run(tmp_path: Path, server: Server) -> None:
    repo = Repo(tmp_path, server)
    down = f"http://127.0.0.1:{free_port()}"
    done = run(
        repo, "materialize", "--end", GOLDEN_END,
        FSCTL_PUSHGATEWAY_URL=down, OPENLINEAGE_URL=down,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("metrics not pushed to the Pushgateway") == 1, done.stderr
    assert done.stderr.count("OpenLineage events not sent") == 1, done.stderr
    assert "could not connect" in done.stderr
    got = repo.get_json("scoring", "customer_id=1")
    assert got["values"]


def rebuilt(event: dict):
    """The event rebuilt with openlineage-python's classes (their validators check the runId is
    a UUID, eventTime a date-time with a time, eventType a RunState, required fields present and
    no unknown ones), as a dict again."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent
    from openlineage.client.facet_v2 import (
        error_message_run,
        job_type_job,
        output_statistics_output_dataset,
        parent_run,
    )
    from openlineage.client.serde import Serde

    def facet(cls, data: dict):
        fields = {k: v for k, v in data.items() if not k.startswith("_")}
        return cls(**fields, producer=data["_producer"])

    run_facets = {}
    for name, data in event["run"]["facets"].items():
        if name == "parent":
            data = dict(data)
            data["run"] = parent_run.Run(**data["run"])
            data["job"] = parent_run.Job(**data["job"])
            if "root" in data:
                data["root"] = parent_run.Root(
                    run=parent_run.RootRun(**data["root"]["run"]),
                    job=parent_run.RootJob(**data["root"]["job"]),
                )
            run_facets[name] = facet(parent_run.ParentRunFacet, data)
        elif name == "errorMessage":
            run_facets[name] = facet(error_message_run.ErrorMessageRunFacet, data)
        else:
            raise AssertionError(f"unexpected run facet {name}")
    job_facets = {"jobType": facet(job_type_job.JobTypeJobFacet, event["job"]["facets"]["jobType"])}
    outputs = []
    for o in event["outputs"]:
        stats = o.get("outputFacets", {}).get("outputStatistics")
        output_facets = (
            {
                "outputStatistics": facet(
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet, stats
                )
            }  # noqa: E501
            if stats
            else {}
        )
        outputs.append(
            OutputDataset(namespace=o["namespace"], name=o["name"], outputFacets=output_facets)
        )
    rebuilt = RunEvent(
        eventType=event["eventType"],
        eventTime=event["eventTime"],
        run=Run(runId=event["run"]["runId"], facets=run_facets),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"], facets=job_facets),
        producer=event["producer"],
        inputs=[InputDataset(namespace=i["namespace"], name=i["name"]) for i in event["inputs"]],
        outputs=outputs,
    )
    assert rebuilt.schemaURL == event["schemaURL"]
    return Serde.to_dict(rebuilt)


def pruned(value):
    """`value` without empty dicts (the classes' defaults for facets not sent)."""
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def same_modelled(sent: dict, rebuilt: dict) -> None:
    """Everything the classes modelled came back as it was sent (fsctl's own facets aside)."""
    sent = json.loads(json.dumps(sent))
    for o in sent["outputs"]:
        o.pop("facets", None)
    for o in rebuilt["outputs"]:
        o.pop("facets", None)
        o.pop("inputFacets", None)
    for i in rebuilt["inputs"]:
        i.pop("facets", None)
        i.pop("inputFacets", None)
    assert pruned(rebuilt) == pruned(sent)


def test_openlineage_start_and_complete_name_the_files_read_and_the_keys_written(
    tmp_path: Path, server: Server, receiver: Receiver
) -> None:
    repo = Repo(tmp_path, server)
    parent = str(uuid.uuid4())
    env = {
        "OPENLINEAGE_URL": receiver.url,
        "OPENLINEAGE_NAMESPACE": "feature-store",
        "OPENLINEAGE_PARENT_ID": f"airflow/features.materialize/{parent}",
        "OPENLINEAGE_ROOT_PARENT_ID": f"airflow/features/{parent}",
    }
    done = run(repo, "--format", "json", "materialize", "--end", GOLDEN_END, **env)
    assert done.returncode == 0, done.stderr
    reports = {r["service"]: r for r in json.loads(done.stdout)["services"]}
    assert [e[2]["eventType"] for e in receiver.events] == ["START", "COMPLETE"]
    for path, content_type, event in receiver.events:
        assert path == "/api/v1/lineage"
        assert content_type == "application/json"
        same_modelled(event, rebuilt(event))
        assert event["job"] == {
            "namespace": "feature-store",
            "name": "golden.materialize",
            "facets": event["job"]["facets"],
        }
        p = event["run"]["facets"]["parent"]
        assert p["run"]["runId"] == parent
        assert p["job"] == {"namespace": "airflow", "name": "features.materialize"}
        assert p["root"]["job"]["name"] == "features"
    start, complete = (e[2] for e in receiver.events)
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert uuid.UUID(start["run"]["runId"]).version == 7
    # Inputs: every file the manifests read, by absolute path in the `file` namespace.
    expected = {
        ("file", str((repo.dir / f["path"]).resolve()))
        for r in reports.values()
        for src in r["manifest"]["sources"].values()
        for f in src["files"]
    }
    assert expected and {(i["namespace"], i["name"]) for i in complete["inputs"]} == expected
    assert start["inputs"] == []
    # Outputs: the store (no credentials) and each service's keys, with the run's figures.
    host = repo.server.url.removeprefix("redis://").split("/")[0]
    for event in (start, complete):
        assert [(o["namespace"], o["name"]) for o in event["outputs"]] == [
            (f"redis://{host}", f"fst:golden:{s}") for s in SERVICES
        ]
    for o, s in zip(complete["outputs"], SERVICES):
        r = reports[s]
        assert o["outputFacets"]["outputStatistics"]["rowCount"] == r["keys_written"]
        assert o["outputFacets"]["outputStatistics"]["size"] == r["bytes_written"]
        snap = o["facets"]["fsctl_snapshot"]
        assert snap["snapshot"] == r["snapshot"]
        assert snap["asOf"] == r["manifest"]["as_of"]
        assert snap["keysWritten"] == r["keys_written"]
        assert snap["status"] == "committed"
        assert snap["_schemaURL"].startswith("https://")

    # A run that fails sends FAIL with the error, after its START.
    receiver.events.clear()
    failed = run(repo, "materialize", "--end", GOLDEN_END, FSCTL_REDIS_URL=dead_url(), **env)
    assert failed.returncode == 1
    assert [e[2]["eventType"] for e in receiver.events] == ["START", "FAIL"]
    fail = receiver.events[1][2]
    same_modelled(fail, rebuilt(fail))
    assert "127.0.0.1" in fail["run"]["facets"]["errorMessage"]["message"]
    # A repo that does not load still gets both events, under the directory's name.
    receiver.events.clear()
    broken = run(repo, "materialize", "--service", "nope", **env)
    assert broken.returncode == 2
    assert [e[2]["eventType"] for e in receiver.events] == ["START", "FAIL"]


def test_json_logs_every_line_an_object_with_the_run_and_its_phases(
    tmp_path: Path, server: Server
) -> None:
    repo = Repo(tmp_path, server)
    done = run(repo, "--log-format", "json", "--format", "json", "materialize", "--end", GOLDEN_END)
    assert done.returncode == 0, done.stderr
    views = {v["name"] for r in json.loads(done.stdout)["services"] for v in r["manifest"]["views"]}
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines
    run_ids = {line["run_id"] for line in lines}
    assert len(run_ids) == 1 and uuid.UUID(run_ids.pop()).version == 7
    for line in lines:
        assert {"time", "level", "severity", "message", "run_id", "command"} <= line.keys()
        assert line["command"] == "materialize"
        assert (line["level"], line["severity"]) in {("info", "INFO"), ("warn", "WARNING")}
    phases = [line for line in lines if "phase" in line]
    reads = [p for p in phases if p["phase"] == "read" and p["finished"]]
    writes = [p for p in phases if p["phase"] == "write" and p["finished"]]
    assert {p["view"] for p in reads} == views and len(views) >= 2
    assert {p["service"] for p in writes} == set(SERVICES)
    for p in writes:
        assert p["unit"] == "entities" and p["done"] == p["total"] > 0
    summaries = {line["service"]: line for line in lines if "snapshot" in line}
    assert set(summaries) == set(SERVICES)
    for s in SERVICES:
        assert summaries[s]["status"] == "committed"
        assert summaries[s]["keys_written"] > 0 and summaries[s]["as_of"]

    # Text (the default, not a terminal): the lines read as they always have.
    text = run(repo, "materialize", "--end", GOLDEN_END, "--force")
    assert text.returncode == 0, text.stderr
    text_lines = text.stderr.splitlines()
    assert text_lines and all(line.startswith("fsctl: ") for line in text_lines), text_lines
    assert any(re.match(r"fsctl: write scoring: \d+ entities in [\d.]+s$", x) for x in text_lines)

    # A failure: the last line is the error, with its kind and exit code; with a termination
    # log, the summary lands there too.
    termination = tmp_path / "termination-log"
    termination.write_text("")
    failed = run(
        repo, "materialize", "--end", GOLDEN_END,
        FSCTL_LOG_FORMAT="json", FSCTL_REDIS_URL=dead_url(),
        FSCTL_TERMINATION_LOG=str(termination),
    )  # fmt: skip
    assert failed.returncode == 1
    lines = [json.loads(line) for line in failed.stderr.splitlines()]
    last = lines[-1]
    assert last["level"] == "error" and last["severity"] == "ERROR"
    assert last["exit_code"] == 1 and last["error"]["exit_code"] == 1
    assert last["error"]["kind"] == "redis"
    summary = termination.read_text()
    assert summary.startswith(f"fsctl {last['run_id']}: exit 1: redis: ")
    assert last["message"] in summary
    # Without a termination log file, nothing is created.
    gone = tmp_path / "absent"
    run(repo, "materialize", FSCTL_REDIS_URL=dead_url(), FSCTL_TERMINATION_LOG=str(gone))
    assert not gone.exists()


def test_a_dry_run_pushes_and_sends_nothing(
    tmp_path: Path, server: Server, gateway: Pushgateway, receiver: Receiver
) -> None:
    repo = Repo(tmp_path, server)
    env = {"FSCTL_PUSHGATEWAY_URL": gateway.url, "OPENLINEAGE_URL": receiver.url}
    for args in (["--dry-run"], ["--emit-resp", str(tmp_path / "out.resp")]):
        done = run(repo, "materialize", "--end", GOLDEN_END, *args, **env)
        assert done.returncode == 0, done.stderr
    assert not [s for s in gateway.samples() if s.name.startswith("fsctl_")]
    assert receiver.events == []


def test_no_password_or_key_reaches_events_metrics_logs_or_the_termination_log(
    tmp_path: Path, gateway: Pushgateway, receiver: Receiver
) -> None:
    password, key = "s3cret-redis-pw-41", "s3cret-lineage-key-97"
    server = Server(tmp_path, password=password)
    try:
        repo = Repo(tmp_path, server)
        url = f"redis://:{password}@127.0.0.1:{server.port}/0"
        termination = tmp_path / "termination-log"
        termination.write_text("")
        env = {
            "FSCTL_REDIS_URL": url,
            "FSCTL_PUSHGATEWAY_URL": gateway.url,
            "OPENLINEAGE_URL": receiver.url,
            "OPENLINEAGE_API_KEY": key,
            "FSCTL_TERMINATION_LOG": str(termination),
        }
        outputs = []
        for fmt in ("text", "json"):
            done = run(repo, "--log-format", fmt, "materialize", "--end", GOLDEN_END, **env)
            assert done.returncode == 0, done.stderr
            outputs += [done.stdout, done.stderr]
        # A failure too: a wrong password, reported without either secret.
        bad = {**env, "FSCTL_REDIS_URL": f"redis://:{password}x@127.0.0.1:{server.port}/0"}
        failed = run(repo, "--log-format", "json", "materialize", "--end", GOLDEN_END, **bad)
        assert failed.returncode == 1
        outputs += [failed.stdout, failed.stderr, termination.read_text()]
        assert termination.read_text()
        assert receiver.auth and all(a == f"Bearer {key}" for a in receiver.auth)
        outputs += [json.dumps(e) for e in receiver.events]
        with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=5) as r:
            outputs.append(r.read().decode())
        for text in outputs:
            assert password not in text and key not in text
        start = receiver.events[0][2]
        assert start["outputs"][0]["namespace"] == f"redis://127.0.0.1:{server.port}"
    finally:
        server.stop()
