#!/usr/bin/env bash
# Prints the path of prometheus-pushgateway, installing Debian's package with apt-get when it is
# missing (the metrics tests start their own on a free port; a system service the package may
# start on 9091 is never used).
set -euo pipefail
if ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  echo "prometheus-pushgateway not found; installing with apt-get" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus-pushgateway >/dev/null
fi
command -v prometheus-pushgateway
