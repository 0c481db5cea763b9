"""`fsctl --format prometheus status`, read by prometheus_client's own parser: the freshness
gauges hold the committed manifests' figures, and a stale store exits 1 with stale = 1."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import Repo, fsctl_bin
from prometheus_client.parser import text_string_to_metric_families

GOLDEN_AS_OF_S = 1_763_856_000.0


def run(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FSCTL_REDIS_URL": repo.server.url}
    return subprocess.run(
        [fsctl_bin(), "--repo", str(repo.dir), *args], capture_output=True, text=True, env=env
    )


def gauges(text: str) -> dict[tuple[str, str], float]:
    """(metric, service) -> value, as the Prometheus parser reads the text."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            assert sample.labels["project"] == "golden"
            out[(sample.name, sample.labels["service"])] = sample.value
    return out


def test_status_as_prometheus_text_holds_the_committed_figures(golden: Repo) -> None:
    done = run(golden, "--format", "prometheus", "status")
    assert done.returncode == 0, done.stderr
    got = gauges(done.stdout)
    manifests = json.loads(run(golden, "--format", "json", "status").stdout)["services"]
    assert [m["service"] for m in manifests] == ["scoring", "balances"]
    for m in manifests:
        s = m["service"]
        assert got[("fsctl_snapshot_present", s)] == 1
        assert got[("fsctl_snapshot_stale", s)] == 0
        assert got[("fsctl_snapshot_as_of_timestamp_seconds", s)] == GOLDEN_AS_OF_S
        assert got[("fsctl_snapshot_keys", s)] == m["keys"] > 0
        assert got[("fsctl_snapshot_bytes", s)] == m["bytes"] > 0
        assert got[("fsctl_snapshot_max_age_seconds", s)] == 3650 * 86400
        assert got[("fsctl_snapshot_age_seconds", s)] == m["age_s"] > 0


def test_a_stale_store_exits_1_and_says_so_in_the_metrics(golden: Repo) -> None:
    done = run(golden, "--format", "prometheus", "status", "--max-age", "1h")
    assert done.returncode == 1
    got = gauges(done.stdout)
    assert got[("fsctl_snapshot_stale", "scoring")] == 1
    assert got[("fsctl_snapshot_max_age_seconds", "scoring")] == 3600
    assert "stale: scoring is" in done.stderr
