"""Format-1 vectors (SPEC §3): a header byte, then MessagePack (0x01) or one zstd frame of it
(0x02) holding `[fingerprint, [view event times in µs or nil], [values in service order]]`."""

from __future__ import annotations

from typing import Any

import msgpack
import xxhash
import zstandard

from ._errors import CorruptVector

PLAIN = 0x01
ZSTD = 0x02


def _unzstd(body: bytes) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompress(body)
    except zstandard.ZstdError:
        # A frame without its content size in the header: stream it.
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)


def decode(raw: bytes, key: str) -> tuple[int, list[int | None], list[Any]]:
    """The fingerprint, view timestamps and values of a vector; `key` names it in errors."""
    if not raw:
        raise CorruptVector(key, "empty value")
    header, body = raw[0], raw[1:]
    try:
        if header == ZSTD:
            body = _unzstd(body)
        elif header != PLAIN:
            raise CorruptVector(key, f"unknown header byte 0x{header:02x}")
        doc = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (zstandard.ZstdError, ValueError, msgpack.UnpackException) as e:
        raise CorruptVector(key, str(e)) from e
    if (
        not isinstance(doc, list)
        or len(doc) != 3
        or not isinstance(doc[0], int)
        or not isinstance(doc[1], list)
        or not isinstance(doc[2], list)
    ):
        raise CorruptVector(key, "not [fingerprint, timestamps, values]")
    return doc[0], doc[1], doc[2]


def fingerprint(join_keys: list[tuple[str, str]], features: list[tuple[str, str, str]]) -> int:
    """The schema fingerprint of SPEC §3: `join_keys` as (name, dtype), `features` as
    (view, feature, dtype) in service order."""
    lines = ["fsctl-vector-v1"]
    lines += [f"entity:{name}:{dtype}" for name, dtype in join_keys]
    lines += [f"feature:{view}.{name}:{dtype}" for view, name, dtype in features]
    return xxhash.xxh3_64_intdigest("".join(line + "\n" for line in lines).encode())
