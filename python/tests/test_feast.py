"""Feast drop-in parity: fsctl run on an unchanged Feast 0.67 project (scripts/feast-fixture.py)
must leave Redis exactly as `feast materialize` does, and Feast's own FeatureStore must serve the
same features from either.

The first tests run Feast alone and pin down what it writes (the facts fsctl reproduces): keys,
fields, value encodings, the window, the precomputed vectors, TTLs, dedup. The parity tests
then run `feast materialize` into one redis-server and `fsctl materialize` into another and
compare the two field by field. They need the fsctl binary (FSCTL_BIN, or target/debug/fsctl).
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import struct
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mmh3
import pandas as pd
import pyarrow.parquet as pq
import pytest
import redis
from conftest import FSCTL_BIN, ROOT, Server
from feast import FeatureStore
from feast.data_source import PushMode
from feast.infra.key_encoding_utils import deserialize_entity_key
from feast.protos.feast.core.PrecomputedFeatureVector_pb2 import PrecomputedFeatureVector
from feast.protos.feast.types.Value_pb2 import (
    BoolList,
    BytesList,
    DoubleList,
    FloatList,
    Int32List,
    Int64List,
    StringList,
    Value,
)
from google.protobuf.timestamp_pb2 import Timestamp

# Keys fsctl may keep for itself (manifests, locks, ...) in the Feast database: ignored when the
# two databases are compared.
FSCTL_KEY_PREFIX = b"fs:"
# `key_ttl_seconds` in the fixture's feature_store.yaml.
KEY_TTL = 86400
# Seconds of wall-clock time a TTL comparison tolerates.
TTL_SLACK = 5

os.environ.setdefault("FEAST_USAGE", "False")

_spec = importlib.util.spec_from_file_location(
    "feast_fixture", ROOT / "scripts" / "feast-fixture.py"
)
assert _spec is not None and _spec.loader is not None
fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture)

PROJECT = fixture.PROJECT.encode()
START, END = fixture.WINDOW  # as `feast materialize` takes them (naive = UTC)
START_Z, END_Z = START + "Z", END + "Z"  # as fsctl takes them
START_T, END_T = fixture.START, fixture.END
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
INT64_MIN = -(2**63)

# Entity rows per feature service for get_online_features: duplicates, no order, entities only
# in some views; 9999, 1011 (rows only before the window) and 1013 (an online=False view only)
# are unknown to Redis, so they go only to services without precompute_online (Feast fails the
# whole request when a vector is missing).
DRIVERS = [1003, 1001, 1014, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1012]
UNKNOWN_DRIVERS = [9999, 1011, 1013]
ENTITY_ROWS: dict[str, list[dict[str, Any]]] = {
    "svc_all": [{"driver_id": d} for d in DRIVERS + UNKNOWN_DRIVERS],
    "svc_subset": [{"driver_id": d} for d in UNKNOWN_DRIVERS + DRIVERS],
    "svc_alias": [{"driver_id": d} for d in DRIVERS + UNKNOWN_DRIVERS],
    "svc_pre": [{"driver_id": d} for d in DRIVERS],
    "svc_pre_alias": [{"driver_id": d} for d in reversed(DRIVERS)],
    "svc_mixed": [
        {"driver_id": d, "customer_id": c}
        for d, c in zip(DRIVERS + UNKNOWN_DRIVERS, ["c1", "c2", "ç-7", "c6", "zz"] * 4)
    ],
    "svc_pair": [
        {"driver_id": d, "customer_id": c}
        for d, c in [
            (1001, "c1"),
            (1001, "c2"),
            (1002, "c1"),
            (1003, "c3"),
            (1004, "ç-7"),
            (1012, "c6"),
            (1002, "c2"),  # both known, never a pair
            (1, "none"),
            (1001, "c1"),
        ]
    ],
}

SCALAR_FIELD = {
    "FLOAT": "float_val",
    "DOUBLE": "double_val",
    "INT32": "int32_val",
    "INT64": "int64_val",
    "STRING": "string_val",
    "BYTES": "bytes_val",
    "BOOL": "bool_val",
    "UNIX_TIMESTAMP": "unix_timestamp_val",
}
LIST_FIELD = {
    "STRING": ("string_list_val", StringList, ""),
    "BYTES": ("bytes_list_val", BytesList, b""),
    "INT32": ("int32_list_val", Int32List, None),
    "INT64": ("int64_list_val", Int64List, None),
    "DOUBLE": ("double_list_val", DoubleList, math.nan),
    "FLOAT": ("float_list_val", FloatList, math.nan),
    "BOOL": ("bool_list_val", BoolList, False),
    "UNIX_TIMESTAMP": ("unix_timestamp_list_val", Int64List, INT64_MIN),
}


# ---------------------------------------------------------------------------------------------
# Feast's layout, re-derived independently of Feast (FEAST.md §3)


def field(name: str) -> bytes:
    """The hash field of `<view>:<feature>`: murmur3-32 (seed 0), little endian."""
    return struct.pack("<I", mmh3.hash(name, signed=False))


def redis_key(join: dict[str, int | str]) -> bytes:
    """Entity key serialization v3 + project: join keys sorted by name."""
    names = sorted(join)
    out = struct.pack("<I", len(names))
    for n in names:
        b = n.encode()
        out += struct.pack("<II", 2, len(b)) + b
    for n in names:
        v = join[n]
        if isinstance(v, int):
            out += struct.pack("<IIq", 4, 8, v)
        else:
            b = v.encode()
            out += struct.pack("<II", 2, len(b)) + b
    return out + PROJECT


def ts_bytes(t: datetime) -> bytes:
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts.SerializeToString()


def unix_seconds(t: datetime) -> int:
    """Whole seconds since the epoch, rounded down (also before 1970)."""
    return (t - EPOCH) // timedelta(seconds=1)


def expected_value(vtype: str, v: Any) -> Value:
    """What `feast materialize` writes for the Parquet value `v` of a feature of `vtype`."""
    if vtype.endswith("_LIST"):
        if v is None:
            return Value()
        name, cls, null = LIST_FIELD[vtype[: -len("_LIST")]]
        items = []
        for x in v:
            if x is None:
                assert null is not None, f"Feast cannot materialize a null inside {vtype}"
                x = null
            elif vtype == "UNIX_TIMESTAMP_LIST":
                x = unix_seconds(x)
            items.append(x)
        return Value(**{name: cls(val=items)})
    if vtype == "UNIX_TIMESTAMP":
        return Value(unix_timestamp_val=INT64_MIN if v is None else unix_seconds(v))
    if v is None or (vtype in ("FLOAT", "DOUBLE") and math.isnan(v)):
        return Value()
    return Value(**{SCALAR_FIELD[vtype]: v})


def join_keys_of(fv) -> dict[str, str]:
    """Join key -> value type name; an entity-less view has `__dummy_id` (STRING)."""
    cols = {c.name: c.dtype.to_value_type().name for c in fv.entity_columns}
    return cols or {"__dummy_id": "STRING"}


def latest_rows(repo: Path, fv) -> dict[bytes, tuple[dict[str, Any], datetime, dict[str, Any]]]:
    """Redis key -> (join keys, event time, row) of the view's latest row in the window: the
    greatest (event time, created time) with START <= event time <= END, both ends inclusive."""
    src = fv.batch_source
    mapping = src.field_mapping or {}
    created = src.created_timestamp_column or None
    best: dict[bytes, tuple[tuple, dict[str, Any], dict[str, Any]]] = {}
    ties: set[bytes] = set()
    joins = join_keys_of(fv)
    for raw in pq.read_table(repo / src.path).to_pylist():
        row = {mapping.get(k, k): v for k, v in raw.items()}
        t = row[src.timestamp_field]
        if not START_T <= t <= END_T:
            continue
        join = {k: row.get(k, "") for k in joins}
        key = redis_key(join)
        order = (t, row[created]) if created else (t,)
        if key in best and order == best[key][0]:
            ties.add(key)
        if key not in best or order > best[key][0]:
            best[key] = (order, join, row)
            ties.discard(key)
    # Feast breaks a complete tie by its sort's whim: the fixture has none.
    assert not ties, f"{fv.name}: rows tied on event (and created) time: {ties}"
    return {k: (join, order[0], row) for k, (order, join, row) in best.items()}


class Expected:
    """What `feast materialize START END` writes for the project, vectors apart."""

    def __init__(self, repo: Path, store: FeatureStore) -> None:
        self.hashes: dict[bytes, dict[bytes, bytes]] = {}
        self.joins: dict[bytes, dict[str, Any]] = {}
        self.times: dict[tuple[bytes, str], datetime] = {}
        for fv in store.list_feature_views():
            fv = store.get_feature_view(fv.name)
            if not fv.online:
                continue
            types = {f.name: f.dtype.to_value_type().name for f in fv.features}
            for key, (join, t, row) in latest_rows(repo, fv).items():
                h = self.hashes.setdefault(key, {})
                self.joins[key] = join
                self.times[(key, fv.name)] = t
                h[f"_ts:{fv.name}".encode()] = ts_bytes(t)
                for name, vtype in types.items():
                    v = expected_value(vtype, row.get(name))
                    h[field(f"{fv.name}:{name}")] = v.SerializeToString()


def precompute_services(store: FeatureStore) -> list:
    return [s for s in store.list_feature_services() if s.precompute_online]


def vector_fields(store: FeatureStore) -> tuple[dict[bytes, str], set[bytes]]:
    """The precomputed vector field of each precompute service (-> its name) and their
    `_ts:__precomputed__<svc>` fields."""
    vec = {field(f"__precomputed__{s.name}:vector"): s.name for s in precompute_services(store)}
    tss = {f"_ts:__precomputed__{s.name}".encode() for s in precompute_services(store)}
    return vec, tss


def decode_vector(raw: bytes) -> PrecomputedFeatureVector:
    outer = Value()
    outer.ParseFromString(raw)
    assert outer.WhichOneof("val") == "bytes_val", raw[:16].hex()
    vec = PrecomputedFeatureVector()
    vec.ParseFromString(outer.bytes_val)
    return vec


def vector_tuple(vec: PrecomputedFeatureVector) -> tuple:
    """Everything of a vector but precomputed_at; values as bytes (NaN-safe)."""
    return (
        list(vec.feature_names),
        [v.SerializeToString() for v in vec.values],
        [
            (t.feature_view_name, t.HasField("event_timestamp"), t.event_timestamp.ToNanoseconds())
            for t in vec.fv_timestamps
        ],
    )


def describe_key(key: bytes) -> str:
    try:
        ek = deserialize_entity_key(key[: -len(PROJECT)], 3)
        vals = [str(v).strip() for v in ek.entity_values]
        return repr(dict(zip(ek.join_keys, vals)))
    except Exception:
        return repr(key)


def field_names(store: FeatureStore) -> dict[bytes, str]:
    names = {}
    for fv in store.list_feature_views():
        for f in fv.features:
            names[field(f"{fv.name}:{f.name}")] = f"{fv.name}:{f.name}"
    for s in store.list_feature_services():
        names[field(f"__precomputed__{s.name}:vector")] = f"__precomputed__{s.name}:vector"
    return names


# ---------------------------------------------------------------------------------------------
# Running Feast and fsctl


def conn(server: Server) -> str:
    """Feast's connection_string for `server` (host:port, not a URL)."""
    return f"127.0.0.1:{server.port}"


