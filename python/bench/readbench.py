"""Read latency of fsctl_client (`make bench-read`): p50/p99 of `FeatureClient.get_many` against
raw redis-py MGET of the same keys plus the decode every reader needs (header byte, zstd,
msgpack), on the same server and connection settings, and of the client's LRU when the entities
are hot. Prints one JSON object per batch size.

    python readbench.py URL PROJECT SERVICE [ITERATIONS]
"""

from __future__ import annotations

import json
import sys
import time

import msgpack
import redis
import zstandard

from fsctl_client import FeatureClient


def percentile(sorted_us: list[float], p: float) -> float:
    return sorted_us[round((len(sorted_us) - 1) * p)]


def raw_decode(body: bytes) -> list:
    payload = body[1:] if body[0] == 1 else zstandard.ZstdDecompressor().decompress(body[1:])
    return msgpack.unpackb(payload)


def main() -> None:
    url, project, service = sys.argv[1:4]
    iterations = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
    client = FeatureClient(url, project=project)
    cached = FeatureClient(url, project=project, cache_size=100_000, cache_ttl=600)
    raw = redis.Redis.from_url(url)
    # Customers of the dataset (fsctl-datagen numbers them from 1000000).
    ids = [1_000_000 + (i * 7919) % 100_000 for i in range(10_000)]
    pinned = client._resolve(service)
    for batch in (1, 10, 100):
        lib: list[float] = []
        mget: list[float] = []
        hit: list[float] = []
        for i in range(iterations):
            start = (i * batch) % (len(ids) - batch)
            some = ids[start : start + batch]
            keys = [pinned.key(str(e)) for e in some]

            def run_lib(some: list[int] = some, lib: list[float] = lib) -> None:
                t = time.perf_counter()
                got = client.get_many(service, some)
                lib.append((time.perf_counter() - t) * 1e6)
                assert all(v.found for v in got), "benchmark keys must exist"

            def run_raw(keys: list[str] = keys, mget: list[float] = mget) -> None:
                t = time.perf_counter()
                vectors = [raw_decode(b) for b in raw.mget(keys)]
                mget.append((time.perf_counter() - t) * 1e6)
                assert len(vectors) == len(keys)

            # Alternate which goes first so neither always gets a warm cache.
            first, second = (run_lib, run_raw) if i % 2 == 0 else (run_raw, run_lib)
            first()
            second()
        hot = ids[:batch]
        cached.get_many(service, hot)
        for _ in range(iterations):
            t = time.perf_counter()
            cached.get_many(service, hot)
            hit.append((time.perf_counter() - t) * 1e6)
        assert cached.cache_stats["hits"] >= iterations * batch, cached.cache_stats
        for s in (lib, mget, hit):
            s.sort()
        print(
            json.dumps(
                {
                    "batch": batch,
                    "client_p50_us": round(percentile(lib, 0.5), 1),
                    "client_p99_us": round(percentile(lib, 0.99), 1),
                    "mget_decode_p50_us": round(percentile(mget, 0.5), 1),
                    "mget_decode_p99_us": round(percentile(mget, 0.99), 1),
                    "lru_p50_us": round(percentile(hit, 0.5), 2),
                    "lru_p99_us": round(percentile(hit, 0.99), 2),
                    "p99_ratio": round(percentile(lib, 0.99) / percentile(mget, 0.99), 3),
                    "lru_p99_over_mget_p50": round(
                        percentile(hit, 0.99) / percentile(mget, 0.5), 3
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
