"""Serving-side reader of fsctl's pre-computed feature vectors (SPEC §3)."""

from ._client import AsyncFeatureClient, FeatureClient
from ._core import FeatureVector, ViewTime
from ._errors import (
    CorruptVector,
    EntityNotFound,
    FingerprintMismatch,
    FsctlError,
    NoCommittedSnapshot,
    StoreUnavailable,
)
from ._vector import decode, fingerprint

__all__ = [
    "AsyncFeatureClient",
    "CorruptVector",
    "EntityNotFound",
    "FeatureClient",
    "FeatureVector",
    "FingerprintMismatch",
    "FsctlError",
    "NoCommittedSnapshot",
    "StoreUnavailable",
    "ViewTime",
    "decode",
    "fingerprint",
]
