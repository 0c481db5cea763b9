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
    """`password`: started with --requirepass. `tls`: a Tls whose certificate it serves, on a
    TLS port only."""

    def __init__(
        self,
        tmp: Path,
        extra: list[str] | None = None,
        password: str | None = None,
        tls: Tls | None = None,
    ) -> None:
        binary = os.environ.get("FSCTL_TEST_SERVER", "redis-server")
        self.password = password
        self.tls = tls
        if password is not None:
            extra = [*(extra or []), "--requirepass", password]
        if tls is not None:
            extra = [*(extra or []), *tls.server_args()]
        for _ in range(5):
            self.port = free_port()
            ports = (
                ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
            )
            self.proc = subprocess.Popen(
                [
                    binary,
                    *ports,
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
                self.client().ping()
                return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False

    def client(self) -> redis.Redis:
        """A redis-py client of this server, with its password and TLS."""
        tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        return redis.Redis(port=self.port, password=self.password, **tls)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Tls:
    """A private CA and a certificate it signed for 127.0.0.1 and localhost (openssl)."""

    def __init__(self, dir: Path) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        dir.mkdir(parents=True, exist_ok=True)
        self.ca, self.cert, self.key = dir / "ca.crt", dir / "server.crt", dir / "server.key"
        ca_key = dir / "ca.key"
        csr = dir / "server.csr"
        ext = dir / "server.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        for cmd in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca]
            + ["-days", "2", "-subj", "/CN=fsctl test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", csr]
            + ["-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial"]
            + ["-out", self.cert, "-days", "2", "-extfile", ext],
        ):
            subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)

    def server_args(self) -> list[str]:
        return [
            "--tls-cert-file",
            str(self.cert),
            "--tls-key-file",
            str(self.key),
            "--tls-ca-cert-file",
            str(self.ca),
            "--tls-auth-clients",
            "no",
        ]


# Resolved now: a test may change the working directory or run fsctl in another one.
FSCTL_BIN = Path(os.environ.get("FSCTL_BIN", str(ROOT / "target" / "debug" / "fsctl"))).resolve()


def fsctl_bin() -> str:
    if not FSCTL_BIN.exists():
        pytest.skip(f"the fsctl binary is not built at {FSCTL_BIN} (cargo build first)")
    return str(FSCTL_BIN)


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

    def fsctl(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Runs fsctl on this repo, in `cwd` (default: the working directory)."""
        env = {**os.environ, "FSCTL_REDIS_URL": self.server.url}
        done = subprocess.run(
            [fsctl_bin(), "--repo", str(self.dir), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
        )
        assert done.returncode == 0, done.stderr
        return done

    def materialize(self, end: str = GOLDEN_END, cwd: Path | None = None) -> str:
        out = self.fsctl("--format", "json", "materialize", "--end", end, cwd=cwd).stdout
        return json.loads(out)["services"][0]["snapshot"]

    def get_json(self, service: str, *entity: str, cwd: Path | None = None) -> dict:
        args = [a for e in entity for a in ("--entity", e)]
        out = self.fsctl("--format", "json", "get", "--service", service, *args, cwd=cwd)
        return json.loads(out.stdout)


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
