"""The reader contract: the contract fixture materialized by fsctl, read through fsctl_client and
compared value by value with fixtures/contract/expected.json, the file tests/it/contract.rs
reads the library's client against."""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime
from typing import Any

import redis
from conftest import ROOT, Repo

from fsctl_client import FeatureClient

EXPECTED = json.loads((ROOT / "fixtures" / "contract" / "expected.json").read_text())


def us(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=t.tzinfo)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same(dtype: str, want: Any, got: Any) -> bool:
    """Whether `got` is what `want` states for `dtype` (conventions: see expected.json)."""
    if dtype.startswith("list<"):
        if want is None or got is None:
            return want is None and got is None
        inner = dtype[5:-1]
        return len(want) == len(got) and all(same(inner, w, g) for w, g in zip(want, got))
    if want is None or got is None:
        return want is None and got is None
    if dtype in ("float32", "float64"):
        if want == "NaN":
            return isinstance(got, float) and math.isnan(got)
        w = f32(want) if dtype == "float32" else float(want)
        return w == got and math.copysign(1, w) == math.copysign(1, got)
    if dtype == "timestamp":
        return isinstance(got, datetime) and us(got) == want
    if dtype == "bytes":
        return isinstance(got, bytes) and got.hex() == want["hex"]
    if dtype == "bool":
        return got is want
    return type(got) is type(want) and got == want


def test_every_dtype_reads_back_as_the_contract_states(contract: Repo) -> None:
    client = FeatureClient(contract.server.url, project="contract", key_prefix="fsc")
    rows = EXPECTED["entities"]
    got = client.get_many(EXPECTED["service"], [r["join_keys"] for r in rows])
    raw = redis.Redis.from_url(contract.server.url)
    dtypes = {
        f"{c['view']}.{c['name']}": c["dtype"]
        for c in client.pinned["everything"].manifest["schema"]
    }
    for row, v in zip(rows, got):
        assert v.entity == row["entity"]
        assert v.found is row["found"], row["entity"]
        if not v.found:
            assert v.values == {} and v.views == {}
            continue
        assert list(v.values) == EXPECTED["features"]
        for name, value in v.values.items():
            want = row["values"][name]
            assert same(dtypes[name], want, value), f"{row['entity']} {name}: {value!r} != {want!r}"
        times = {
            view: (None if t.event_time is None else us(t.event_time))
            for view, t in v.views.items()
        }
        assert times == row["view_times"], row["entity"]
        header = raw.get(v.key)[0]
        assert header == (2 if row["compressed"] else 1), row["entity"]
    absent = client.get(EXPECTED["service"], rows[-1]["join_keys"], missing="defaults")
    assert not absent.found
    for name, value in absent.values.items():
        want = EXPECTED["defaults"][name]
        assert same(dtypes[name], want, value), f"default {name}: {value!r} != {want!r}"
