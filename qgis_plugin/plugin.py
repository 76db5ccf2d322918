"""The QGIS plugin object: registers the UniADRS Processing provider, nothing else.

There is no menu or toolbar: every tool is a Processing algorithm (toolbox, model builder,
batch mode, ``qgis_process``). ``initProcessing`` is what ``qgis_process`` calls (with
``iface`` None); the desktop calls ``initGui``.
"""

from __future__ import annotations

from typing import Any, Optional

from qgis.core import QgsApplication

from .engine_import import forget_plugin_modules
from .provider import UniadrsProvider


class UniadrsPlugin:
    """Adds and removes the provider."""

    def __init__(self, iface: Optional[Any] = None) -> None:
        self.iface = iface
        self.provider: Optional[UniadrsProvider] = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        """Registers the provider (idempotent)."""
        if self.provider is None:
            self.provider = UniadrsProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        """Desktop start: the provider is all there is."""
        self.initProcessing()

    def unload(self) -> None:
        """Removes the provider and forgets the plugin's modules (a reload runs new code)."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        forget_plugin_modules(__package__ or __name__.rpartition(".")[0])
