"""Serving-side reader of fsctl's pre-computed feature vectors (SPEC §3)."""

from ._client import AsyncFeatureClient, FeatureClient
from ._core import FeatureVector, NumpyFeatures, ViewTime
from ._errors import (
    AuthenticationFailed,
    ConfigError,
    CorruptVector,
    EntityNotFound,
    FingerprintMismatch,
    FsctlError,
    MissingExtra,
    NoCommittedSnapshot,
    NotNumeric,
    StoreUnavailable,
    UnknownService,
)
from ._vector import decode, fingerprint

__all__ = [
    "AsyncFeatureClient",
    "AuthenticationFailed",
    "ConfigError",
    "CorruptVector",
    "EntityNotFound",
    "FeatureClient",
    "FeatureVector",
    "FingerprintMismatch",
    "FsctlError",
    "MissingExtra",
    "NoCommittedSnapshot",
    "NotNumeric",
    "NumpyFeatures",
    "StoreUnavailable",
    "UnknownService",
    "ViewTime",
    "decode",
    "fingerprint",
]
