"""The Python client against vectors fsctl wrote into a real redis-server, checked value by
value against `fsctl get` (the Rust reader) and SPEC §3's test vector."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
import redis

from fsctl_client import (
    AsyncFeatureClient,
    CorruptVector,
    EntityNotFound,
    FeatureClient,
    FingerprintMismatch,
    NoCommittedSnapshot,
    StoreUnavailable,
    UnknownService,
    decode,
    fingerprint,
)

PREFIX = "fst"


def client(repo, **kw) -> FeatureClient:
    return FeatureClient(repo.server.url, project="golden", key_prefix=PREFIX, **kw)


def data_keys(url: str, service: str) -> list[str]:
    r = redis.Redis.from_url(url)
    return sorted(k.decode() for k in r.scan_iter(f"{PREFIX}:golden:{service}:*"))


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_spec_test_vector_decodes_and_its_fingerprint_is_the_spec_one():
    fp = fingerprint(
        [("customer_id", "int64")],
        [
            ("customer_profile", "age", "int64"),
            ("transactions_agg", "tx_sum_1h", "float64"),
            ("risk_signals", "device_risk", "float32"),
        ],
    )
    assert f"{fp:016x}" == "b9d0f02c6263a15e"
    raw = bytes.fromhex(
        "0193cfb9d0f02c6263a15e93cf00064437ba50a000c0cf00064436e3bcfc00932acb4029000000000000ca3e800000"
    )
    assert decode(raw, "k") == (fp, [1763856000000000, None, 1763852400000000], [42, 12.5, 0.25])


@pytest.mark.parametrize(
    "service, join_keys", [("scoring", ["customer_id"]), ("balances", ["bank", "account_no"])]
)
def test_every_vector_reads_as_fsctl_get_reads_it(golden, service, join_keys):
    c = client(golden)
    keys = data_keys(golden.server.url, service)
    assert keys
    for key in keys:
        rendered = key.split(":", 4)[4]
        want = golden.get_json(service, *_entity_args(join_keys, rendered))
        got = c.get(service, _entity(join_keys, rendered))
        assert got.found and got.key == key and got.snapshot == want["snapshot"]
        assert list(got.values) == list(want["values"]), "service order"
        for name, value in want["values"].items():
            assert same(got.values[name], value), (key, name, got.values[name], value)
        assert [v.view for v in got.views.values()] == [v["view"] for v in want["views"]]


def _split(rendered: str) -> list[str]:
    parts, cur, esc = [], "", False
    for ch in rendered:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "\\":
            esc = True
        elif ch == ":":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def _entity(join_keys: list[str], rendered: str) -> dict:
    values = [rendered] if len(join_keys) == 1 else _split(rendered)
    return {
        k: (int(v) if k.endswith("_id") or k == "account_no" else v)
        for k, v in zip(join_keys, values)
    }


def _entity_args(join_keys: list[str], rendered: str) -> list[str]:
    return [f"{k}={v}" for k, v in _entity(join_keys, rendered).items()]


def test_missing_entities_follow_the_chosen_mode(golden):
    c = client(golden)
    none = c.get("scoring", 424242)
    assert not none.found and none.values == {}
    defaults = c.get("scoring", 424242, missing="defaults")
    assert not defaults.found
    assert defaults.values["profile.segment"] == "none"
    assert defaults.values["profile.txn_count"] == 0
    assert defaults.values["profile.age"] is None
    with pytest.raises(EntityNotFound, match="424242"):
        c.get("scoring", 424242, missing="raise")


def test_views_older_than_their_ttl_are_flagged_or_count_as_missing(golden):
    c = client(golden)
    # The golden rows are from 2025 and the views' ttl is 1d: every view with a row is stale.
    flagged = c.get("scoring", 1)
    assert flagged.found and flagged.stale_views
    for view in flagged.stale_views:
        assert flagged.views[view].age_s > 86400
    as_missing = c.get("scoring", 1, stale="missing", missing="defaults")
    assert not as_missing.found and as_missing.values["profile.segment"] == "none"


def test_a_foreign_fingerprint_or_a_corrupt_vector_is_never_returned(golden):
    c = client(golden)
    r = redis.Redis.from_url(golden.server.url)
    key = c.get("scoring", 1).key
    good = r.get(key)
    fp, stamps, values = decode(good, key)
    import msgpack

    r.set(key, b"\x01" + msgpack.packb([fp ^ 1, stamps, values]))
    with pytest.raises(FingerprintMismatch, match=key):
        client(golden).get("scoring", 1)
    r.set(key, b"\x07garbage")
    with pytest.raises(CorruptVector, match=key):
        client(golden).get("scoring", 1)


def test_a_new_current_is_followed_within_half_the_grace(golden):
    c = client(golden, retire_grace=0.4)
    first = c.get("scoring", 1).snapshot
    second = golden.materialize("2025-11-23T01:00:00Z")
    assert second != first
    deadline = time.monotonic() + 0.2 + 0.5
    while c.get("scoring", 1).snapshot != second:
        assert time.monotonic() < deadline, "not followed within retire_grace / 2"
        time.sleep(0.02)


def test_a_retired_snapshot_makes_the_client_resolve_again_at_once(golden):
    golden.edit(
        "  ttl_jitter: 0.1\n", "  ttl_jitter: 0.1\n  keep_snapshots: 1\n  retire_grace: 1s\n"
    )
    c = client(golden, retire_grace=3600)  # the pointer cache alone would keep the old one
    first = c.get("scoring", 1).snapshot
    second = golden.materialize("2025-11-23T01:00:00Z")
    r = redis.Redis.from_url(golden.server.url)
    while r.exists(f"{PREFIX}:golden:scoring:{first}:1"):
        time.sleep(0.05)
    got = c.get("scoring", 1)
    assert got.found and got.snapshot == second


def test_the_lru_serves_hot_entities_and_is_dropped_on_a_new_current(golden):
    c = client(golden, cache_size=10, cache_ttl=60, retire_grace=0.2)
    a = c.get("scoring", 1)
    b = c.get("scoring", 1)
    assert b is a and c.cache_stats["hits"] == 1
    golden.materialize("2025-11-23T01:00:00Z")
    time.sleep(0.15)
    fresh = c.get("scoring", 1)
    assert fresh.snapshot != a.snapshot


def test_async_client_reads_the_same(golden):
    sync = client(golden).get_many("scoring", [1, 2, 3, 424242])

    async def run():
        c = AsyncFeatureClient(golden.server.url, project="golden", key_prefix=PREFIX)
        try:
            return await c.get_many("scoring", [1, 2, 3, 424242])
        finally:
            await c.close()

    got = asyncio.run(run())
    assert [(g.key, g.found, g.values) for g in got] == [(s.key, s.found, s.values) for s in sync]


def test_from_repo_and_errors_that_name_what_is_wrong(golden, tmp_path):
    c = FeatureClient.from_repo(golden.dir, url=golden.server.url)
    assert c.get("scoring", 1).found
    with pytest.raises(UnknownService, match="'nope' is not defined"):
        c.get("nope", 1)
    # A client not made from a repo does not know the services: `current` is missing.
    with pytest.raises(NoCommittedSnapshot, match="nope"):
        client(golden).get("nope", 1)
    dead = FeatureClient("redis://:s3cret-pw@127.0.0.1:1/0", project="golden", key_prefix=PREFIX)
    with pytest.raises(StoreUnavailable) as e:
        dead.get("scoring", 1)
    assert "s3cret-pw" not in str(e.value) and "***" in str(e.value)
