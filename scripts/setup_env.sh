#!/usr/bin/env bash
# Installs what UniADRS needs on Debian 12, idempotently and fast on a second run:
# Debian's QGIS 3.22 + GDAL, a venv at .venv (Debian's python3, system site packages, so that
# qgis, osgeo and PyQt5 are visible) with the engine installed editable and test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for package in qgis python3-qgis gdal-bin python3-gdal python3-venv; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || need_apt+=("$package")
done
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv from /usr/bin/python3" >&2
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.uniadrs-installed
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "setup: installing the engine and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi
