"""UniADRS for QGIS: zero-shot anomaly detection for remote-sensing rasters, as Processing tools.

QGIS calls :func:`classFactory` to create the plugin. The plugin folder is ``uniadrs`` once
installed; see ``engine_import.py`` for how it finds the ``uniadrs_engine`` package.
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:  # noqa: N802 - QGIS API
    """Creates the plugin object (``iface`` is None under ``qgis_process``)."""
    from .plugin import UniadrsPlugin

    return UniadrsPlugin(iface)
