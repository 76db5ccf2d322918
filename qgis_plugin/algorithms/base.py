"""Base class of the UniADRS Processing algorithms: metadata, dependency checks, helpers.

Each algorithm subclass declares its identity as class attributes (``ALGORITHM_ID``,
``DISPLAY_NAME``, ``GROUP``, ``HELP``, ``REQUIRED_MODULES``), defines its parameters in
``initAlgorithm`` with the helpers below (each parameter carries its help text), and does its
work in :meth:`UniadrsAlgorithm.execute`. The base class

* refuses to run, with the exact ``pip install`` command, when a module in
  ``REQUIRED_MODULES`` cannot be imported (``canExecute`` and ``processAlgorithm``);
* turns the engine's :class:`~uniadrs_engine.errors.UniadrsError` (and cancellation) into a
  ``QgsProcessingException`` with the same one-line message;
* resolves raster layers to file paths GDAL can open, and empty advanced parameters to the
  provider's settings.

Engine modules are imported inside ``execute`` only, so the provider loads without PyTorch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from qgis.core import (
    QgsMapLayer,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .. import settings
from ..dependencies import PIP_REQUIREMENTS, install_hint, missing_requirements_message
from ..feedback import CancelCheck, ProgressCallback, engine_callbacks, engine_log_to_feedback
from ..layer_settings import layer_crs, layer_nodata
from ..resources import icon_path

#: Group ids and names of the toolbox.
GROUP_DETECTION = ("detection", "Anomaly detection")
GROUP_POSTPROCESSING = ("postprocessing", "Post-processing and evaluation")
GROUP_TRAINING = ("training", "Training")

#: Device choices of the advanced Device parameter: (label, value for the engine).
DEVICE_CHOICES: Tuple[Tuple[str, str], ...] = (
    ("From the UniADRS settings (Options > Processing > Providers)", ""),
    ("Automatic (a CUDA GPU if PyTorch sees one, else the CPU)", "auto"),
    ("CPU", "cpu"),
    ("CUDA GPU", "cuda"),
)


def tr(text: str) -> str:
    """Translates ``text`` in the plugin's context."""
    return QCoreApplication.translate("UniADRS", text)


def make_advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """Marks ``parameter`` as advanced (collapsed in the dialog)."""
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def engine_module(name: str) -> Any:
    """Imports an engine module; a failing import becomes an install hint.

    Raises:
        QgsProcessingException: If the module (or one of its imports) cannot be imported.
    """
    try:
        return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - broken installs raise anything
        missing = getattr(error, "name", None) or ""
        top = missing.split(".")[0]
        requirement = PIP_REQUIREMENTS.get(top, top) if top else "uniadrs-engine"
        raise QgsProcessingException(
            f"Cannot load {name} ({type(error).__name__}: {error}). Install the missing "
            f"package into QGIS's Python with: {install_hint([requirement])} and restart QGIS."
        ) from None


def _is_gdal_name(text: str) -> bool:
    """Whether ``text`` is a GDAL name (``NETCDF:"f.nc":var``, ``/vsizip/...``), not a path."""
    try:
        reader = importlib.import_module("uniadrs_engine.raster.reader")
    except Exception:  # noqa: BLE001 - without the engine, no name is recognised
        return False
    return bool(reader.is_gdal_name(text))


def _container_message(text: str) -> Optional[str]:
    """The engine's message for a container of rasters (naming its subdatasets), or None."""
    try:
        reader = importlib.import_module("uniadrs_engine.raster.reader")
        errors = importlib.import_module("uniadrs_engine.errors")
    except Exception:  # noqa: BLE001 - without the engine, the generic message stands
        return None
    try:
        with reader.open_raster(text):
            return None
    except errors.ContainerError as error:
        return str(error)
    except Exception:  # noqa: BLE001 - any other reading error: the generic message
        return None


