"""Build hook: fsctl-client's version is fsctl's (../Cargo.toml, one place for both wheels), and
its ``cli`` extra pins the fsctl of that version. A build from an sdist, which has no Cargo.toml
beside it, takes the version its PKG-INFO recorded."""

from __future__ import annotations

import os
import re

from hatchling.metadata.plugin.interface import MetadataHookInterface


def version_of(root: str) -> str:
    cargo = os.path.join(root, os.pardir, "Cargo.toml")
    if os.path.isfile(cargo):
        path, pattern = cargo, r'^version\s*=\s*"([^"]+)"'
    else:
        path, pattern = os.path.join(root, "PKG-INFO"), r"^Version:\s*(\S+)"
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(pattern, line)
            if m:
                return m.group(1)
    raise RuntimeError(f"no version in {path}")


class CargoVersion(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        version = version_of(self.root)
        metadata["version"] = version
        extras = {name: list(deps) for name, deps in self.config.get("extras", {}).items()}
        extras["cli"] = [f"fsctl=={version}"]
        metadata["optional-dependencies"] = extras
