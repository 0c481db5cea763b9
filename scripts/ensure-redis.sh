#!/usr/bin/env bash
# Installs redis-server and redis-cli with the system package manager when they are missing.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server/redis-cli not found; installing with apt-get" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools openssl >/dev/null
# The package may start a system service on 6379; fsctl's scripts never use it.
