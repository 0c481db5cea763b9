"""The Python client on a real local Redis Cluster of three primaries (SPEC §3.2): the same
values as `fsctl get` reads there, `get_many` spread over the primaries."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from conftest import Repo, Server, free_port

from fsctl_client import AsyncFeatureClient, ConfigError, FeatureClient

CLUSTER_ARGS = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]


class Cluster:
    def __init__(self, tmp) -> None:
        self.nodes = []
        for i in range(3):
            d = tmp / f"node{i}"
            d.mkdir()
            self.nodes.append(Server(d, CLUSTER_ARGS))
        per = 16384 // 3
        for i, n in enumerate(self.nodes):
            last = 16383 if i == 2 else (i + 1) * per - 1
            redis.Redis(port=n.port).execute_command("CLUSTER ADDSLOTSRANGE", i * per, last)
        for n in self.nodes[1:]:
            redis.Redis(port=self.nodes[0].port).execute_command(
                "CLUSTER MEET", "127.0.0.1", n.port
            )
        deadline = time.monotonic() + 30
        while not all(self._ok(n) for n in self.nodes):
            assert time.monotonic() < deadline, "the cluster did not form"
            time.sleep(0.05)

    @staticmethod
    def _ok(n: Server) -> bool:
        info = redis.Redis(port=n.port, decode_responses=True).execute_command("CLUSTER INFO")
        return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == 3

    @property
    def url(self) -> str:
        return ",".join(f"redis://127.0.0.1:{n.port}" for n in self.nodes)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.stop()


def test_a_cluster_reads_as_fsctl_get_reads_it(tmp_path, cluster):
    repo = Repo(tmp_path, cluster)
    repo.edit("type: redis\n", "type: redis_cluster\n")
    repo.materialize()
    client = FeatureClient(cluster.url, project="golden", key_prefix="fst", cluster=True)
    entities = list(range(1, 10))
    got = client.get_many("scoring", entities)
    found = [g for g in got if g.found]
    assert len(found) >= 5
    for g in found:
        want = repo.get_json("scoring", f"customer_id={g.entity}")
        assert list(g.values) == list(want["values"])
        assert g.snapshot == want["snapshot"]
    # The vectors live on more than one primary: get_many crossed slots and nodes.
    holders = {
        n.port
        for n in cluster.nodes
        for g in found
        if redis.Redis(port=n.port).execute_command(
            "CLUSTER COUNTKEYSINSLOT",
            redis.Redis(port=n.port).execute_command("CLUSTER KEYSLOT", g.key),
        )
        > 0
    }
    assert len(holders) > 1


def test_a_first_seed_that_is_down_does_not_stop_the_client(tmp_path, cluster, monkeypatch):
    repo = Repo(tmp_path, cluster)
    repo.edit("type: redis\n", "type: redis_cluster\n")
    repo.materialize()
    # The first seed is a port nothing listens on; the second a live node. The CLI tries every
    # seed, and so does the client.
    seeds = f"redis://127.0.0.1:{free_port()},redis://127.0.0.1:{cluster.nodes[1].port}"
    repo.edit("url: redis://127.0.0.1:6379/0", f"url: {seeds}")
    monkeypatch.delenv("FSCTL_REDIS_URL", raising=False)
    client = FeatureClient.from_repo(repo.dir)
    entities = list(range(1, 10))
    got = client.get_many("scoring", entities)
    found = [g for g in got if g.found]
    assert len(found) >= 5
    for g in found:
        want = repo.get_json("scoring", f"customer_id={g.entity}")
        assert list(g.values) == list(want["values"])
        assert g.snapshot == want["snapshot"]

    async def read_async():
        c = AsyncFeatureClient.from_repo(repo.dir)
        try:
            return await c.get_many("scoring", entities)
        finally:
            await c.close()

    assert [a.values for a in asyncio.run(read_async())] == [g.values for g in got]


@pytest.mark.parametrize(
    ("seeds", "error"),
    [
        ("redis://:a,1@h1:1,redis://:b@h2:2", "differ in their password"),
        ("redis://h1:1,rediss://h2:2", "mixes redis:// and rediss://"),
        ("redis://h1:1,redis://h2:2/3", "only database 0, but `redis://h2:2/3`"),
    ],
)
def test_seeds_redis_py_cannot_serve_alike_are_a_config_error(seeds, error):
    # redis-py connects to every node with the same options: no silent pick among them, and
    # no password in the message.
    with pytest.raises(ConfigError, match=error) as e:
        FeatureClient(seeds, project="golden", cluster=True)
    assert "a,1" not in str(e.value)


def test_a_cluster_with_no_live_seed_is_store_unavailable_with_the_url_redacted():
    from fsctl_client import StoreUnavailable

    seeds = f"redis://:s3cr3t@127.0.0.1:{free_port()},redis://:s3cr3t@127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable) as raised:
        FeatureClient(seeds, cluster=True, project="golden")
    message = str(raised.value)
    assert "slot map" in message and "s3cr3t" not in message and "***" in message