class UniadrsAlgorithm(QgsProcessingAlgorithm):
    """Common behaviour of the provider's algorithms (see the module docstring)."""

    ALGORITHM_ID = ""
    DISPLAY_NAME = ""
    GROUP: Tuple[str, str] = GROUP_DETECTION
    HELP = ""
    TAGS: Tuple[str, ...] = ()
    #: Import names the algorithm needs (see ``dependencies.py``).
    REQUIRED_MODULES: Tuple[str, ...] = ("uniadrs_engine",)

    MEMORY_MB = "MEMORY_MB"
    DEVICE = "DEVICE"
    NODATA = "NODATA"

    # ------------------------------------------------------------------ identity

    def name(self) -> str:
        """Algorithm id inside the provider."""
        return self.ALGORITHM_ID

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        """Name shown in the toolbox."""
        return tr(self.DISPLAY_NAME)

    def group(self) -> str:
        """Toolbox group shown."""
        return tr(self.GROUP[1])

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        """Toolbox group id."""
        return self.GROUP[0]

    def tags(self) -> list:
        """Search words of the toolbox."""
        return ["anomaly", "uniadrs", "remote sensing", *self.TAGS]

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        """Help shown beside the dialog and by ``qgis_process help``."""
        return tr(self.HELP)

    def icon(self) -> QIcon:
        """The plugin icon."""
        return QIcon(icon_path())

    def createInstance(self) -> UniadrsAlgorithm:  # noqa: N802 - QGIS API
        """A fresh copy (Processing runs each execution on its own instance)."""
        return type(self)()

    # ------------------------------------------------------------------ dependencies

    def canExecute(self) -> Tuple[bool, str]:  # noqa: N802 - QGIS API
        """False, with what to install, when a required module cannot be imported."""
        message = missing_requirements_message(self.REQUIRED_MODULES)
        return (message is None, message or "")

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Checks the dependencies, runs :meth:`execute`, turns engine errors into exceptions."""
        message = missing_requirements_message(self.REQUIRED_MODULES)
        if message is not None:
            raise QgsProcessingException(message)
        errors = engine_module("uniadrs_engine.errors")
        try:
            with engine_log_to_feedback(feedback):
                return self.execute(parameters, context, feedback)
        except errors.CancelledError as error:
            raise QgsProcessingException(self.cancelled_message(error)) from None
        except errors.UniadrsError as error:
            raise QgsProcessingException(str(error)) from None
        except OSError as error:  # a full disk, no permission: one line, as in the CLI
            message = errors.file_system_message(error)
            if message is None:
                raise
            raise QgsProcessingException(message) from None

    def cancelled_message(self, error: Exception) -> str:
        """What the log says when the user cancelled (the engine left no output behind)."""
        return tr("Cancelled: no output was written.")

    def checkParameterValues(  # noqa: N802 - QGIS API
        self, parameters: Dict[str, Any], context: QgsProcessingContext
    ) -> Tuple[bool, str]:
        """Says clearly which raster input cannot be opened, before QGIS's generic check.

        Single raster parameters and lists of rasters (the backgrounds of simulation and
        training) are both checked, each unreadable entry named.
        """
        for definition in self.parameterDefinitions():
            kind = definition.type()
            if kind not in ("raster", "multilayer"):
                continue
            value = parameters.get(definition.name())
            if value is None or value == "" or isinstance(value, QgsRasterLayer):
                continue
            if kind == "raster":
                layer = self.raster_layer(parameters, definition.name(), context)
                if layer is None or not layer.isValid():
                    return False, self.unreadable_raster_message(definition.description(), value)
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, QgsMapLayer) or item in (None, ""):
                    continue
                if isinstance(item, str) and _is_gdal_name(item):
                    return False, (
                        f"{definition.description()}: {item}: background rasters are files; "
                        "save a subdataset as a GeoTIFF first (gdal_translate)"
                    )
                layer = QgsProcessingUtils.mapLayerFromString(str(item), context)
                if layer is None or not layer.isValid() or not isinstance(layer, QgsRasterLayer):
                    # a NetCDF container opens as a mesh: the message names its subdatasets
                    return False, self.unreadable_raster_message(definition.description(), item)
        return super().checkParameterValues(parameters, context)

    def raster_layer(
        self, parameters: Dict[str, Any], name: str, context: QgsProcessingContext
    ) -> Optional[QgsRasterLayer]:
        """The raster layer of a parameter, GDAL names included.

        QGIS Processing does not turn GDAL names such as ``NETCDF:"scene.nc":radiance`` (a
        subdataset of a container) into layers; such a name is opened with the GDAL provider
        here, and the layer kept in the context's temporary layer store.
        """
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is not None and layer.isValid():
            return layer
        value = parameters.get(name)
        if isinstance(value, str) and _is_gdal_name(value):
            named = QgsRasterLayer(value, value.rsplit(":", 1)[-1] or value, "gdal")
            if named.isValid():
                context.temporaryLayerStore().addMapLayer(named)
                return named
        return layer

    @staticmethod
    def unreadable_raster_message(description: str, value: Any) -> str:
        """The message for a raster parameter whose value QGIS cannot open as a raster.

        A container of several rasters (NetCDF, HDF), which QGIS may open as a mesh, gets
        the engine's message naming its subdatasets.
        """
        text = str(value)
        named = _is_gdal_name(text)
        if not named and "|" not in text and "://" not in text and not Path(text).exists():
            return f"{description}: file not found: {text}"
        container = _container_message(text)
        if container:
            return f"{description}: {container}"
        return (
            f"{description}: {text} is not a raster layer QGIS can open "
            "(a vector layer, or a format GDAL does not read?)"
        )

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """The algorithm's work; subclasses implement it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parameter helpers

    def add_memory_parameter(self) -> None:
        """Adds the advanced, optional memory budget (empty: the provider setting)."""
        parameter = QgsProcessingParameterNumber(
            self.MEMORY_MB,
            tr("Memory budget in MB (empty: the UniADRS setting)"),
            QgsProcessingParameterNumber.Integer,
            optional=True,
            minValue=64,
        )
        parameter.setHelp(
            tr(
                "Working memory of one block or batch of tiles. Large rasters are processed "
                "block by block within this budget. Empty: the value set in Options > "
                "Processing > Providers > UniADRS (1024 MB unless changed)."
            )
        )
        self.addParameter(make_advanced(parameter))

    def add_device_parameter(self) -> None:
        """Adds the advanced device choice (default: the provider setting)."""
        parameter = QgsProcessingParameterEnum(
            self.DEVICE,
            tr("Device"),
            options=[tr(label) for label, _ in DEVICE_CHOICES],
            defaultValue=0,
        )
        parameter.setHelp(
            tr(
                "Where PyTorch runs the network. 'From the UniADRS settings' uses the default "
                "device set in Options > Processing > Providers > UniADRS."
            )
        )
        self.addParameter(make_advanced(parameter))

    def add_nodata_parameter(self) -> None:
        """Adds the advanced, optional additional no data values of the input raster."""
        parameter = QgsProcessingParameterString(
            self.NODATA,
            tr("Additional no data values (besides the layer's)"),
            optional=True,
        )
        parameter.setHelp(
            tr(
                "Values that hold no data in every band, besides the file's nodata value: "
                "numbers and LOW..HIGH ranges (an end left out is open), separated by "
                "commas, e.g. 0 for a black collar the file does not declare, or ..-1000. "
                "Values are compared after the file's scale and offset. A pixel where any "
                "band holds one is left out and scored as nodata. The input layer's own no "
                "data settings (Layer Properties > Transparency: its additional no data "
                "values, and whether the file's nodata value counts) are applied too."
            )
        )
        self.addParameter(make_advanced(parameter))

    def nodata_rule(
        self,
        parameters: Dict[str, Any],
        layer_parameter: str,
        bands: Optional[Sequence[int]],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Any:
        """The engine's no-data rule of the input layer and the NODATA parameter.

        Returns:
            A :class:`uniadrs_engine.raster.nodata.NodataRule`, or None when neither the
            layer nor the parameter changes what the file says.

        Raises:
            QgsProcessingException: If the parameter is not a list of numbers and ranges.
        """
        nodata = engine_module("uniadrs_engine.raster.nodata")
        errors = engine_module("uniadrs_engine.errors")
        text = self.parameterAsString(parameters, self.NODATA, context) or ""
        try:
            typed = nodata.parse_nodata_values(text)
        except errors.InputError as error:
            raise QgsProcessingException(str(error)) from None
        layer = self.raster_layer(parameters, layer_parameter, context)
        from_layer, use_file_nodata = (
            layer_nodata(layer, bands, nodata) if layer is not None else ((), True)
        )
        rule = nodata.nodata_rule_of(from_layer + typed, use_file_nodata=use_file_nodata)
        if rule is None:
            return None
        sources = [
            name
            for name, given in (
                ("the layer's no data settings", from_layer or not use_file_nodata),
                ("the additional no data values", typed),
            )
            if given
        ]
        feedback.pushInfo(f"No data: {rule.describe()} (from {' and '.join(sources)})")
        return rule

    def layer_crs(
        self,
        parameters: Dict[str, Any],
        layer_parameter: str,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Optional[str]:
        """The input layer's CRS (WKT) where its user set one other than its file's, else None.

        The engine then measures map units in it, and the outputs carry it, so that they lie
        where QGIS draws the input.
        """
        layer = self.raster_layer(parameters, layer_parameter, context)
        crs = layer_crs(layer) if layer is not None else None
        if crs is not None:
            assert layer is not None
            feedback.pushInfo(
                f"CRS: the layer's, {layer.crs().userFriendlyIdentifier()}, in place of its file's"
            )
        return crs

    def memory_mb(self, parameters: Dict[str, Any], context: QgsProcessingContext) -> int:
        """The memory budget: the parameter, or the provider setting when empty."""
        value = parameters.get(self.MEMORY_MB)
        if value is None or value == "":
            return settings.default_memory_mb()
        return int(self.parameterAsInt(parameters, self.MEMORY_MB, context))

    def device(self, parameters: Dict[str, Any], context: QgsProcessingContext) -> str:
        """The device: the parameter's choice, or the provider setting."""
        index = self.parameterAsEnum(parameters, self.DEVICE, context)
        value = DEVICE_CHOICES[index][1] if 0 <= index < len(DEVICE_CHOICES) else ""
        return value or settings.default_device()

    def raster_path(
        self,
        parameters: Dict[str, Any],
        name: str,
        context: QgsProcessingContext,
        optional: bool = False,
    ) -> Optional[str]:
        """The file (GDAL name) behind a raster layer parameter.

        Raises:
            QgsProcessingException: If the value is not a raster layer QGIS can open, or the
                layer is not served by GDAL (a WMS, a PostGIS raster...).
        """
        value = parameters.get(name)
        description = self.parameterDefinition(name).description()
        if value is None or value == "":
            if optional:
                return None
            raise QgsProcessingException(f"{description}: no raster layer given")
        layer = self.raster_layer(parameters, name, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(self.unreadable_raster_message(description, value))
        return self.gdal_source(layer, description)

    @staticmethod
    def gdal_source(layer: QgsRasterLayer, description: str) -> str:
        """The GDAL name of a raster layer; refuses layers that are not file-based rasters."""
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                f"{description}: layer '{layer.name()}' comes from the {layer.providerType()} "
                "provider, not from a raster file; save it as a GeoTIFF first "
                "(Raster > Conversion > Translate)"
            )
        return layer.source()

    def band_parameter(self, name: str, layer_parameter: str) -> QgsProcessingParameterBand:
        """The optional multi-band choice of the raster ``layer_parameter``, with its help."""
        bands = QgsProcessingParameterBand(
            name,
            tr("Bands (empty: all usable bands)"),
            parentLayerParameterName=layer_parameter,
            optional=True,
            allowMultiple=True,
        )
        bands.setHelp(
            tr(
                "Bands to use, numbered from 1. Empty: every band but those the raster's "
                "ENVI bad band list marks. Bands that hold no value anywhere (nodata or not "
                "finite everywhere) are left out either way, with a warning."
            )
        )
        return bands

    def band_list(
        self, parameters: Dict[str, Any], name: str, context: QgsProcessingContext
    ) -> Optional[Sequence[int]]:
        """The 1-based bands chosen, or None for all bands (also for an empty text).

        A text such as ``"2,5"`` or ``"1-3,7"`` (``qgis_process ... BANDS=2,5``) is read with
        the engine's band-list syntax: QGIS would read it as band 0.
        """
        value = parameters.get(name)
        if isinstance(value, str) and not value.strip():
            return None  # parameterAsInts("") is [0], band 0 (``qgis_process ... BANDS=``)
        if isinstance(value, str) and not value.strip().isdigit():
            return self.number_list(parameters, name, context, "band")  # "2,5", "2 5", "1-3"
        bands = [int(band) for band in self.parameterAsInts(parameters, name, context)]
        return bands or None

    def number_list(
        self, parameters: Dict[str, Any], name: str, context: QgsProcessingContext, what: str
    ) -> Optional[Sequence[int]]:
        """1-based numbers typed as ``"5,6"`` or ``"1-2"`` (the engine's band-list syntax).

        Returns None when the parameter is empty.

        Raises:
            QgsProcessingException: The text is not such a list (``what`` the numbers count,
                e.g. ``"network"``, names them in the message).
        """
        text = (self.parameterAsString(parameters, name, context) or "").strip()
        if not text:
            return None
        arguments = engine_module("uniadrs_engine.cli.arguments")
        errors = engine_module("uniadrs_engine.errors")
        try:
            return arguments.parse_band_list(text, what)
        except errors.InputError as error:
            raise QgsProcessingException(str(error)) from None

    @staticmethod
    def callbacks(feedback: QgsProcessingFeedback) -> Tuple[ProgressCallback, CancelCheck]:
        """``(progress, is_cancelled)`` callables for the engine."""
        return engine_callbacks(feedback)

    @staticmethod
    def require(condition: bool, message: str) -> None:
        """Raises a ``QgsProcessingException`` with ``message`` unless ``condition`` holds."""
        if not condition:
            raise QgsProcessingException(message)
