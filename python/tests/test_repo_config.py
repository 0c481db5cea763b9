"""`FeatureClient.from_repo` connects as the fsctl CLI does for the same repo: the password of
`password_env` / `password_file`, `tls_ca_file`, timeouts and retries, `${VAR}` in the URL,
relative paths against the repo directory; and the errors of a repo that cannot work (an unset
variable, a wrong password, a misspelled service, a missing extra) say what to fix. Every read
is of vectors the fsctl binary wrote into a real redis-server."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import Repo, Server, Tls, fsctl_bin

from fsctl_client import (
    AsyncFeatureClient,
    AuthenticationFailed,
    ConfigError,
    FeatureClient,
    MissingExtra,
    NoCommittedSnapshot,
    StoreUnavailable,
    UnknownService,
)
from fsctl_client._core import redact

PASSWORD = "s3cret pw:with/odd@chars"
PROFILE_LINE = "  key_prefix: fst\n"


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def assert_reads_as_fsctl(client, repo: Repo, cwd: Path | None = None) -> None:
    """Entities 1..3 of `scoring`, value by value as `fsctl get` reads them."""
    for entity in (1, 2, 3):
        want = repo.get_json("scoring", f"customer_id={entity}", cwd=cwd)
        got = client.get("scoring", entity)
        assert got.found and got.snapshot == want["snapshot"]
        assert list(got.values) == list(want["values"])
        for name, value in want["values"].items():
            assert same(got.values[name], value), (entity, name, got.values[name], value)


def started(tmp_path, needs: str, extra=None, **kwargs) -> Server:
    try:
        return Server(tmp_path, extra, **kwargs)
    except RuntimeError:
        pytest.skip(f"this redis-server does not start with {needs} enabled")


@pytest.fixture
def secured(tmp_path):
    s = Server(tmp_path, password=PASSWORD)
    yield s
    s.stop()


def test_password_env_supplies_the_password_and_fsctl_redis_url_the_server(
    tmp_path, secured, monkeypatch
):
    repo = Repo(tmp_path, secured)
    repo.edit(PROFILE_LINE, PROFILE_LINE + "  password_env: FSCTL_TEST_PW\n")
    monkeypatch.setenv("FSCTL_TEST_PW", PASSWORD)
    repo.materialize()
    # The repo's url (port 6379) is replaced by FSCTL_REDIS_URL, as for the CLI.
    monkeypatch.setenv("FSCTL_REDIS_URL", secured.url)
    client = FeatureClient.from_repo(repo.dir)
    assert client.url == secured.url
    assert_reads_as_fsctl(client, repo)

    async def read_async():
        c = AsyncFeatureClient.from_repo(repo.dir)
        try:
            return await c.get("scoring", 1)
        finally:
            await c.close()

    assert asyncio.run(read_async()).values == client.get("scoring", 1).values
    # Without the password the same server refuses, and says no password was configured.
    plain = FeatureClient(secured.url, project="golden", key_prefix="fst")
    with pytest.raises(AuthenticationFailed, match="no password is configured"):
        plain.get("scoring", 1)


def test_password_file_is_relative_to_the_repo_directory(tmp_path, secured, monkeypatch):
    repo = Repo(tmp_path, secured)
    (repo.dir / "secrets").mkdir()
    (repo.dir / "secrets" / "redis.pw").write_text(PASSWORD + "\nthe second line is not read\n")
    repo.edit(PROFILE_LINE, PROFILE_LINE + "  password_file: secrets/redis.pw\n")
    # fsctl runs in the repo directory, where the path means the same whatever the CLI
    # resolves it against.
    repo.materialize(cwd=repo.dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
    client = FeatureClient.from_repo(repo.dir, url=secured.url)
    assert_reads_as_fsctl(client, repo, cwd=repo.dir)
    assert "online_store.password_file" in client.password_source
    assert str(repo.dir / "secrets" / "redis.pw") in client.password_source

    # A file that is not there: the error names the path tried, in the repo directory.
    repo.edit("password_file: secrets/redis.pw", "password_file: secrets/nope.pw")
    with pytest.raises(ConfigError) as e:
        FeatureClient.from_repo(repo.dir, url=secured.url)
    tried = repo.dir / "secrets" / "nope.pw"
    assert str(e.value) == (
        f"online_store.password_file: cannot read {tried} (No such file or directory); a "
        "relative path is taken from the repo directory"
    )


def test_a_wrong_password_names_its_source_and_never_the_password(tmp_path, secured, monkeypatch):
    repo = Repo(tmp_path, secured)
    repo.edit(PROFILE_LINE, PROFILE_LINE + "  password_env: FSCTL_TEST_PW\n")
    monkeypatch.setenv("FSCTL_TEST_PW", PASSWORD)
    repo.materialize()
    monkeypatch.setenv("FSCTL_REDIS_URL", secured.url)

    wrong = "not-the-r1ght-one"
    monkeypatch.setenv("FSCTL_TEST_PW", wrong)
    with pytest.raises(AuthenticationFailed) as e:
        FeatureClient.from_repo(repo.dir).get("scoring", 1)
    message = str(e.value)
    assert isinstance(e.value, StoreUnavailable)
    assert "online_store.password_env (`FSCTL_TEST_PW`)" in message
    assert str(repo.dir / "feature_store.yaml") in message
    assert wrong not in message and PASSWORD not in message

    (repo.dir / "pw.txt").write_text(wrong + "\n")
    repo.edit("password_env: FSCTL_TEST_PW", "password_file: pw.txt")
    with pytest.raises(AuthenticationFailed) as e:
        FeatureClient.from_repo(repo.dir).get("scoring", 1)
    message = str(e.value)
    assert f"online_store.password_file ({repo.dir / 'pw.txt'})" in message
    assert wrong not in message and PASSWORD not in message

    # password_env naming an unset variable fails before connecting, as the CLI does.
    repo.edit("password_file: pw.txt", "password_env: FSCTL_TEST_UNSET_PW")
    monkeypatch.delenv("FSCTL_TEST_UNSET_PW", raising=False)
    with pytest.raises(ConfigError, match="password_env names `FSCTL_TEST_UNSET_PW`"):
        FeatureClient.from_repo(repo.dir)


# A wrong password whose pieces, cut at `,`, `@` or `:`, would each show if a URL were split at
# every comma or its user information ended at the first `@`.
WRONG_IN_URL = "x7q,9zk@jv4:w2m"
WRONG_PIECES = ("x7q", "9zk", "jv4", "w2m")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://app:s3cret@h/1", "rediss://app:***@h/1"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://tok@h", "redis://***@h"),
        ("redis://u:p@ss@host:6379/0", "redis://u:***@host:6379/0"),
        ("redis://app:a:b:c@h/0", "redis://app:***@h/0"),
        (f"redis://default:{WRONG_IN_URL}@h:1/0", "redis://default:***@h:1/0"),
        ("redis://:a@h1:1,redis://:b@h2:2", "redis://:***@h1:1,redis://:***@h2:2"),
        # A comma inside a password neither splits the list nor shows a piece of it.
        ("redis://:pa,ss@h1:1,redis://:b@h2:2", "redis://:***@h1:1,redis://:***@h2:2"),
        ("redis://:pa,ss@h1:1, rediss://h2:2", "redis://:***@h1:1,rediss://h2:2"),
        (
            "rediss://u:x,y@z:w@h1:1,rediss://u:x,y@z:w@h2:2",
            "rediss://u:***@h1:1,rediss://u:***@h2:2",
        ),
        ("pa,ss@h:1", "***@h:1"),
    ],
)
def test_redact_hides_every_password_of_a_url_list(url, shown):
    # The cases of src/base/secrets.rs `redacts_passwords`, and passwords with `@`, `,`, `:`.
    assert redact(url) == shown


def test_a_wrong_password_in_the_url_never_shows_a_piece_of_it(tmp_path, secured, monkeypatch):
    repo = Repo(tmp_path, secured)
    wrong = f"redis://default:{WRONG_IN_URL}@127.0.0.1:{secured.port}/0"
    shown = f"redis://default:***@127.0.0.1:{secured.port}/0"

    def refused() -> None:
        with pytest.raises(AuthenticationFailed) as e:
            FeatureClient.from_repo(repo.dir).get("scoring", 1)
        message = str(e.value)
        assert shown in message and "check the password from the URL" in message
        for piece in WRONG_PIECES:
            assert piece not in message, (piece, message)

    # From FSCTL_REDIS_URL...
    monkeypatch.setenv("FSCTL_REDIS_URL", wrong)
    refused()
    # ...and from online_store.url; the CLI shows the same redacted URL.
    monkeypatch.delenv("FSCTL_REDIS_URL")
    repo.edit("url: redis://127.0.0.1:6379/0", f"url: '{wrong}'")
    refused()
    env = {k: v for k, v in os.environ.items() if k != "FSCTL_REDIS_URL"}
    cli = subprocess.run(
        [fsctl_bin(), "--repo", str(repo.dir), "get", "--service", "scoring"]
        + ["--entity", "customer_id=1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert cli.returncode != 0 and shown in cli.stderr, cli.stderr
    assert not any(piece in cli.stderr for piece in WRONG_PIECES), cli.stderr


def test_the_tls_error_of_a_cluster_url_list_shows_no_password(tmp_path, monkeypatch):
    repo = Repo(tmp_path, None)
    (repo.dir / "ca.crt").write_text("not read: the URL is refused first\n")
    seeds = f"rediss://u:{WRONG_IN_URL}@h1:7000, redis://:{WRONG_IN_URL}@h2:7000"
    repo.edit("type: redis\n", "type: redis_cluster\n")
    repo.edit(PROFILE_LINE, PROFILE_LINE + "  tls_ca_file: ca.crt\n")
    monkeypatch.setenv("FSCTL_REDIS_URL", seeds)
    with pytest.raises(ConfigError) as e:
        FeatureClient.from_repo(repo.dir)
    message = str(e.value)
    assert "`rediss://u:***@h1:7000,redis://:***@h2:7000` is not rediss://" in message
    assert not any(piece in message for piece in WRONG_PIECES), message


def test_an_unset_variable_in_the_url_is_an_error_naming_it(golden, monkeypatch):
    golden.edit(
        "url: redis://127.0.0.1:6379/0", "url: redis://127.0.0.1:${FSCTL_TEST_REDIS_PORT}/0"
    )
    monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
    monkeypatch.delenv("FSCTL_TEST_REDIS_PORT", raising=False)
    with pytest.raises(ConfigError) as e:
        FeatureClient.from_repo(golden.dir)
    assert str(e.value) == (
        "online_store.url refers to environment variable `FSCTL_TEST_REDIS_PORT`, which is not set"
    )
    monkeypatch.setenv("FSCTL_TEST_REDIS_PORT", str(golden.server.port))
    client = FeatureClient.from_repo(golden.dir)
    assert client.url == golden.server.url
    assert_reads_as_fsctl(client, golden)
    # FSCTL_REDIS_URL is expanded too, and named when its variable is unset.
    monkeypatch.setenv("FSCTL_REDIS_URL", "redis://${FSCTL_TEST_UNSET_HOST}:1/0")
    with pytest.raises(ConfigError, match="FSCTL_REDIS_URL refers to .*FSCTL_TEST_UNSET_HOST"):
        FeatureClient.from_repo(golden.dir)


def test_timeouts_become_socket_timeouts_and_transient_faults_are_retried(tmp_path, monkeypatch):
    server = started(tmp_path, "DEBUG (Redis 7+)", ["--enable-debug-command", "yes"])
    try:
        repo = Repo(tmp_path, server)
        repo.edit(
            PROFILE_LINE,
            PROFILE_LINE + "  connect_timeout: 2s\n  response_timeout: 100ms\n"
            "  retry_attempts: 40\n  retry_max_delay: 50ms\n",
        )
        repo.materialize()
        monkeypatch.setenv("FSCTL_REDIS_URL", server.url)
        client = FeatureClient.from_repo(repo.dir)
        options = client.redis.connection_pool.connection_kwargs
        assert options["socket_connect_timeout"] == 2.0
        assert options["socket_timeout"] == 0.1
        assert (client.retry.attempts, client.retry.max_delay) == (40, 0.05)
        before = client.get("scoring", 1)

        def block(seconds: float) -> threading.Thread:
            t = threading.Thread(
                target=lambda: server.client().execute_command("DEBUG", "SLEEP", seconds)
            )
            t.start()
            time.sleep(0.1)  # the server is asleep now
            return t

        # The server does not answer for 0.8 s: each try times out after 100 ms, and the
        # retries ride it out.
        sleeper = block(0.8)
        start = time.monotonic()
        after = client.get("scoring", 1, missing="raise")
        waited = time.monotonic() - start
        sleeper.join()
        assert after.values == before.values and after.snapshot == before.snapshot
        assert waited > 0.4

        # With two tries the same fault is reported, naming the timeout and the tries.
        two = FeatureClient.from_repo(repo.dir, retry_attempts=2)
        two.get("scoring", 1)
        sleeper = block(1.0)
        with pytest.raises(StoreUnavailable) as e:
            two.get("scoring", 2)
        sleeper.join()
        assert "timed out" in str(e.value) and "response_timeout is 0.1 s" in str(e.value)
        assert str(e.value).endswith("after 2 attempts")

        # A server that cannot be reached at all fails at once, not after 40 tries.
        dead = FeatureClient.from_repo(repo.dir, url="redis://127.0.0.1:1/0")
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="127.0.0.1:1"):
            dead.get("scoring", 1)
        assert time.monotonic() - start < 1.0
    finally:
        server.stop()


def test_tls_ca_file_is_relative_to_the_repo_directory(tmp_path, monkeypatch):
    tls = Tls(tmp_path / "certs")
    server = started(tmp_path, "TLS", tls=tls)
    try:
        repo = Repo(tmp_path, server)
        (repo.dir / "tls").mkdir()
        (repo.dir / "tls" / "ca.crt").write_bytes(tls.ca.read_bytes())
        repo.edit(
            "url: redis://127.0.0.1:6379/0",
            f"url: {server.url}\n  tls_ca_file: tls/ca.crt",
        )
        repo.materialize(cwd=repo.dir)
        monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
        monkeypatch.chdir(tmp_path)
        client = FeatureClient.from_repo(repo.dir)
        assert client.url.startswith("rediss://")
        assert_reads_as_fsctl(client, repo, cwd=repo.dir)
        # The CA of a rediss:// server, given for a plain redis:// one: a configuration error.
        plain = f"redis://127.0.0.1:{server.port}/0"
        with pytest.raises(ConfigError, match="tls_ca_file is set but the URL .* not rediss://"):
            FeatureClient.from_repo(repo.dir, url=plain)
    finally:
        server.stop()


def test_a_misspelled_service_is_named_with_the_closest_one(golden, monkeypatch):
    monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
    client = FeatureClient.from_repo(golden.dir, url=golden.server.url)
    with pytest.raises(UnknownService) as e:
        client.get("scorng", 1)
    assert str(e.value) == (
        f"service 'scorng' is not defined in {golden.dir / 'feature_store.yaml'} "
        "(did you mean 'scoring'?); its services: balances, scoring"
    )
    assert e.value.suggestion == "scoring" and e.value.services == ["balances", "scoring"]
    with pytest.raises(UnknownService, match="'nothing_like_it' is not defined in .*; its"):
        client.get_many("nothing_like_it", [1])
    # A defined service that was never materialized has no committed snapshot.
    golden.edit(
        "  - name: balances\n",
        "  - name: later\n    features: [accounts]\n  - name: balances\n",
    )
    client = FeatureClient.from_repo(golden.dir, url=golden.server.url)
    with pytest.raises(NoCommittedSnapshot, match="'later' has no committed snapshot"):
        client.get("later", ("acme", 1))
    assert client.get("scoring", 1).found


def test_a_missing_extra_names_the_extra_to_install(golden, monkeypatch):
    monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
    client = FeatureClient.from_repo(golden.dir, url=golden.server.url)
    monkeypatch.setitem(sys.modules, "numpy", None)  # as if numpy were not installed
    with pytest.raises(MissingExtra) as e:
        client.get_many("balances", [("acme", 1)], as_numpy=True)
    assert isinstance(e.value, ImportError) and e.value.name == "numpy"
    assert "pip install 'fsctl-client[numpy]'" in str(e.value)
    # The plain read needs no extra.
    assert client.get("scoring", 1).found

    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError, match=r"pip install 'fsctl-client\[repo\]'"):
        FeatureClient.from_repo(golden.dir)
