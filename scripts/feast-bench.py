#!/usr/bin/env python3
"""Generates the Feast project of `make bench-feast` and runs `feast apply` on it.

    target/venv/bin/python scripts/feast-bench.py DIR --entities N [--precompute] [--no-apply]

Three feature views on one int64 entity (driver_id), two rows per entity and view in the last
two days before END (the latest one wins): driver_stats (float32, float64, int64, string),
driver_lists (an 8-float embedding and a string list) and driver_activity (int64, float64); one
feature service over the three, with `precompute_online=True` when --precompute is given. The
Redis address is `${FSBENCH_REDIS}` (Feast's `host:port` form), key_ttl_seconds one day.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

END = datetime(2025, 11, 23, tzinfo=UTC)
START = END - timedelta(days=2)

FEATURE_STORE_YAML = """\
project: fsbench
registry: data/registry.db
provider: local
online_store:
  type: redis
  connection_string: "${FSBENCH_REDIS}"
  key_ttl_seconds: 86400
offline_store:
  type: file
entity_key_serialization_version: 3
"""

DEFINITIONS = """\
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Array, Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)


def source(name):
    return FileSource(name=name + "_source", path="data/" + name + ".parquet",
                      timestamp_field="event_timestamp")


driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=2),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="conv_rate", dtype=Float32),
            Field(name="acc_rate", dtype=Float64), Field(name="trips", dtype=Int64),
            Field(name="name", dtype=String)],
    source=source("driver_stats"),
)
driver_lists = FeatureView(
    name="driver_lists", entities=[driver], ttl=timedelta(days=2),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="embedding", dtype=Array(Float32)),
            Field(name="tags", dtype=Array(String))],
    source=source("driver_lists"),
)
driver_activity = FeatureView(
    name="driver_activity", entities=[driver], ttl=timedelta(days=2),
    schema=[Field(name="driver_id", dtype=Int64), Field(name="clicks", dtype=Int64),
            Field(name="score", dtype=Float64)],
    source=source("driver_activity"),
)
scoring = FeatureService(
    name="scoring", features=[driver_stats, driver_lists, driver_activity],
    precompute_online=PRECOMPUTE,
)
"""


def generate(dest: Path, entities: int, precompute: bool) -> None:
    data = dest / "data"
    data.mkdir(parents=True, exist_ok=True)
    (dest / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (dest / "definitions.py").write_text(
        DEFINITIONS.replace("PRECOMPUTE", str(precompute))
    )
    rng = np.random.default_rng(20251123)
    rows = 2 * entities
    ids = np.tile(np.arange(entities, dtype=np.int64), 2)
    span = int((END - START).total_seconds()) - 1

    def times() -> pa.Array:
        seconds = rng.integers(0, span, rows)
        stamps = np.datetime64(START.replace(tzinfo=None), "s") + seconds.astype(
            "timedelta64[s]"
        )
        return pa.array(stamps.astype("datetime64[us]"), pa.timestamp("us", tz="UTC"))

    pq.write_table(
        pa.table(
            {
                "driver_id": ids,
                "event_timestamp": times(),
                "conv_rate": rng.random(rows, dtype=np.float32),
                "acc_rate": rng.random(rows),
                "trips": rng.integers(0, 10_000, rows),
                "name": pa.array([f"driver-{i}" for i in ids]),
            }
        ),
        data / "driver_stats.parquet",
    )
    emb = rng.random((rows, 8), dtype=np.float32)
    pq.write_table(
        pa.table(
            {
                "driver_id": ids,
                "event_timestamp": times(),
                "embedding": pa.FixedSizeListArray.from_arrays(emb.ravel(), 8).cast(
                    pa.list_(pa.float32())
                ),
                "tags": pa.array([["a", "b"] if i % 2 else ["c"] for i in range(rows)]),
            }
        ),
        data / "driver_lists.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "driver_id": ids,
                "event_timestamp": times(),
                "clicks": rng.integers(0, 1000, rows),
                "score": rng.random(rows),
            }
        ),
        data / "driver_activity.parquet",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--entities", type=int, required=True)
    p.add_argument("--precompute", action="store_true")
    p.add_argument("--no-apply", action="store_true")
    a = p.parse_args()
    generate(a.dir, a.entities, a.precompute)
    if not a.no_apply:
        env = {**os.environ, "FEAST_USAGE": "False"}
        env.setdefault("FSBENCH_REDIS", "127.0.0.1:6379")
        feast = Path(sys.executable).with_name("feast")
        subprocess.run(
            [str(feast), "-c", str(a.dir), "apply"],
            check=True,
            env=env,
            capture_output=True,
        )


if __name__ == "__main__":
    main()
