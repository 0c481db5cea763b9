"""`pip install fsctl`, as a newcomer would: the wheels `make test-python` builds (maturin's `bin`
wheel of the fsctl binary, from the tests' own compiled profile, and the fsctl-client wheel) go
into a fresh virtualenv; the installed `fsctl` materializes the demo repo into a real
redis-server and pushes its metrics to a real Pushgateway, and `fsctl-client[cli]` resolves the
fsctl of the same version."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, Server
from test_observability import Pushgateway


def wheels() -> Path:
    found = os.environ.get("FSCTL_WHEELS")
    if not found:
        message = "FSCTL_WHEELS is not set: `make test-python` builds the wheels and sets it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found).resolve()


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    d = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(d)
    return d


def pip(env_dir: Path, *args: str) -> None:
    done = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", *args],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_wheel_installs_fsctl_and_runs_the_demo(
    tmp_path: Path, env_dir: Path, server: Server
) -> None:
    version = cargo_version()
    (wheel,) = wheels().glob(f"fsctl-{version}-py3-none-*.whl")
    # The binary and the small `fsctl` package, nothing else (no fsctl-datagen).
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if ".data/" in n] == [f"fsctl-{version}.data/scripts/fsctl"]
    assert {n for n in names if n.startswith("fsctl/")} == {
        "fsctl/__init__.py", "fsctl/__main__.py", "fsctl/_find_fsctl.py",
    }  # fmt: skip
    # The fsctl wheel has no Python dependencies: nothing but the wheel is needed.
    pip(env_dir, "--no-index", str(wheel))
    fsctl = env_dir / "bin" / "fsctl"
    assert fsctl.is_file()
    out = subprocess.run([str(fsctl), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"fsctl {version}"
    python = str(env_dir / "bin" / "python")
    out = subprocess.run([python, "-m", "fsctl", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "materialize" in out.stdout and "Exit codes:" in out.stdout
    out = subprocess.run(
        [python, "-c", "import fsctl; print(fsctl.find_fsctl_bin())"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert Path(out.stdout.strip()) == fsctl
    # python -m fsctl passes the exit code through.
    bad = subprocess.run([python, "-m", "fsctl", "materialize", "--nope"], capture_output=True)
    assert bad.returncode == 2

    # The demo repo (make demo's example, smaller), materialized by the installed binary with
    # its metrics pushed to a Pushgateway.
    datagen = ROOT / "target" / "debug" / "fsctl-datagen"
    repo = tmp_path / "feature_repo"
    subprocess.run(
        [str(datagen), "banking", str(repo), "--entities", "2000"], check=True, capture_output=True
    )
    shutil.copy(ROOT / "feature_repo" / "feature_store.yaml", repo / "feature_store.yaml")
    gateway = Pushgateway(tmp_path)
    try:
        env = {
            "PATH": f"{env_dir / 'bin'}:{os.environ['PATH']}",
            "FSCTL_REDIS_URL": server.url,
            "FSCTL_PUSHGATEWAY_URL": gateway.url,
            "HOME": str(tmp_path),
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["fsctl", "--repo", str(repo), *args], capture_output=True, text=True, env=env
            )

        assert run("validate", "--data").returncode == 0
        done = run("--format", "json", "materialize")
        assert done.returncode == 0, done.stderr
        reports = json.loads(done.stdout)["services"]
        assert reports and all(r["status"] == "committed" for r in reports)
        for r in reports:
            keys = gateway.value(
                "fsctl_last_run_keys_written",
                job="fsctl", project="banking", service=r["service"], command="materialize",
            )  # fmt: skip
            assert keys == r["keys_written"] > 0
            as_of = gateway.value(
                "fsctl_snapshot_as_of_timestamp_seconds",
                job="fsctl", project="banking", service=r["service"],
            )  # fmt: skip
            assert as_of * 1000 == r["manifest"]["as_of_ms"]
        got = run("--format", "json", "get", "--service", "realtime_scoring", "--entity",
                  "customer_id=1000042")  # fmt: skip
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["values"]
    finally:
        gateway.stop()


def test_the_client_wheel_has_the_same_version_and_pins_fsctl_in_its_cli_extra(
    env_dir: Path,
) -> None:
    version = cargo_version()
    (client,) = wheels().glob(f"fsctl_client-{version}-py3-none-any.whl")
    # [cli] resolves fsctl from the wheels built beside it (its own dependencies from PyPI).
    pip(env_dir, "--find-links", str(wheels()), f"{client}[cli]")
    python = str(env_dir / "bin" / "python")
    out = subprocess.run(
        [python, "-c",
         "import importlib.metadata as m, fsctl, fsctl_client; "
         "print(m.version('fsctl'), m.version('fsctl-client'), fsctl.find_fsctl_bin())"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    fsctl_version, client_version, binary = out.stdout.split()
    assert fsctl_version == client_version == version
    assert Path(binary) == env_dir / "bin" / "fsctl"
