"""`as_numpy=True`: float64 values of numeric and bool features only, with their names, read from
vectors the fsctl binary wrote into a real redis-server and checked against `fsctl get` and
fixtures/contract/expected.json; any other feature is refused by name."""

from __future__ import annotations

import asyncio
import json
import math
import struct

import pytest
from conftest import ROOT, Repo

from fsctl_client import AsyncFeatureClient, FeatureClient, NotNumeric, NumpyFeatures

EXPECTED = json.loads((ROOT / "fixtures" / "contract" / "expected.json").read_text())


def client(repo: Repo) -> FeatureClient:
    return FeatureClient(repo.server.url, project="golden", key_prefix="fst")


def as_float(value) -> float:
    return math.nan if value is None else float(value)


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6)


def test_non_numeric_features_are_refused_by_name(golden):
    c = client(golden)
    with pytest.raises(NotNumeric) as e:
        c.get_many("scoring", [1, 2], as_numpy=True)
    assert isinstance(e.value, TypeError)
    assert e.value.features == ["profile.segment", "profile.note", "txn.emb"]
    message = str(e.value)
    assert "profile.segment (string), profile.note (string), txn.emb (list<float32>) are not" in (
        message
    )
    assert "features=[...] with numeric ones only (this service's: profile.age, " in message
    assert "or read without as_numpy" in message
    with pytest.raises(ValueError, match="no feature 'profile.agee' \\(did you mean 'profile.age'"):
        c.get_many("scoring", [1], as_numpy=True, features=["profile.agee"])
    with pytest.raises(ValueError, match="features= selects the columns of as_numpy=True"):
        c.get_many("scoring", [1], features=["profile.age"])


def test_numeric_features_come_back_named_in_the_order_asked(golden):
    c = client(golden)
    want = golden.get_json("scoring", "customer_id=1")["values"]
    numeric = [
        "profile.age",
        "profile.score",
        "profile.risk",
        "profile.txn_count",
        "profile.avg",
        "txn.tx_sum",
    ]
    asked = list(reversed(numeric))
    got = c.get_many("scoring", [1, 424242], as_numpy=True, features=asked)
    assert isinstance(got, NumpyFeatures)
    assert got.names == asked and got.values.shape == (2, 6) and got.values.dtype == "float64"
    assert list(got.missing) == [False, True]
    for j, name in enumerate(asked):
        assert same_float(got.values[0, j], as_float(want[name])), name
    assert all(math.isnan(x) for x in got.values[1])
    # It still unpacks as the (values, missing) pair it used to be.
    values, missing = got
    assert values is got.values and missing is got.missing

    # Missing entities with the training defaults: the declared ones, NaN for the others.
    filled = c.get_many("scoring", [424242], as_numpy=True, features=numeric, missing="defaults")
    defaults = dict(zip(filled.names, filled.values[0]))
    assert defaults["profile.txn_count"] == 0.0 and defaults["profile.avg"] == -1.0
    assert defaults["txn.tx_sum"] == 0.0 and math.isnan(defaults["profile.age"])

    # A service whose features are all numeric needs no selection; async reads the same.
    plain = c.get_many("balances", [{"bank": "acme", "account_no": 1}], as_numpy=True)
    assert plain.names == ["accounts.balance"] and plain.values.shape == (1, 1)

    async def read():
        a = AsyncFeatureClient(golden.server.url, project="golden", key_prefix="fst")
        try:
            return await a.get_many("scoring", [1, 424242], as_numpy=True, features=asked)
        finally:
            await a.close()

    again = asyncio.run(read())
    assert again.names == asked
    assert all(same_float(x, y) for x, y in zip(again.values.flat, got.values.flat))


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_every_numeric_dtype_and_bool_as_the_contract_states(contract: Repo) -> None:
    c = FeatureClient(contract.server.url, project="contract", key_prefix="fsc")
    names = ["typed.i32", "typed.i64", "typed.f32", "typed.f64", "typed.flag"]
    rows = EXPECTED["entities"]
    got = c.get_many(
        EXPECTED["service"], [r["join_keys"] for r in rows], as_numpy=True, features=names
    )
    assert got.names == names
    assert list(got.missing) == [not r["found"] for r in rows]
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            x = got.values[i, j]
            if not row["found"] or row["values"][name] is None:
                assert math.isnan(x), (row["entity"], name)
                continue
            want = row["values"][name]
            if want == "NaN":
                assert math.isnan(x)
            elif name == "typed.flag":
                assert x == (1.0 if want else 0.0)
            elif name == "typed.f32":
                assert x == f32(want) and math.copysign(1, x) == math.copysign(1, want)
            else:
                # int64 beyond 2^53 rounds to the nearest float64, as numpy would.
                assert x == float(want) and math.copysign(1, x) == math.copysign(1, want)
