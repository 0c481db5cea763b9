#!/usr/bin/env bash
# Prints the virtualenv (target/venv) with the Python client installed from ./python, its test
# dependencies, Feast (the `feast` extra: tests/test_feast.py, scripts/feast-fixture.py) and ruff,
# creating or refreshing it as needed (pip, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check "./python[test,feast]" ruff >&2
# The package itself, rebuilt from the working tree every time.
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./python >&2
echo "$(pwd)/$venv"
