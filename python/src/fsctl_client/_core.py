"""What the sync and async clients share: the committed snapshot as resolved, results, the
pointer cache's bound and the LRU of decoded vectors. No I/O here."""

from __future__ import annotations

import json
import random
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from ._errors import (
    CorruptVector,
    EntityNotFound,
    FingerprintMismatch,
    MissingExtra,
    NotNumeric,
    closest,
)
from ._keys import KeySpace
from ._vector import decode

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MISSING_MODES = ("none", "defaults", "raise")
STALE_MODES = ("flag", "missing")


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class ViewTime(NamedTuple):
    """One feature view's row in a vector: its event time, its age now, and whether that age
    exceeds the view's `ttl` (Feast's OUTSIDE_MAX_AGE)."""

    view: str
    event_time: datetime | None
    age_s: float | None
    stale: bool


class FeatureVector:
    """One entity's vector of a FeatureService. `values` maps `view.feature` to its value in
    service order; with `found` False they are the training defaults (`missing="defaults"`) or
    empty (`missing="none"`). `views` (each view's event time, age and staleness) is built on
    first access: a request that only needs the values does not pay for it."""

    __slots__ = ("service", "entity", "key", "snapshot", "found", "values", "_views", "_times")

    def __init__(
        self,
        service: str,
        entity: str,
        key: str,
        snapshot: str,
        found: bool,
        values: dict[str, Any] | None = None,
        views: dict[str, ViewTime] | None = None,
        times: tuple[list[Any], list[int | None], float] | None = None,
    ) -> None:
        self.service, self.entity, self.key, self.snapshot = service, entity, key, snapshot
        self.found = found
        self.values = {} if values is None else values
        self._views = views
        # (the views' (name, ttl_ms), their event times in µs, the read's time in µs)
        self._times = times

    @property
    def views(self) -> dict[str, ViewTime]:
        if self._views is None:
            self._views = {} if self._times is None else view_times(*self._times)
        return self._views

    @property
    def stale_views(self) -> list[str]:
        return [v.view for v in self.views.values() if v.stale]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureVector):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self._compared)

    _compared = ("service", "entity", "key", "snapshot", "found", "values", "views")

    def __repr__(self) -> str:
        fields = ", ".join(f"{a}={getattr(self, a)!r}" for a in self._compared)
        return f"FeatureVector({fields})"


def view_times(
    ttls: list[tuple[str, int | None]], stamps: list[int | None], now_us: float
) -> dict[str, ViewTime]:
    views = {}
    for (view, ttl_ms), us in zip(ttls, stamps):
        if us is None:
            views[view] = ViewTime(view, None, None, False)
            continue
        age = (now_us - us) / 1e6
        views[view] = ViewTime(view, from_us(us), age, ttl_ms is not None and age * 1000 > ttl_ms)
    return views


def any_stale(ttls: list[tuple[str, int | None]], stamps: list[int | None], now_us: float) -> bool:
    return any(
        us is not None and ttl_ms is not None and now_us - us > ttl_ms * 1000
        for (_, ttl_ms), us in zip(ttls, stamps)
    )