def feast_store(repo: Path, server: Server) -> FeatureStore:
    """Feast's FeatureStore for `repo` with FSDROP_REDIS pointing at `server`."""
    old = os.environ.get("FSDROP_REDIS")
    os.environ["FSDROP_REDIS"] = conn(server)
    try:
        return FeatureStore(repo_path=str(repo))
    finally:
        if old is None:
            del os.environ["FSDROP_REDIS"]
        else:
            os.environ["FSDROP_REDIS"] = old


def feast_materialize(repo: Path, server: Server) -> None:
    fixture.feast(repo, "materialize", START, END, env={"FSDROP_REDIS": conn(server)})


def fsctl(repo: Path, server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`fsctl ARGS --repo REPO` with FSDROP_REDIS pointing at `server` (Redis comes from Feast's
    feature_store.yaml: FSCTL_REDIS_URL is removed)."""
    assert FSCTL_BIN.exists(), f"the fsctl binary is not built at {FSCTL_BIN} (cargo build first)"
    env = {**os.environ, "FSDROP_REDIS": conn(server)}
    env.pop("FSCTL_REDIS_URL", None)
    return subprocess.run(
        [str(FSCTL_BIN), *args, "--repo", str(repo)], capture_output=True, text=True, env=env
    )


def fsctl_materialize(repo: Path, server: Server, *extra: str) -> None:
    done = fsctl(repo, server, "materialize", "--start", START_Z, "--end", END_Z, *extra)
    assert done.returncode == 0, f"fsctl materialize failed:\n{done.stdout}\n{done.stderr}"


def dump(client: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash but fsctl's own keys; a key of another type as {b"(type)": its type}."""
    out = {}
    for k in client.scan_iter():
        if k.startswith(FSCTL_KEY_PREFIX):
            continue
        kind = client.type(k)
        out[k] = client.hgetall(k) if kind == b"hash" else {b"(type)": kind}
    return out


def normalized(x: Any) -> Any:
    """`x` with NaN replaced by a marker, so that equal results compare equal."""
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if isinstance(x, dict):
        return {k: normalized(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [normalized(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project after `feast apply` (copy it before running anything on it)."""
    return fixture.generate(tmp_path_factory.mktemp("feast") / "fsdrop")


@pytest.fixture(scope="module")
def generated_unsupported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture.generate(
        tmp_path_factory.mktemp("feast-unsupported") / "fsdrop", with_unsupported=True
    )


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def servers(tmp_path: Path):
    a = Server(tmp_path)
    try:
        b = Server(tmp_path)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


# ---------------------------------------------------------------------------------------------
# Feast alone: the facts


def test_the_encoder_reproduces_the_feast_md_test_vectors() -> None:
    h = bytes.fromhex
    assert redis_key({"driver_id": 1001}) == h(
        "01000000 02000000 09000000 6472697665725f6964 04000000 08000000 e903000000000000"
        " 667364726f70"
    )
    assert redis_key({"driver_id": 1001, "customer_id": "c1"}) == h(
        "02000000 02000000 0b000000 637573746f6d65725f6964 02000000 09000000 6472697665725f6964"
        " 02000000 02000000 6331 04000000 08000000 e903000000000000 667364726f70"
    )
    assert redis_key({"__dummy_id": ""}) == h(
        "01000000 02000000 0a000000 5f5f64756d6d795f6964 02000000 00000000 667364726f70"
    )
    assert field("driver_stats:conv_rate") == h("fa731014")
    assert field("__precomputed__svc_pre:vector") == h("80554952")
    assert ts_bytes(datetime(2026, 11, 20, 11, tzinfo=timezone.utc)) == h("08b0d080d806")
    assert expected_value("FLOAT", 0.01).SerializeToString() == h("350ad7233c")
    assert expected_value("INT64", -5).SerializeToString() == h("20fbffffffffffffffff01")
    assert expected_value("STRING_LIST", []).SerializeToString() == h("6200")
    assert expected_value("BOOL_LIST", [True, False]).SerializeToString() == h("8a01040a020100")


def test_feast_materialize_writes_the_latest_row_of_each_view(
    generated: Path, tmp_path: Path, server: Server
) -> None:
    """`feast materialize START END` into an empty Redis: every key, field and TTL, derived
    here from the Parquet files alone, and every precomputed vector."""
    repo = copy(generated, tmp_path / "a")
    started = time.time()
    feast_materialize(repo, server)
    finished = time.time()
    store = feast_store(repo, server)
    want = Expected(repo, store)
    got = dump(server.client())
    names = field_names(store)

    # The window is inclusive at both ends; rows outside it are not written.
    k = redis_key
    assert want.times[(k({"driver_id": 1009}), "driver_stats")] == END_T
    assert want.times[(k({"driver_id": 1010}), "driver_stats")] == START_T
    assert k({"driver_id": 1011}) not in want.hashes
    assert k({"driver_id": 1013}) not in want.hashes  # online=False only
    assert set(got) == set(want.hashes), (
        f"missing {[describe_key(x) for x in set(want.hashes) - set(got)]}, "
        f"unexpected {[describe_key(x) for x in set(got) - set(want.hashes)]}"
    )

    vec_fields, vec_ts = vector_fields(store)
    services = {s.name: s for s in precompute_services(store)}
    bad = []
    for key, h in got.items():
        ttl = server.client().ttl(key)
        if not KEY_TTL - (time.time() - started) - TTL_SLACK <= ttl <= KEY_TTL:
            bad.append(f"{describe_key(key)}: TTL {ttl}")
        plain = {f: v for f, v in h.items() if f not in vec_fields and f not in vec_ts}
        for f in set(plain) | set(want.hashes[key]):
            if plain.get(f) != want.hashes[key].get(f):
                name = names.get(f, f.decode(errors="replace"))
                bad.append(
                    f"{describe_key(key)} {name}: {plain.get(f)!r} != {want.hashes[key].get(f)!r}"
                )

        # A vector for each precompute service on every key with its first view's join keys,
        # whether or not any of the service's views has a row for the entity.
        for vf, svc_name in vec_fields.items():
            svc = services[svc_name]
            projections = svc.feature_view_projections
            primary = store.get_feature_view(projections[0].name)
            if set(want.joins[key]) != set(join_keys_of(primary)):
                assert vf not in h, f"{describe_key(key)}: unexpected vector of {svc_name}"
                continue
            assert vf in h, f"{describe_key(key)}: no vector of {svc_name}"
            vec = decode_vector(h[vf])
            names_, values, stamps = [], [], []
            for p in projections:
                t = want.times.get((key, p.name))
                for f in p.features:
                    names_.append(f"{p.name_to_use()}__{f.name}")
                    values.append(want.hashes[key].get(field(f"{p.name}:{f.name}"), b""))
                # a view without a row for the entity: epoch 0, present (`12 00`)
                nanos = (t - EPOCH) // timedelta(microseconds=1) * 1000 if t else 0
                stamps.append((p.name_to_use(), True, nanos))
            assert vector_tuple(vec) == (names_, values, stamps), f"{describe_key(key)} {svc_name}"
            at = vec.precomputed_at.ToDatetime(tzinfo=timezone.utc).timestamp()
            assert started - 1 <= at <= finished + 1
            ts = Timestamp()
            ts.ParseFromString(h[f"_ts:__precomputed__{svc_name}".encode()])
            assert abs(ts.ToDatetime(tzinfo=timezone.utc).timestamp() - at) < 1
    assert not bad, "\n".join(bad[:40])

    # Spot checks of the encodings the derivation above relies on.
    d = {n: got[k({"driver_id": n})] for n in (1002, 1003, 1005, 1006, 1008)}
    assert d[1002][field("driver_stats:conv_rate")] == b""  # NaN float32 -> null
    assert d[1002][field("driver_stats:acc_rate")] == b""  # NaN float64 -> null
    assert d[1003][field("driver_stats:trips")] == b""  # null -> empty Value
    # a null UnixTimestamp is INT64_MIN, not an empty Value
    assert d[1003][field("driver_stats:last_trip")].hex() == "4080808080808080808001"
    assert d[1008][field("driver_stats:last_trip")].hex() == "4080808080808080808001"
    # 1969-12-31T23:59:59.5 -> -1 (rounded down); .999999 -> dropped
    assert d[1005][field("driver_stats:last_trip")].hex() == "40ffffffffffffffffff01"
    assert (
        d[1006][field("driver_stats:last_trip")]
        == expected_value(
            "UNIX_TIMESTAMP", datetime(2025, 11, 21, 8, 30, 15, tzinfo=timezone.utc)
        ).SerializeToString()
    )
    # _ts keeps microseconds as nanos
    assert d[1006][b"_ts:driver_stats"].hex() == "0890d887c906108094ef3a"
    # nulls inside lists
    lists = d[1006]
    assert lists[field("driver_lists:tags")].hex() == "62080a01780a000a0179"
    assert lists[field("driver_lists:flags")].hex() == "8a01040a020001"
    doubles = Value.FromString(lists[field("driver_lists:doubles")]).double_list_val.val
    assert math.isnan(doubles[0]) and math.isnan(doubles[1]) and doubles[2] == 2.5
    stamps = Value.FromString(lists[field("driver_lists:stamps")]).unix_timestamp_list_val.val
    assert stamps[0] == INT64_MIN


def test_feast_rematerialize_refreshes_the_ttl_only_of_keys_with_vectors(
    generated: Path, tmp_path: Path, server: Server
) -> None:
    """A second `feast materialize` of the same rows rewrites nothing but the vectors (their
    `_ts` is wall-clock now), so EXPIRE runs again only on keys that hold a vector."""
    repo = copy(generated, tmp_path / "a")
    feast_materialize(repo, server)
    client = server.client()
    store = feast_store(repo, server)
    vec_fields, vec_ts = vector_fields(store)
    before = dump(client)
    expiry = {k: client.execute_command("PEXPIRETIME", k) for k in before}
    time.sleep(3)
    feast_materialize(repo, server)
    after = dump(client)
    assert set(after) == set(before)
    for key, h in after.items():
        # milliseconds since the epoch at which the key expires
        expires = client.execute_command("PEXPIRETIME", key)
        if any(f in h for f in vec_fields):
            assert expires >= expiry[key] + 3000, describe_key(key)
        else:
            assert expires == expiry[key], describe_key(key)
        for f, v in h.items():
            if f in vec_ts:
                assert v != before[key][f]  # rewritten
            elif f not in vec_fields:
                assert v == before[key][f], (describe_key(key), f)


def test_feast_builds_vectors_from_what_redis_holds(
    generated: Path, tmp_path: Path, server: Server
) -> None:
    """A pushed row newer than the offline data survives a later materialize (the `_ts` dedup
    skips the older row), and the vectors that materialize rebuilds carry the pushed value:
    Feast reads the vectors' values back from Redis, not from the rows it just wrote."""
    repo = copy(generated, tmp_path / "a")
    feast_materialize(repo, server)
    store = feast_store(repo, server)
    pushed = pushed_row()
    store.push("driver_push", pushed, to=PushMode.ONLINE)
    feast_materialize(repo, server)
    assert_pushed_row_served(feast_store(repo, server), server, pushed)


def pushed_row() -> pd.DataFrame:
    """A row for driver 1001's driver_activity, newer than its row in the Parquet file."""
    return pd.DataFrame(
        {
            "driver_id": [1001],
            "event_timestamp": [pd.Timestamp("2025-11-22T23:30:00.25Z")],
            "clicks": [987654],
            "score": [0.125],
        }
    )


def assert_pushed_row_served(store: FeatureStore, server: Server, pushed: pd.DataFrame) -> None:
    key = redis_key({"driver_id": 1001})
    client = server.client()
    when = pushed["event_timestamp"][0].to_pydatetime()
    assert client.hget(key, b"_ts:driver_activity") == ts_bytes(when)
    clicks = client.hget(key, field("driver_activity:clicks"))
    assert clicks == Value(int64_val=987654).SerializeToString()
    rows = [{"driver_id": 1001}]
    for svc in ("svc_alias", "svc_pre"):  # per-view path, precomputed path
        got = store.get_online_features(
            features=store.get_feature_service(svc), entity_rows=rows, full_feature_names=True
        ).to_dict()
        assert got["driver_activity__clicks"] == [987654], svc
        assert got["driver_activity__score"] == [0.125], svc


# ---------------------------------------------------------------------------------------------
# Parity: fsctl against Feast


def assert_same_redis(a: Server, b: Server, store: FeatureStore, since: float) -> None:
    """Every key of A (Feast) in B (fsctl) and no other (fsctl's own `fs:` manifests apart), every
    field byte for byte, the precomputed vectors equal but for precomputed_at, and B's TTLs no
    shorter than A's."""
    ca, cb = a.client(), b.client()
    da, db = dump(ca), dump(cb)
    vec_fields, vec_ts = vector_fields(store)
    names = field_names(store)
    bad = []
    for key in sorted(set(da) - set(db)):
        bad.append(f"missing in fsctl's Redis: {describe_key(key)}")
    for key in sorted(set(db) - set(da)):
        bad.append(f"written by fsctl only: {describe_key(key)} {len(db[key])} fields")
    for key in sorted(set(da) & set(db)):
        ha, hb = da[key], db[key]
        who = describe_key(key)
        for f in sorted(set(ha) | set(hb)):
            name = names.get(f, f.decode(errors="replace"))
            if f not in hb:
                bad.append(f"{who} {name}: missing in fsctl's hash")
            elif f not in ha:
                bad.append(f"{who} {name}: written by fsctl only ({hb[f].hex()})")
            elif f in vec_fields:
                (na, xa, sa), (nb, xb, sb) = (vector_tuple(decode_vector(h[f])) for h in (ha, hb))
                if na != nb:
                    bad.append(f"{who} {name} feature_names: Feast {na} != fsctl {nb}")
                elif xa != xb:
                    diff = [
                        f"{n}: Feast {x.hex()} != fsctl {y.hex()}"
                        for n, x, y in zip(na, xa, xb)
                        if x != y
                    ]
                    bad.append(f"{who} {name} values: {'; '.join(diff)}")
                if sa != sb:
                    bad.append(f"{who} {name} fv_timestamps: Feast {sa} != fsctl {sb}")
                at = decode_vector(hb[f]).precomputed_at.ToDatetime(tzinfo=timezone.utc)
                if not since - 1 <= at.timestamp() <= time.time() + 1:
                    bad.append(f"{who} {name}: precomputed_at {at} is not the run's time")
            elif f in vec_ts:
                ts = Timestamp()
                ts.ParseFromString(hb[f])
                at = ts.ToDatetime(tzinfo=timezone.utc).timestamp()
                if not since - 1 <= at <= time.time() + 1:
                    bad.append(f"{who} {name}: {ts.ToJsonString()} is not the run's time")
            elif ha[f] != hb[f]:
                bad.append(f"{who} {name}: Feast {ha[f].hex()} != fsctl {hb[f].hex()}")
        ta, tb = ca.ttl(key), cb.ttl(key)
        if not ta - TTL_SLACK <= tb <= KEY_TTL * 1.2 + TTL_SLACK:
            bad.append(f"{who}: TTL Feast {ta}, fsctl {tb}")
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:60])


def assert_same_features(store_a: FeatureStore, store_b: FeatureStore) -> None:
    """Feast's own get_online_features returns the same for every service from A and B."""
    services = {s.name for s in store_a.list_feature_services()}
    assert services == set(ENTITY_ROWS), "ENTITY_ROWS must name every service of the fixture"
    for name in sorted(services):
        svc_a, svc_b = store_a.get_feature_service(name), store_b.get_feature_service(name)
        modes = [True] if svc_a.precompute_online else [True, False]
        for full in modes:
            got = [
                normalized(
                    s.get_online_features(
                        features=svc, entity_rows=ENTITY_ROWS[name], full_feature_names=full
                    ).to_dict()
                )
                for s, svc in ((store_a, svc_a), (store_b, svc_b))
            ]
            assert got[0] == got[1], f"{name} (full_feature_names={full})"


def test_fsctl_materialize_writes_what_feast_materialize_writes(
    generated: Path, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    a, b = servers
    repo_a = copy(generated, tmp_path / "a")
    # fsctl reads the registry as `feast apply` left it (a Feast materialize rewrites it)
    repo_b = copy(generated, tmp_path / "b")
    feast_materialize(repo_a, a)
    since = time.time()
    fsctl_materialize(repo_b, b)
    store_a, store_b = feast_store(repo_a, a), feast_store(repo_b, b)
    assert_same_redis(a, b, store_a, since)
    assert_same_features(store_a, store_b)


def test_a_pushed_row_survives_fsctl_force(generated: Path, tmp_path: Path, server: Server) -> None:
    """fsctl keeps Feast's `_ts` dedup: a row pushed after its run, newer than the offline data,
    stays through a forced rerun, and so does its value inside the precomputed vectors."""
    repo = copy(generated, tmp_path / "b")
    fsctl_materialize(repo, server)
    store = feast_store(repo, server)
    pushed = pushed_row()
    store.push("driver_push", pushed, to=PushMode.ONLINE)
    fsctl_materialize(repo, server, "--force")
    assert_pushed_row_served(feast_store(repo, server), server, pushed)


def test_fsctl_names_unsupported_views_and_materializes_the_rest(
    generated: Path, generated_unsupported: Path, tmp_path: Path, servers: tuple[Server, Server]
) -> None:
    """With an on-demand view and a stream view on Kafka: `fsctl validate` warns naming both
    (a Feast project keeps them; they are not fsctl's to write);
    `fsctl materialize` writes the other views and services exactly as Feast writes the
    project without them, and nothing of the stream view."""
    a, b = servers
    repo_a = copy(generated, tmp_path / "a")
    repo_b = copy(generated_unsupported, tmp_path / "b")
    done = fsctl(repo_b, b, "validate")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "warning" in out, out
    assert "driver_conv_bonus" in out, out
    assert "driver_stream" in out or "driver_events_kafka" in out, out

    feast_materialize(repo_a, a)
    since = time.time()
    fsctl_materialize(repo_b, b)
    stream = {field("driver_stream:events"), b"_ts:driver_stream"}
    for key in b.client().scan_iter():
        if not key.startswith(FSCTL_KEY_PREFIX):
            assert not stream & set(b.client().hkeys(key)), describe_key(key)
    assert_same_redis(a, b, feast_store(repo_a, a), since)
