"""`FeatureClient` and `AsyncFeatureClient`: the same API over redis-py and redis.asyncio."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Generator, Iterable
from typing import Any, Callable

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.connection import parse_url

from ._core import (
    FeatureVector,
    Lru,
    Pinned,
    RetryPolicy,
    build_all,
    check_modes,
    import_numpy,
    numpy_columns,
    redact,
    split_urls,
)
from ._core import (
    as_numpy as to_numpy,
)
from ._errors import (
    AuthenticationFailed,
    ConfigError,
    NoCommittedSnapshot,
    StoreUnavailable,
    UnknownService,
)
from ._keys import Entity, KeySpace, render_entity
from ._repo import repo_settings

# Failures worth retrying (src/online/redis/explain.rs `is_transient`): connection trouble, or a
# server that says "later". Credentials and permissions are not.
_NOT_TRANSIENT: tuple[type[Exception], ...] = tuple(
    c
    for c in (
        getattr(redis.exceptions, "AuthenticationError", None),
        getattr(redis.exceptions, "AuthorizationError", None),
        getattr(redis.exceptions, "MaxConnectionsError", None),
    )
    if c is not None
)
_LATER_CODES = ("LOADING", "TRYAGAIN", "BUSY", "MASTERDOWN", "CLUSTERDOWN")
_LATER: tuple[type[Exception], ...] = tuple(
    c
    for c in (
        getattr(redis.exceptions, "BusyLoadingError", None),
        getattr(redis.exceptions, "TryAgainError", None),
        getattr(redis.exceptions, "ClusterDownError", None),
    )
    if c is not None
)


def is_transient(e: Exception) -> bool:
    if isinstance(e, _NOT_TRANSIENT):
        return False
    if isinstance(e, (redis.ConnectionError, redis.TimeoutError, *_LATER)):
        return True
    return isinstance(e, redis.ResponseError) and str(e).split(" ", 1)[0] in _LATER_CODES


def _without_password(url: str) -> str:
    """`url` without the password of its userinfo (a user name stays)."""
    scheme, sep, rest = url.partition("://")
    hostpart, slash, path = rest.partition("/")
    userinfo, at, host = hostpart.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + '@' if user else ''}{host}{slash}{path}"


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
        password: str | None = None,
        password_source: str | None = None,
        tls_ca_file: str | os.PathLike[str] | None = None,
        connect_timeout: float | None = None,
        response_timeout: float | None = None,
        retry_attempts: int = 3,
        retry_max_delay: float = 0.1,
        services: Iterable[str] | None = None,
        services_source: str | None = None,
    ) -> None:
        self.url = url
        self.project = project
        self.key_prefix = key_prefix
        self.cluster = cluster
        # SPEC §3.1: `current` and its manifest are cached for at most half the grace.
        self.max_pointer_age = retire_grace / 2
        self.lru = Lru(cache_size, cache_ttl)
        self.pinned: dict[str, Pinned] = {}
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.retry = RetryPolicy(retry_attempts, retry_max_delay)
        self.services = None if services is None else list(services)
        self.services_source = services_source or "the services= argument"
        seeds = [u for u in split_urls(url) if u] if cluster else [url.strip()]
        if not seeds:
            raise ConfigError(f"the URL `{redact(url)}` names no cluster node")
        if password_source is None and password is not None:
            password_source = "the password= argument"
        elif password_source is None and any(_without_password(u) != u for u in seeds):
            password_source = "the URL"
        # Where the password comes from, named in authentication errors (None: nowhere).
        self.password_source = password_source
        # Until a first call succeeds, a failure is reported at once, as the CLI's connect is:
        # a wrong host or port should not wait out the retries.
        self.reached = False
        if tls_ca_file is not None and not all(u.startswith("rediss://") for u in seeds):
            raise ConfigError(f"tls_ca_file is set but the URL `{redact(url)}` is not rediss://")
        if password is not None:
            seeds = [_without_password(u) for u in seeds]
        self._connect_url = seeds[0]
        # A cluster's seeds (host, port), every one tried in turn as the CLI does, and the
        # options their URLs share (user, password, TLS).
        self._seed_nodes, self._seed_options = _cluster_seeds(url, seeds) if cluster else ([], {})
        self._connect_kwargs: dict[str, Any] = {}
        if password is not None:
            self._connect_kwargs["password"] = password
        if tls_ca_file is not None:
            self._connect_kwargs["ssl_ca_certs"] = os.fspath(tls_ca_file)
        if connect_timeout is not None:
            self._connect_kwargs["socket_connect_timeout"] = connect_timeout
        if response_timeout is not None:
            self._connect_kwargs["socket_timeout"] = response_timeout

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

    def _check_service(self, service: str) -> None:
        if self.services is not None and service not in self.services:
            raise UnknownService(service, self.services, self.services_source)

    def _retry_after(self, e: Exception, attempt: int) -> float | None:
        """The wait before trying again after `attempt` failures, or None to give up."""
        if self.reached and attempt < self.retry.attempts and is_transient(e):
            return self.retry.delay(attempt)
        return None

    def _failed(self, what: str, e: Exception, attempts: int = 1) -> StoreUnavailable:
        message = f"Redis at {redact(self.url)} ({what}): {e}"
        kind = StoreUnavailable
        if isinstance(e, redis.AuthenticationError):
            kind = AuthenticationFailed
            message += (
                f" (authentication failed: check the password from {self.password_source})"
                if self.password_source
                else " (authentication failed: no password is configured; set "
                "online_store.password_env or password_file, or pass password=)"
            )
        elif isinstance(e, redis.TimeoutError):
            message += (
                " (timed out: raise online_store.connect_timeout/response_timeout for a slow "
                f"server; response_timeout is {self.response_timeout} s)"
            )
        if attempts > 1:
            message += f", after {attempts} attempts"
        return kind(message)

    @classmethod
    def _repo_settings(cls, repo: str | os.PathLike[str], url: str | None) -> dict[str, Any]:
        return repo_settings(repo, url)


def read_steps(
    client: _Base,
    service: str,
    entities: list[Entity],
    missing: str,
    stale: str,
    numpy: bool,
    features: Iterable[str] | None = None,
) -> Generator[tuple[str, Any], Any, Any]:
    """One `get_many`, without I/O: yields ("resolve", force) for the committed snapshot and
    ("mget", keys) for vectors, is sent the answers, and returns the results. The sync and the
    async client drive it with their own calls."""
    check_modes(missing, stale)
    if features is not None and not numpy:
        raise ValueError("features= selects the columns of as_numpy=True; pass as_numpy=True")
    wanted = None if features is None else list(features)
    if numpy:
        import_numpy()
    client._check_service(service)
    if stale == "flag" and not numpy and (hot := client._all_hot(service, entities)):
        return hot
    pinned: Pinned = yield ("resolve", False)
    if numpy:
        numpy_columns(pinned, wanted)  # a non-numeric feature fails before the read
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
        return to_numpy(results, pinned, numpy_columns(pinned, wanted)) if numpy else results
    raise AssertionError("unreachable: the final attempt always returns")


def _decode_str(v: bytes | None) -> str | None:
    return None if v is None else v.decode()


def _cluster_seeds(url: str, seeds: list[str]) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The host and port of every seed of a cluster, and the options their URLs give (user,
    password, TLS, query options). redis-py connects to every node of a cluster with the same
    options, so seeds that disagree on one are a configuration error; a password named in one
    seed's URL only is used for all."""
    nodes: list[tuple[str, int]] = []
    shared: dict[str, Any] = {}
    for seed in seeds:
        shown = redact(seed)
        try:
            options = parse_url(seed)
        except ValueError as e:
            detail = str(e).replace(seed, shown)
            raise ConfigError(f"invalid Redis URL `{shown}`: {detail}") from None
        if "path" in options:
            raise ConfigError(f"a cluster is reached over TCP, not the Unix socket `{shown}`")
        if options.pop("db", 0) != 0:
            raise ConfigError(f"a cluster has only database 0, but `{shown}` names another")
        nodes.append((options.pop("host", "localhost"), options.pop("port", 6379)))
        if options.pop("connection_class", None) is not None:
            options["ssl"] = True  # rediss://
        for name, value in options.items():
            if shared.setdefault(name, value) != value:
                raise ConfigError(
                    f"the seeds of the cluster URL `{redact(url)}` differ in their {name}: "
                    "redis-py connects to every node with the same one"
                )
    if len({u.partition("://")[0].lower() for u in seeds}) > 1:
        raise ConfigError(f"the cluster URL `{redact(url)}` mixes redis:// and rediss:// seeds")
    return nodes, shared