class Pinned:
    """A committed snapshot as a client resolved it: `current` and its manifest."""

    def __init__(self, keys: KeySpace, snapshot: str, manifest_json: str | None) -> None:
        self.keys = keys
        self.snapshot = snapshot
        self.resolved_at = time.monotonic()
        if manifest_json is None:
            raise CorruptVector(keys.manifest(snapshot), "the committed manifest is missing")
        try:
            m = json.loads(manifest_json)
            self.fingerprint = int(m["fingerprint"], 16)
            self.join_keys = [(k["name"], k["dtype"]) for k in m["entity"]["join_keys"]]
            self.schema = [
                (f["view"], f["name"], f["dtype"], f.get("default")) for f in m["schema"]
            ]
            self.view_ttl_ms = [(v["name"], v.get("ttl_ms")) for v in m["views"]]
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptVector(keys.manifest(snapshot), f"unreadable manifest: {e}") from e
        self.manifest = m
        # Computed once per snapshot, not per vector.
        self.names = [f"{v}.{n}" for v, n, _, _ in self.schema]
        self.timestamps = [
            (i, t)
            for i, (_, _, t, _) in enumerate(self.schema)
            if t.endswith("timestamp>") or t == "timestamp"
        ]

    def key(self, entity: str) -> str:
        return self.keys.data(self.snapshot, entity)

    def defaults(self) -> dict[str, Any]:
        return {f"{v}.{n}": _typed(d, t) for v, n, t, d in self.schema}

    def result(
        self, entity: str, raw: bytes | None, missing: str, stale: str, now_us: float
    ) -> FeatureVector:
        """The result for one entity (`raw` None: no vector). Raises on a foreign fingerprint."""
        key = self.key(entity)
        if raw is None:
            return self.absent(entity, key, missing)
        fp, stamps, values = decode(raw, key)
        if fp != self.fingerprint:
            raise FingerprintMismatch(self.keys.service, key, fp, self.fingerprint)
        if len(stamps) != len(self.view_ttl_ms) or len(values) != len(self.schema):
            raise CorruptVector(key, "item counts differ from the manifest's schema")
        times = (self.view_ttl_ms, stamps, now_us)
        if stale == "missing" and any_stale(*times):
            return self.absent(entity, key, missing, view_times(*times))
        for i, dtype in self.timestamps:
            values[i] = _typed(values[i], dtype)
        named = dict(zip(self.names, values))
        service = self.keys.service
        return FeatureVector(service, entity, key, self.snapshot, True, named, None, times)

    def absent(
        self, entity: str, key: str, missing: str, views: dict[str, ViewTime] | None = None
    ) -> FeatureVector:
        if missing == "raise":
            raise EntityNotFound(self.keys.service, key)
        values = self.defaults() if missing == "defaults" else {}
        return FeatureVector(
            self.keys.service, entity, key, self.snapshot, False, values, views or {}
        )


def _typed(value: Any, dtype: str) -> Any:
    """Timestamps (µs since the epoch in the vector) as aware datetimes; the rest as decoded."""
    if value is None:
        return None
    if dtype == "timestamp" and isinstance(value, int):
        return from_us(value)
    if dtype == "list<timestamp>" and isinstance(value, list):
        return [from_us(v) if isinstance(v, int) else v for v in value]
    return value


