"""The exceptions of fsctl_client: each names the service and, where there is one, the key."""

from __future__ import annotations


class FsctlError(Exception):
    """Base class of everything this package raises."""


class NoCommittedSnapshot(FsctlError):
    """The service has no committed snapshot (`current` is missing)."""

    def __init__(self, service: str, key: str) -> None:
        super().__init__(f"service {service!r} has no committed snapshot ({key} is missing)")
        self.service = service
        self.key = key


class FingerprintMismatch(FsctlError):
    """A vector's schema fingerprint differs from the committed manifest's."""

    def __init__(self, service: str, key: str, found: int, expected: int) -> None:
        super().__init__(
            f"service {service!r}: vector {key} has fingerprint {found:016x}, the committed "
            f"manifest {expected:016x}; it is not returned"
        )
        self.service = service
        self.key = key


class CorruptVector(FsctlError):
    """A value that is not a format-1 vector."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key} is not a readable fsctl vector: {why}")
        self.key = key


class EntityNotFound(FsctlError):
    """With `missing="raise"`: the entity has no vector in the committed snapshot."""

    def __init__(self, service: str, key: str) -> None:
        super().__init__(f"service {service!r}: no vector for {key} in the committed snapshot")
        self.service = service
        self.key = key


class StoreUnavailable(FsctlError):
    """Redis could not be reached or failed; the URL in the message is redacted."""
