"""A repo's `online_store` as the fsctl CLI reads it (src/repo/resolve.rs, src/online/redis/
target.rs): `FSCTL_REDIS_URL` over `url`, `${VAR}` expanded, the password from `password_env`
or `password_file`, relative paths against the repo directory, timeouts and retries."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ._errors import ConfigError, MissingExtra

REPO_FILE = "feature_store.yaml"
STORE_TYPES = ("redis", "redis_cluster")
# The CLI's defaults (src/repo/resolve.rs, src/base/retry.rs).
CONNECT_TIMEOUT = "5s"
RESPONSE_TIMEOUT = "30s"
RETRY_ATTEMPTS = 8
RETRY_MAX_DELAY = "5s"
RETIRE_GRACE = "5m"

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def expand_env(text: str, what: str) -> str:
    """`${VAR}` replaced by the variable's value; an unset variable is an error naming it and
    the setting `what` (src/base/secrets.rs `expand_env`). The text is never shown: it may hold
    a password."""
    out, rest = [], text
    while (start := rest.find("${")) >= 0:
        out.append(rest[:start])
        end = rest.find("}", start)
        if end < 0:
            raise ConfigError(f"{what}: unterminated `${{` (a `${{VAR}}` without its `}}`)")
        name = rest[start + 2 : end]
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"{what} refers to environment variable `{name}`, which is not set")
        out.append(value)
        rest = rest[end + 1 :]
    out.append(rest)
    return "".join(out)


def parse_duration(text: Any, what: str) -> float:
    """Seconds of a repo duration as src/base/duration.rs reads it: one or more
    `<number><unit>` parts, units ms, s, m, h, d, w, each at most once and largest first
    (`500ms`, `30s`, `2h`, `7d`, `1d12h`), greater than zero."""
    expected = "expected e.g. 30s, 10m, 2h, 7d or 1d12h (units ms, s, m, h, d, w)"
    t = str(text).strip()
    parts = re.findall(r"(\d+)([^\d]*)", t)
    if not t or "".join(n + u for n, u in parts) != t:
        raise ConfigError(f"{what}: invalid duration `{text}`: {expected}")
    order = list(_UNITS_MS)[::-1]  # w, d, h, m, s, ms
    total, last = 0, -1
    for number, unit in parts:
        if unit not in _UNITS_MS:
            raise ConfigError(
                f"{what}: invalid duration `{text}`: `{unit}` is not a unit; {expected}"
            )
        at = order.index(unit)
        if at <= last:
            raise ConfigError(
                f"{what}: invalid duration `{text}`: write each unit once, largest first "
                "(as in 1d12h)"
            )
        last = at
        total += int(number) * _UNITS_MS[unit]
    if total == 0:
        raise ConfigError(f"{what}: invalid duration `{text}`: must be greater than zero")
    return total / 1000


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as e:
        raise MissingExtra("FeatureClient.from_repo", "repo", "yaml") from e
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read the repo file {path}: {e.strerror or e}") from e
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with project and online_store")
    return doc


def _repo_path(repo_dir: Path, value: Any) -> Path:
    """A path of the repo: relative ones are relative to the repo directory, not to the
    working directory (as the CLI's `dir.join`)."""
    return repo_dir / str(value)


def read_password_file(path: Path) -> str:
    """The first line of `path` (without its line ending), as the CLI reads it."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(
            f"online_store.password_file: cannot read {path} ({e.strerror or e}); a relative "
            "path is taken from the repo directory"
        ) from e
    lines = text.splitlines()
    return lines[0] if lines else ""


def repo_settings(repo: str | os.PathLike[str], url: str | None) -> dict[str, Any]:
    """The keyword arguments of a client configured as the repo's online store is."""
    repo_dir = Path(repo).expanduser().resolve()
    file = repo_dir / REPO_FILE
    doc = _load_yaml(file)
    project = doc.get("project")
    if not isinstance(project, str) or not project:
        raise ConfigError(f"{file}: `project` is missing")
    online = doc.get("online_store")
    if not isinstance(online, dict):
        raise ConfigError(f"{file}: `online_store` is missing")

    def opt(key: str, default: Any = None) -> Any:
        value = online.get(key)
        return default if value is None else value

    kind = opt("type", "redis")
    if kind not in STORE_TYPES:
        raise ConfigError(
            f"{file}: online_store type `{kind}` is not supported (`redis` for one server, "
            "`redis_cluster` for a Redis Cluster or Valkey in cluster mode)"
        )
    if url is not None:
        chosen, what = url, "the url argument"
    elif os.environ.get("FSCTL_REDIS_URL"):
        chosen, what = os.environ["FSCTL_REDIS_URL"], "FSCTL_REDIS_URL"
    elif online.get("url"):
        chosen, what = str(online["url"]), "online_store.url"
    else:
        raise ConfigError(f"{file}: online_store.url is missing")
    chosen = expand_env(chosen, what).strip()

    password, source = None, None
    if online.get("password_env") is not None:
        var = str(online["password_env"])
        password = os.environ.get(var)
        if password is None:
            raise ConfigError(f"online_store.password_env names `{var}`, which is not set")
        source = f"online_store.password_env (`{var}`) of {file}"
    elif online.get("password_file") is not None:
        path = _repo_path(repo_dir, online["password_file"])
        password = read_password_file(path)
        source = f"online_store.password_file ({path}) of {file}"

    tls_ca = None
    if online.get("tls_ca_file") is not None:
        tls_ca = _repo_path(repo_dir, online["tls_ca_file"])
        try:
            tls_ca.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"online_store.tls_ca_file: cannot read {tls_ca} ({e.strerror or e}); a "
                "relative path is taken from the repo directory"
            ) from e

    attempts = opt("retry_attempts", RETRY_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise ConfigError(
            f"{file}: online_store.retry_attempts {attempts} must be between 1 and 100"
        )
    prefix = str(opt("key_prefix", "fs"))
    if not prefix or any(c.isspace() or c in ":{}" for c in prefix):
        raise ConfigError(
            f"{file}: key_prefix `{prefix}` must be non-empty with no spaces, `:`, `{{` or `}}`"
        )
    services = [
        s["name"]
        for s in doc.get("feature_services") or []
        if isinstance(s, dict) and isinstance(s.get("name"), str)
    ]
    grace = (doc.get("materialization") or {}).get("retire_grace") or RETIRE_GRACE
    return {
        "url": chosen,
        "project": project,
        "key_prefix": prefix,
        "cluster": kind == "redis_cluster",
        "retire_grace": parse_duration(grace, "materialization.retire_grace"),
        "password": password,
        "password_source": source,
        "tls_ca_file": None if tls_ca is None else str(tls_ca),
        "connect_timeout": parse_duration(
            opt("connect_timeout", CONNECT_TIMEOUT), "online_store.connect_timeout"
        ),
        "response_timeout": parse_duration(
            opt("response_timeout", RESPONSE_TIMEOUT), "online_store.response_timeout"
        ),
        "retry_attempts": attempts,
        "retry_max_delay": parse_duration(
            opt("retry_max_delay", RETRY_MAX_DELAY), "online_store.retry_max_delay"
        ),
        "services": services,
        "services_source": str(file),
    }
