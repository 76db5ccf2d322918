"""The UniADRS Processing provider: algorithms, settings and output formats.

Registered by :meth:`UniadrsPlugin.initProcessing` so that the toolbox, the graphical model
builder, batch mode and ``qgis_process`` all see the same algorithms (``uniadrs:<name>``).
Loading it imports no engine module that needs PyTorch.
"""

from __future__ import annotations

from typing import List

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import settings
from .algorithms import algorithm_classes
from .engine_import import ensure_engine_importable
from .resources import icon_path, shipped_model_files

PROVIDER_ID = "uniadrs"

#: Vector formats the engine writes polygons to (OGR drivers chosen by extension).
VECTOR_EXTENSIONS = ["gpkg", "shp", "geojson", "fgb", "sqlite", "gml", "kml"]


def plugin_version() -> str:
    """The engine's version (the plugin and the engine are released together)."""
    try:
        from uniadrs_engine import __version__
    except Exception:  # noqa: BLE001 - never fail to load the provider
        return ""
    return __version__


class UniadrsProvider(QgsProcessingProvider):
    """Processing provider of the UniADRS algorithms."""

    def __init__(self) -> None:
        super().__init__()
        self.engine_location = ensure_engine_importable()

    def id(self) -> str:
        """Provider id: the prefix of the algorithm ids."""
        return PROVIDER_ID

    def name(self) -> str:
        """Short name shown in the toolbox."""
        return "UniADRS"

    def longName(self) -> str:  # noqa: N802 - QGIS API
        """Name with the version."""
        version = plugin_version()
        return f"UniADRS anomaly detection {version}".strip()

    def icon(self) -> QIcon:
        """The plugin icon."""
        return QIcon(icon_path())

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        """Path of the SVG icon."""
        return icon_path()

    def load(self) -> bool:
        """Registers the settings, then loads the algorithms."""
        settings.register_settings(icon_path())
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        """Removes the settings."""
        settings.unregister_settings()

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        """Adds one instance of every algorithm, then the shipped Processing models."""
        for algorithm_class in algorithm_classes():
            self.addAlgorithm(algorithm_class())
        for path in shipped_model_files():
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(str(path)):
                self.addAlgorithm(model)

    def supportsNonFileBasedOutput(self) -> bool:  # noqa: N802 - QGIS API
        """The engine writes files only (no memory layers, no database tables)."""
        return False

    def supportedOutputRasterLayerExtensions(self) -> List[str]:  # noqa: N802 - QGIS API
        """The engine writes GeoTIFF rasters."""
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:  # noqa: N802 - QGIS API
        """GeoTIFF."""
        return "tif"

    def supportedOutputVectorLayerExtensions(self) -> List[str]:  # noqa: N802 - QGIS API
        """Vector formats the engine can write polygons to."""
        return list(VECTOR_EXTENSIONS)

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N802, N803
        """GeoPackage."""
        return "gpkg"
