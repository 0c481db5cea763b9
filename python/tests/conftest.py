"""Fixtures: a real redis-server on a free port (FSCTL_TEST_SERVER picks another binary), and the
golden fixture repo materialized into it by the fsctl binary (FSCTL_BIN, or target/debug/fsctl
as `cargo test` builds it)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_END = "2025-11-23T00:00:00Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, extra: list[str] | None = None) -> None:
        binary = os.environ.get("FSCTL_TEST_SERVER", "redis-server")
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp),
                    *(extra or []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._answers():
                return
        raise RuntimeError(f"{binary} did not start")

    def _answers(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                redis.Redis(port=self.port).ping()
                return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def fsctl_bin() -> str:
    path = os.environ.get("FSCTL_BIN", str(ROOT / "target" / "debug" / "fsctl"))
    if not Path(path).exists():
        pytest.skip(f"the fsctl binary is not built at {path} (cargo build first)")
    return path


class Repo:
    """A scratch copy of a fixture repo (fixtures/NAME), and fsctl run against `server`."""

    def __init__(self, tmp: Path, server: Any, name: str = "golden") -> None:
        self.dir = tmp / name
        shutil.copytree(ROOT / "fixtures" / name, self.dir)
        self.server = server

    def edit(self, old: str, new: str) -> None:
        path = self.dir / "feature_store.yaml"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    def fsctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FSCTL_REDIS_URL": self.server.url}
        done = subprocess.run(
            [fsctl_bin(), "--repo", str(self.dir), *args],
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return done

    def materialize(self, end: str = GOLDEN_END) -> str:
        out = self.fsctl("--format", "json", "materialize", "--end", end).stdout
        return json.loads(out)["services"][0]["snapshot"]

    def get_json(self, service: str, *entity: str) -> dict:
        args = [a for e in entity for a in ("--entity", e)]
        return json.loads(self.fsctl("--format", "json", "get", "--service", service, *args).stdout)


@pytest.fixture
def server(tmp_path: Path):
    s = Server(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def golden(tmp_path: Path, server: Server) -> Repo:
    repo = Repo(tmp_path, server)
    repo.materialize()
    return repo


@pytest.fixture
def contract(tmp_path: Path, server: Server) -> Repo:
    repo = Repo(tmp_path, server, "contract")
    repo.materialize()
    return repo