class FeatureClient(_Base):
    """Reads fsctl's vectors: `get(service, entity)` and `get_many(service, entities)`, one
    round trip per node; `current` followed as SPEC §3.1 says."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", **kwargs: Any) -> None:
        redis_kwargs = kwargs.pop("redis_kwargs", {})
        super().__init__(url, **kwargs)
        options = {**self._connect_kwargs, **redis_kwargs}
        if self.cluster:
            from redis.cluster import ClusterNode, RedisCluster

            # Every seed, as the CLI tries them: the first one down does not stop the client.
            nodes = [ClusterNode(host, port) for host, port in self._seed_nodes]
            options = {**self._seed_options, **options}
            try:
                # redis-py's synchronous cluster client reads the slot map as it is made.
                self.redis: Any = RedisCluster(startup_nodes=nodes, **options)
            except (redis.exceptions.RedisClusterException, redis.RedisError) as e:
                raise self._failed("read the cluster's slot map from its seeds", e) from e
        else:
            from redis.retry import Retry

            # Retries are this client's (`retry_attempts`, `retry_max_delay`), not redis-py's.
            options.setdefault("retry", Retry(NoBackoff(), 0))
            self.redis = redis.Redis.from_url(self._connect_url, **options)

    @classmethod
    def from_repo(
        cls, repo: str | os.PathLike[str], url: str | None = None, **kwargs: Any
    ) -> FeatureClient:
        """A client configured as the fsctl CLI connects for the repo's `feature_store.yaml`:
        `url`, else `FSCTL_REDIS_URL`, else `online_store.url` (`${VAR}` expanded), the password
        of `password_env` or `password_file`, `tls_ca_file`, the timeouts and retries; relative
        paths are relative to the repo directory. `kwargs` override any of them. Needs PyYAML
        (the `repo` extra)."""
        return cls(**{**cls._repo_settings(repo, url), **kwargs})

    def _call(self, what: str, op: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                out = op()
            except redis.RedisError as e:
                wait = self._retry_after(e, attempt)
                if wait is None:
                    raise self._failed(what, e, attempt) from e
                time.sleep(wait)
                continue
            self.reached = True
            return out

    def _resolve(self, service: str, force: bool = False) -> Pinned:
        if not force and (p := self._fresh(service)) is not None:
            return p
        keys = KeySpace(self.key_prefix, self.project, service)
        snapshot = self._call("read current", lambda: self.redis.get(keys.current))
        if snapshot is None:
            raise NoCommittedSnapshot(service, keys.current)
        manifest_key = keys.manifest(snapshot.decode())
        manifest = self._call("read the manifest", lambda: self.redis.get(manifest_key))
        return self._keep(service, Pinned(keys, snapshot.decode(), _decode_str(manifest)))

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        if self.cluster:
            return list(self._call("MGET", lambda: self.redis.mget_nonatomic(keys)))
        return list(self._call("MGET", lambda: self.redis.mget(keys)))

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
        features: Iterable[str] | None = None,
    ) -> Any:
        """The vectors of `entities` (dicts of join keys, tuples in declared order, or the bare
        value of a single join key), in order. `missing`: "none" (found False, no values),
        "defaults" (the service's training defaults) or "raise" (EntityNotFound). `stale`:
        "flag" (views older than their ttl are listed in `stale_views`) or "missing" (such a
        vector counts as missing). `as_numpy`: a `NumpyFeatures` instead (`names`, a float64
        `values` matrix, the `missing` mask; it unpacks as `values, missing`), of the numeric
        and bool features `features` (default: all the service's, which must then all be
        numeric or bool: `NotNumeric` otherwise)."""
        steps = read_steps(self, service, list(entities), missing, stale, as_numpy, features)
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
        options = {**self._connect_kwargs, **redis_kwargs}
        if self.cluster:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            nodes = [ClusterNode(host, port) for host, port in self._seed_nodes]
            options = {**self._seed_options, **options}
            self.redis: Any = RedisCluster(startup_nodes=nodes, **options)
        else:
            from redis.asyncio.retry import Retry

            options.setdefault("retry", Retry(NoBackoff(), 0))
            self.redis = redis.asyncio.Redis.from_url(self._connect_url, **options)

    @classmethod
    def from_repo(
        cls, repo: str | os.PathLike[str], url: str | None = None, **kwargs: Any
    ) -> AsyncFeatureClient:
        """`FeatureClient.from_repo`, over redis.asyncio."""
        return cls(**{**cls._repo_settings(repo, url), **kwargs})

    async def _call(self, what: str, op: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                out = await op()
            except redis.RedisError as e:
                wait = self._retry_after(e, attempt)
                if wait is None:
                    raise self._failed(what, e, attempt) from e
                await asyncio.sleep(wait)
                continue
            self.reached = True
            return out

    async def _resolve(self, service: str, force: bool = False) -> Pinned:
        if not force and (p := self._fresh(service)) is not None:
            return p
        keys = KeySpace(self.key_prefix, self.project, service)
        snapshot = await self._call("read current", lambda: self.redis.get(keys.current))
        if snapshot is None:
            raise NoCommittedSnapshot(service, keys.current)
        manifest_key = keys.manifest(snapshot.decode())
        manifest = await self._call("read the manifest", lambda: self.redis.get(manifest_key))
        return self._keep(service, Pinned(keys, snapshot.decode(), _decode_str(manifest)))

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        if self.cluster:
            return list(await self._call("MGET", lambda: self.redis.mget_nonatomic(keys)))
        return list(await self._call("MGET", lambda: self.redis.mget(keys)))

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
        features: Iterable[str] | None = None,
    ) -> Any:
        steps = read_steps(self, service, list(entities), missing, stale, as_numpy, features)
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
