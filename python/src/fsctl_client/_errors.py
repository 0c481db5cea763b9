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


class AuthenticationFailed(StoreUnavailable):
    """Redis refused the credentials; the message names where the password came from (never
    the password itself)."""


class ConfigError(FsctlError, ValueError):
    """A repo's `feature_store.yaml` (or the environment it refers to) cannot configure a
    client: the message names the setting, and the file or variable involved."""


class UnknownService(FsctlError, LookupError):
    """The repo does not define the service asked for (a misspelling, most often)."""

    def __init__(self, service: str, services: list[str], where: str) -> None:
        self.service = service
        self.services = sorted(services)
        self.suggestion = closest(service, self.services)
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        known = ", ".join(self.services) or "none"
        super().__init__(
            f"service {service!r} is not defined in {where}{hint}; its services: {known}"
        )


class MissingExtra(FsctlError, ImportError):
    """An optional dependency is not installed: the message names the extra to install."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the {module!r} module, which is not installed: install the "
            f"{extra!r} extra (pip install 'fsctl-client[{extra}]', or pip install "
            f"'./python[{extra}]' from a checkout of fsctl)",
            name=module,
        )
        self.extra = extra


class NotNumeric(FsctlError, TypeError):
    """`as_numpy=True` was asked for features that are not numbers or bools."""

    def __init__(self, service: str, bad: list[tuple[str, str]], numeric: list[str]) -> None:
        listed = ", ".join(f"{name} ({dtype})" for name, dtype in bad)
        hint = (
            f"pass features=[...] with numeric ones only (this service's: {', '.join(numeric)})"
            if numeric
            else "this service has no numeric feature"
        )
        super().__init__(
            f"service {service!r}: as_numpy=True returns float64 and needs numeric or bool "
            f"features, but {listed} {'is' if len(bad) == 1 else 'are'} not; {hint}, or read "
            "without as_numpy to get every value as it is"
        )
        self.service = service
        self.features = [name for name, _ in bad]


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        diag, row[0] = row[0], i + 1
        for j, cb in enumerate(b):
            diag, row[j + 1] = row[j + 1], min(row[j + 1] + 1, row[j] + 1, diag + (ca != cb))
    return row[len(b)]


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate `name` most likely misspells (the rule of fsctl's own "did you mean"):
    the nearest by edit distance, when within max(2, len / 4) edits."""
    scored = [(edit_distance(name, c), c) for c in candidates]
    close = [(d, c) for d, c in scored if d <= max(2, len(c) // 4)]
    return min(close)[1] if close else None
