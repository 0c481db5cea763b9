"""A newcomer's first session, end to end: `fsctl init DIR`, `fsctl validate`, `fsctl materialize`
into a real redis-server, then `FeatureClient.from_repo(DIR)` reads the example's values back."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Server, fsctl_bin

from fsctl_client import FeatureClient

# The latest row of these users in the data `fsctl init` writes (example_batch in
# src/commands/init.rs), with the declared defaults in place of nulls: user 1010 has no
# favorite_category (default "unknown") and no lifetime_value (`default: null`: None).
EXPECTED = {
    1001: {
        "user_stats.purchases_30d": 3,
        "user_stats.avg_order_value": 20.5,
        "user_stats.favorite_category": "books",
        "user_stats.is_subscriber": True,
        "user_stats.lifetime_value": 250.0,
    },
    1002: {
        "user_stats.purchases_30d": 10,
        "user_stats.avg_order_value": 33.5,
        "user_stats.favorite_category": "games",
        "user_stats.is_subscriber": False,
        "user_stats.lifetime_value": 260.0,
    },
    1010: {
        "user_stats.purchases_30d": 16,
        "user_stats.avg_order_value": 57.5,
        "user_stats.favorite_category": "unknown",
        "user_stats.is_subscriber": True,
        "user_stats.lifetime_value": None,
    },
}


def fsctl(cwd: Path, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """fsctl as a user types it in `cwd`, with FSCTL_REDIS_URL pointing at the test server."""
    env = {**os.environ, "FSCTL_REDIS_URL": server.url}
    done = subprocess.run([fsctl_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"fsctl {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_init_validate_materialize_then_read_from_python(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    init = json.loads(fsctl(tmp_path, server, "--format", "json", "init", "my_repo").stdout)
    assert init["project"] == "my_repo"
    assert [s["service"] for s in init["services"]] == ["user_scoring"]
    assert init["example_entity"] == {"user_id": 1001}
    repo = tmp_path / "my_repo"

    checked = json.loads(
        fsctl(tmp_path, server, "--format", "json", "--repo", "my_repo", "validate").stdout
    )
    assert checked["ok"] is True
    assert [f for f in checked["findings"] if f["severity"] == "error"] == []
    fsctl(tmp_path, server, "--repo", "my_repo", "materialize")

    monkeypatch.setenv("FSCTL_REDIS_URL", server.url)
    client = FeatureClient.from_repo(repo)
    try:
        for user, values in EXPECTED.items():
            v = client.get("user_scoring", {"user_id": user})
            assert v.found, user
            assert v.values == values, user
            # The Rust reader agrees.
            got = fsctl(
                tmp_path,
                server,
                "--format",
                "json",
                "--repo",
                "my_repo",
                "get",
                "--service",
                "user_scoring",
                "--entity",
                f"user_id={user}",
            )
            assert json.loads(got.stdout)["values"] == values, user
        # User 1001's latest row is one hour before the hour init ran in.
        seen = client.get("user_scoring", 1001).views["user_stats"]
        assert seen.event_time is not None and not seen.stale
        assert (seen.event_time.minute, seen.event_time.second) == (0, 0)
        age = datetime.now(timezone.utc) - seen.event_time
        assert timedelta(hours=1) <= age <= timedelta(hours=2, minutes=5), age
        assert not client.get("user_scoring", 999).found
    finally:
        client.close()
