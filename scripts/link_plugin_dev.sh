#!/usr/bin/env bash
# Links the plugin of this checkout into a QGIS profile for development.
#
#   scripts/link_plugin_dev.sh [PROFILE_FOLDER]
#
# PROFILE_FOLDER defaults to the default profile of QGIS 3 on Linux
# (~/.local/share/QGIS/QGIS3/profiles/default; on Windows %APPDATA%\QGIS\QGIS3\profiles\default,
# on macOS ~/Library/Application Support/QGIS/QGIS3/profiles/default).
# <profile>/python/plugins/uniadrs becomes a folder of symlinks into qgis_plugin/, plus
# metadata.txt, the icons and resources/models; the engine is imported from the
# checkout. Then enable "UniADRS Anomaly Detection" in Plugins > Manage and Install Plugins
# (headless: qgis_process.bin plugins enable uniadrs). Run again after adding a top-level
# file to qgis_plugin/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
profile="${1:-$HOME/.local/share/QGIS/QGIS3/profiles/default}"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" "$here/build_plugin_zip.py" --link "$profile"
