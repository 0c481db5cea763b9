"""`FeatureClient` and `AsyncFeatureClient`: the same API over redis-py and redis.asyncio."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from ._core import (
    FeatureVector,
    Lru,
    Pinned,
    build_all,
    check_modes,
    parse_duration_s,
    redact,
)
from ._core import (
    as_numpy as to_numpy,
)
from ._errors import NoCommittedSnapshot, StoreUnavailable
from ._keys import Entity, KeySpace, render_entity


class _Base:
    def __init__(
        self,
        url: str,
        *,
        project: str,
        key_prefix: str = "fs",
        cluster: bool = False,
        retire_grace: float = 300.0,
        cache_size: int = 0,
        cache_ttl: float = 1.0,
    ) -> None:
        self.url = url
        self.project = project
        self.key_prefix = key_prefix
        self.cluster = cluster
        # SPEC §3.1: `current` and its manifest are cached for at most half the grace.
        self.max_pointer_age = retire_grace / 2
        self.lru = Lru(cache_size, cache_ttl)
        self.pinned: dict[str, Pinned] = {}

    @property
    def cache_stats(self) -> dict[str, int]:
        return {"hits": self.lru.hits, "misses": self.lru.misses, "size": len(self.lru.entries)}

    def _fresh(self, service: str) -> Pinned | None:
        p = self.pinned.get(service)
        if p is not None and time.monotonic() - p.resolved_at < self.max_pointer_age:
            return p
        return None

    def _keep(self, service: str, new: Pinned) -> Pinned:
        old = self.pinned.get(service)
        if old is None or old.snapshot != new.snapshot:
            self.lru.drop_service(service)
        self.pinned[service] = new
        return new

    def _all_hot(self, service: str, entities: list[Entity]) -> list[FeatureVector] | None:
        """Every entity's vector from the LRU, when all are there and `current` is fresh: no
        round trip, no decode."""
        if self.lru.size <= 0 or (p := self._fresh(service)) is None:
            return None
        hits = []
        now, prefix, join_keys = time.monotonic(), p.key(""), p.join_keys
        bare_int = len(join_keys) == 1 and join_keys[0][1].startswith("int")
        for e in entities:
            # A bare integer of a single integer join key renders as itself.
            rendered = str(e) if bare_int and type(e) is int else render_entity(join_keys, e)
            hit = self.lru.peek(prefix + rendered, now)
            if hit is None:
                return None
            hits.append(hit)
        self.lru.hits += len(hits)
        return hits

    def _failed(self, what: str, e: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"Redis at {redact(self.url)} ({what}): {e}")

    @classmethod
    def _repo_settings(cls, repo: str | os.PathLike[str], url: str | None) -> dict[str, Any]:
        import yaml

        text = (Path(repo) / "feature_store.yaml").read_text()
        doc = yaml.safe_load(text)
        online = doc.get("online_store", {})
        chosen = url or os.environ.get("FSCTL_REDIS_URL") or online.get("url", "")
        chosen = re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), chosen)
        grace = (doc.get("materialization") or {}).get("retire_grace", "5m")
        return {
            "url": chosen,
            "project": doc["project"],
            "key_prefix": online.get("key_prefix", "fs"),
            "cluster": online.get("type") == "redis_cluster",
            "retire_grace": parse_duration_s(grace),
        }


def read_steps(
    client: _Base,
    service: str,
    entities: list[Entity],
    missing: str,
    stale: str,
    numpy: bool,
) -> Generator[tuple[str, Any], Any, Any]:
    """One `get_many`, without I/O: yields ("resolve", force) for the committed snapshot and
    ("mget", keys) for vectors, is sent the answers, and returns the results. The sync and the
    async client drive it with their own calls."""
    check_modes(missing, stale)
    if stale == "flag" and not numpy and (hot := client._all_hot(service, entities)):
        return hot
    pinned: Pinned = yield ("resolve", False)
    for final in (False, True):
        rendered = [render_entity(pinned.join_keys, e) for e in entities]
        keys = [pinned.key(e) for e in rendered]
        cached = [client.lru.get(k) for k in keys]
        todo = [i for i, c in enumerate(cached) if c is None]
        raws = (yield ("mget", [keys[i] for i in todo])) if todo else []
        fetched = dict(zip(todo, raws))
        results, mismatch = build_all(pinned, rendered, cached, fetched, missing, stale, final)
        if results is None:
            fresh: Pinned = yield ("resolve", True)
            if fresh.snapshot == pinned.snapshot and not mismatch:
                # `current` did not move: the missing keys are missing.
                results, _ = build_all(pinned, rendered, cached, fetched, missing, stale, True)
            else:
                pinned = fresh
                continue
        for i in todo:
            client.lru.put(results[i])
        return to_numpy(results, pinned) if numpy else results
    raise AssertionError("unreachable: the final attempt always returns")


def _decode_str(v: bytes | None) -> str | None:
    return None if v is None else v.decode()


def _seeds(url: str) -> list[str]:
    return [u.strip() for u in re.split(r",(?=\s*rediss?://)", url) if u.strip()]


class FeatureClient(_Base):
    """Reads fsctl's vectors: `get(service, entity)` and `get_many(service, entities)`, one
    round trip per node; `current` followed as SPEC §3.1 says."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", **kwargs: Any) -> None:
        redis_kwargs = kwargs.pop("redis_kwargs", {})
        super().__init__(url, **kwargs)
        if self.cluster:
            from redis.cluster import RedisCluster

            self.redis: Any = RedisCluster.from_url(_seeds(url)[0], **redis_kwargs)
        else:
            self.redis = redis.Redis.from_url(url, **redis_kwargs)

    @classmethod
    def from_repo(
        cls, repo: str | os.PathLike[str], url: str | None = None, **kwargs: Any
    ) -> FeatureClient:
        """A client configured from a repo's `feature_store.yaml` (`FSCTL_REDIS_URL` or `url`
        replaces `online_store.url`). Needs PyYAML (`pip install ./python[repo]`)."""
        return cls(**{**cls._repo_settings(repo, url), **kwargs})

    def _resolve(self, service: str, force: bool = False) -> Pinned:
        if not force and (p := self._fresh(service)) is not None:
            return p
        keys = KeySpace(self.key_prefix, self.project, service)
        try:
            snapshot = self.redis.get(keys.current)
            if snapshot is None:
                raise NoCommittedSnapshot(service, keys.current)
            manifest = self.redis.get(keys.manifest(snapshot.decode()))
        except redis.RedisError as e:
            raise self._failed("read current", e) from e
        return self._keep(service, Pinned(keys, snapshot.decode(), _decode_str(manifest)))

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            if self.cluster:
                return list(self.redis.mget_nonatomic(keys))
            return list(self.redis.mget(keys))
        except redis.RedisError as e:
            raise self._failed("MGET", e) from e

    def get(self, service: str, entity: Entity, **kwargs: Any) -> FeatureVector:
        """One entity's vector (see `get_many` for the options)."""
        return self.get_many(service, [entity], **kwargs)[0]

    def get_many(
        self,
        service: str,
        entities: Iterable[Entity],
        *,
        missing: str = "none",
        stale: str = "flag",
        as_numpy: bool = False,
    ) -> Any:
        """The vectors of `entities` (dicts of join keys, tuples in declared order, or the bare
        value of a single join key), in order. `missing`: "none" (found False, no values),
        "defaults" (the service's training defaults) or "raise" (EntityNotFound). `stale`:
        "flag" (views older than their ttl are listed in `stale_views`) or "missing" (such a
        vector counts as missing). `as_numpy`: a float64 matrix and the missing mask instead."""
        steps = read_steps(self, service, list(entities), missing, stale, as_numpy)
        answer = None
        while True:
            try:
                kind, arg = steps.send(answer)
            except StopIteration as done:
                return done.value
            answer = self._resolve(service, arg) if kind == "resolve" else self._mget(arg)

    def close(self) -> None:
        self.redis.close()


class AsyncFeatureClient(_Base):
    """`FeatureClient` over redis.asyncio: the same API, awaited."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", **kwargs: Any) -> None:
        redis_kwargs = kwargs.pop("redis_kwargs", {})
        super().__init__(url, **kwargs)
        if self.cluster:
            from redis.asyncio.cluster import RedisCluster

            self.redis: Any = RedisCluster.from_url(_seeds(url)[0], **redis_kwargs)
        else:
            self.redis = redis.asyncio.Redis.from_url(url, **redis_kwargs)

    @classmethod
    def from_repo(
        cls, repo: str | os.PathLike[str], url: str | None = None, **kwargs: Any
    ) -> AsyncFeatureClient:
        return cls(**{**cls._repo_settings(repo, url), **kwargs})

    async def _resolve(self, service: str, force: bool = False) -> Pinned:
        if not force and (p := self._fresh(service)) is not None:
            return p
        keys = KeySpace(self.key_prefix, self.project, service)
        try:
            snapshot = await self.redis.get(keys.current)
            if snapshot is None:
                raise NoCommittedSnapshot(service, keys.current)
            manifest = await self.redis.get(keys.manifest(snapshot.decode()))
        except redis.RedisError as e:
            raise self._failed("read current", e) from e
        return self._keep(service, Pinned(keys, snapshot.decode(), _decode_str(manifest)))

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            if self.cluster:
                return list(await self.redis.mget_nonatomic(keys))
            return list(await self.redis.mget(keys))
        except redis.RedisError as e:
            raise self._failed("MGET", e) from e

    async def get(self, service: str, entity: Entity, **kwargs: Any) -> FeatureVector:
        return (await self.get_many(service, [entity], **kwargs))[0]

    async def get_many(
        self,
        service: str,
        entities: Iterable[Entity],
        *,
        missing: str = "none",
        stale: str = "flag",
        as_numpy: bool = False,
    ) -> Any:
        steps = read_steps(self, service, list(entities), missing, stale, as_numpy)
        answer = None
        while True:
            try:
                kind, arg = steps.send(answer)
            except StopIteration as done:
                return done.value
            if kind == "resolve":
                answer = await self._resolve(service, arg)
            else:
                answer = await self._mget(arg)

    async def close(self) -> None:
        await self.redis.aclose()
