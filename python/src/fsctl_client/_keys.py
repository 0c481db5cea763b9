"""Redis key names (SPEC §3) and the rendering of an entity into its key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

Entity = Union[Mapping[str, Any], Sequence[Any], int, str]


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace(":", "\\:")


def render_entity(join_keys: Sequence[tuple[str, str]], entity: Entity) -> str:
    """`{entity}` of a data key: the join key values in declared order, integers in decimal,
    strings as UTF-8, joined by `:` with `\\` and `:` escaped when there are several."""
    if len(join_keys) == 1 and type(entity) in (int, str):
        # The common case first: one join key, given bare (no ABC check, no escaping).
        if join_keys[0][1].startswith("int") and type(entity) is str:
            return render_entity(join_keys, [entity])
        return str(entity)
    names = [name for name, _ in join_keys]
    if isinstance(entity, Mapping):
        missing = [n for n in names if n not in entity]
        if missing:
            raise KeyError(f"entity {dict(entity)!r} lacks join key(s) {missing}")
        values = [entity[n] for n in names]
    elif isinstance(entity, (str, int)):
        values = [entity]
    else:
        values = list(entity)
    if len(values) != len(join_keys):
        raise ValueError(f"entity {entity!r}: expected values for join keys {names}")
    parts = []
    for value, (name, dtype) in zip(values, join_keys):
        if dtype.startswith("int"):
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    value = int(str(value))
                except ValueError:
                    raise ValueError(f"join key {name} is {dtype}, not {value!r}") from None
            parts.append(str(value))
        else:
            parts.append(str(value))
    if len(parts) == 1:
        return parts[0]
    return ":".join(
        p if dtype.startswith("int") else _escape(p) for p, (_, dtype) in zip(parts, join_keys)
    )


class KeySpace:
    def __init__(self, prefix: str, project: str, service: str) -> None:
        self.base = f"{prefix}:{project}"
        self.service = service

    def control(self, what: str) -> str:
        return f"{self.base}:{{{self.service}}}:{what}"

    @property
    def current(self) -> str:
        return self.control("current")

    def manifest(self, snapshot: str) -> str:
        return self.control(f"snapshot:{snapshot}")

    def data(self, snapshot: str, entity: str) -> str:
        return f"{self.base}:{self.service}:{snapshot}:{entity}"
