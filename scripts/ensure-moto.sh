#!/usr/bin/env bash
# Prints the path of a moto_server (the S3-compatible test server of the object-store tests),
# installing moto[server] from PyPI into the virtualenv under target/ when it is missing.
# MOTO_SERVER overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${MOTO_SERVER:-}" ]; then echo "$MOTO_SERVER"; exit 0; fi
venv=target/venv
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "moto_server not found; installing moto[server] into $venv with pip" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]>=5,<6" >&2
fi
echo "$(pwd)/$venv/bin/moto_server"