class Lru:
    """Decoded vectors of the hottest entities for `ttl` seconds, at most `size` of them, by
    data key (which names the service and the snapshot), dropped for a service whose `current`
    moved."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self.entries: OrderedDict[str, tuple[float, FeatureVector]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> FeatureVector | None:
        if self.size <= 0:
            return None
        hit = self.peek(key, time.monotonic())
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def peek(self, key: str, now: float) -> FeatureVector | None:
        """A live entry at `now` (monotonic), as the most recently used, without counting a hit
        or a miss."""
        hit = self.entries.get(key)
        if hit is None or hit[0] < now:
            return None
        self.entries.move_to_end(key)
        return hit[1]

    def put(self, v: FeatureVector) -> None:
        if self.size <= 0 or not v.found:
            return
        self.entries[v.key] = (time.monotonic() + self.ttl, v)
        self.entries.move_to_end(v.key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def drop_service(self, service: str) -> None:
        for k in [k for k, (_, v) in self.entries.items() if v.service == service]:
            del self.entries[k]


def check_modes(missing: str, stale: str) -> None:
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, not {missing!r}")
    if stale not in STALE_MODES:
        raise ValueError(f"stale must be one of {STALE_MODES}, not {stale!r}")


NUMERIC_DTYPES = ("int32", "int64", "float32", "float64", "bool")


def import_numpy() -> Any:
    try:
        import numpy
    except ImportError as e:
        raise MissingExtra("as_numpy=True", "numpy", "numpy") from e
    return numpy


class NumpyFeatures:
    """What `get_many(..., as_numpy=True)` returns: `values`, a float64 matrix with one row per
    entity and one column per feature of `names` (`view.feature`, in the order requested: the
    service's by default); `missing`, a bool array, True for the entities without a vector.
    Nulls (and the values of missing entities, unless `missing="defaults"`) are NaN, bools 0.0
    or 1.0. It unpacks as `values, missing = ...`, as the earlier tuple did."""

    __slots__ = ("names", "values", "missing", "snapshot")

    def __init__(self, names: list[str], values: Any, missing: Any, snapshot: str) -> None:
        self.names, self.values, self.missing, self.snapshot = names, values, missing, snapshot

    def __iter__(self) -> Any:
        return iter((self.values, self.missing))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        fields = f"names={self.names!r}, values={self.values!r}, missing={self.missing!r}"
        return f"NumpyFeatures({fields})"


def numpy_columns(pinned: Pinned, features: list[str] | None) -> list[str]:
    """The names of the columns of an `as_numpy` read, each checked to be a feature of the
    service with a numeric or bool dtype."""
    dtypes = {f"{v}.{n}": t for v, n, t, _ in pinned.schema}
    names = list(pinned.names) if features is None else list(features)
    unknown = [n for n in names if n not in dtypes]
    if unknown:
        hints = [
            f"{n!r} (did you mean {c!r}?)" if (c := closest(n, pinned.names)) else repr(n)
            for n in unknown
        ]
        raise ValueError(
            f"service {pinned.keys.service!r} has no feature {', '.join(hints)}; its features: "
            + ", ".join(pinned.names)
        )
    bad = [(n, dtypes[n]) for n in names if dtypes[n] not in NUMERIC_DTYPES]
    if bad:
        numeric = [n for n in pinned.names if dtypes[n] in NUMERIC_DTYPES]
        raise NotNumeric(pinned.keys.service, bad, numeric)
    return names


def as_numpy(results: list[FeatureVector], pinned: Pinned, names: list[str]) -> NumpyFeatures:
    """The `names` columns of `results` as float64 (nulls as NaN), and the missing mask."""
    np = import_numpy()
    out = np.full((len(results), len(names)), np.nan)
    for i, r in enumerate(results):
        values = r.values
        for j, name in enumerate(names):
            x = values.get(name)
            if x is not None:
                out[i, j] = float(x)
    missing = np.array([not r.found for r in results], dtype=bool)
    return NumpyFeatures(names, out, missing, pinned.snapshot)


class RetryPolicy:
    """fsctl's retry policy (src/base/retry.rs): `attempts` tries in all, the wait after the
    n-th failure uniformly within the upper half of min(max_delay, base × 2^(n-1))."""

    def __init__(self, attempts: int, max_delay: float, base: float = 0.05) -> None:
        if attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, not {attempts}")
        self.attempts = attempts
        self.max_delay = max_delay
        self.base = min(base, max_delay)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base * 2 ** min(attempt - 1, 20))
        return ceiling / 2 + random.random() * ceiling / 2


def split_urls(text: str) -> list[str]:
    """The URLs of a comma-separated list (a cluster's seeds), as src/base/secrets.rs
    `split_urls` cuts it: a URL starts at a comma followed by `redis://`, `rediss://` or `${`;
    any other comma belongs to the URL before it (a password may hold one), so that no piece
    of a password is ever taken for a URL of its own."""
    out, start = [], 0
    for i, c in enumerate(text):
        if c == "," and text[i + 1 :].lstrip().startswith(("redis://", "rediss://", "${")):
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


def redact(url: str) -> str:
    """`url` with any password replaced by `***`, in every URL of a comma-separated list
    (src/base/secrets.rs `redact_url`): the user information ends at the LAST `@` before the
    path, so a password holding `@`, `:` or `,` never shows."""
    return ",".join(_redact_one(u) for u in split_urls(url))


def _redact_one(url: str) -> str:
    scheme_end = url.find("://")
    if scheme_end < 0:
        # Not a URL; what comes before an `@` may still be a secret.
        at = url.rfind("@")
        return url if at < 0 else f"***{url[at:]}"
    scheme, rest = url[: scheme_end + 3], url[scheme_end + 3 :]
    host_start = rest.find("/")
    at = rest.rfind("@", 0, len(rest) if host_start < 0 else host_start)
    if at < 0:
        return url
    userinfo = rest[:at]
    if ":" in userinfo:
        return f"{scheme}{userinfo.split(':', 1)[0]}:***{rest[at:]}"
    return f"{scheme}***{rest[at:]}"


def build_all(
    pinned: Pinned,
    rendered: list[str],
    cached: list[FeatureVector | None],
    fetched: dict[int, bytes | None],
    missing: str,
    stale: str,
    final: bool,
) -> tuple[list[FeatureVector] | None, bool]:
    """The results of one read, or (None, mismatch) when it is not `final` and a key was
    missing or a fingerprint foreign: the caller resolves `current` again at once (SPEC §3.1)."""
    now_us = time.time() * 1e6
    if not final:
        for raw in fetched.values():
            if raw is None:
                return None, False
    out: list[FeatureVector] = []
    for i, entity in enumerate(rendered):
        hit = cached[i]
        if hit is not None:
            out.append(hit)
            continue
        try:
            out.append(pinned.result(entity, fetched[i], missing, stale, now_us))
        except FingerprintMismatch:
            if final:
                raise
            return None, True
    return out, False
