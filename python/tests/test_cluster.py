"""The Python client on a real local Redis Cluster of three primaries (SPEC §3.2): the same
values as `fsctl get` reads there, `get_many` spread over the primaries."""

from __future__ import annotations

import time

import pytest
import redis
from conftest import Repo, Server

from fsctl_client import FeatureClient

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
