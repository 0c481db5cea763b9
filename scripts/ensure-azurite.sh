#!/usr/bin/env bash
# Prints the path of azurite-blob (Microsoft's Azure Blob Storage emulator, from the npm
# registry) for the az:// tests, installing it under target/azurite when missing, and the Python
# package azure-storage-blob (the tests create containers with it) into target/venv.
# AZURITE_BLOB overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${AZURITE_BLOB:-}" ]; then echo "$AZURITE_BLOB"; exit 0; fi
dir=target/azurite
if [ ! -x "$dir/node_modules/.bin/azurite-blob" ]; then
  command -v npm >/dev/null || { echo "npm is required to install azurite" >&2; exit 1; }
  echo "azurite not found; installing it into $dir with npm" >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-audit --no-fund --silent "azurite@3" >&2)
fi
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
"$venv/bin/python" -c "import azure.storage.blob" 2>/dev/null ||
  "$venv/bin/pip" install -q --disable-pip-version-check "azure-storage-blob>=12,<13" >&2
echo "$(pwd)/$dir/node_modules/.bin/azurite-blob"
