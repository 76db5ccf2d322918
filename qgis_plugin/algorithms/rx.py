"""Processing algorithm "RX anomaly detector": global or local (dual-window) Reed-Xiaoli.

A thin wrapper around :func:`uniadrs_engine.baselines.rx.rx_raster`; window sizes given in
map units are turned into odd pixel sizes by the engine's
:func:`~uniadrs_engine.baselines.rx.local_windows_from_map_units`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..dependencies import RX_MODULES
from ..styling import attach_styler, style_score_layer
from .base import GROUP_DETECTION, UniadrsAlgorithm, engine_module, tr

RX_MODES = (("global", "Global (whole-image background)"), ("local", "Local (dual window)"))
WINDOW_UNITS = (("pixels", "Pixels"), ("map_units", "Map units of the raster's CRS"))


class RxAlgorithm(UniadrsAlgorithm):
    """The classic RX detector, as a baseline and for hyperspectral scenes."""

    ALGORITHM_ID = "rx"
    DISPLAY_NAME = "RX anomaly detector"
    GROUP = GROUP_DETECTION
    TAGS = ("rx", "reed-xiaoli", "mahalanobis", "hyperspectral", "baseline")
    REQUIRED_MODULES = RX_MODULES
    HELP = "\n".join(
        (
            "Reed-Xiaoli (RX) anomaly detector: each pixel is scored by its Mahalanobis distance "
            "to a background mean under the background covariance.",
            "Global: one background for the whole image (optionally only the pixels of a "
            "background mask).",
            "Local: a dual window per pixel: the background is the ring between an outer window "
            "and an inner guard window (both odd sizes, in pixels or in map units; map units are "
            "rounded to the nearest odd number of pixels).",
            "Output: a float32 score raster on the input's grid and CRS (nodata -9999). Does not "
            "need PyTorch. Large rasters are processed in blocks within the memory budget.",
        )
    )

    INPUT = "INPUT"
    BANDS = "BANDS"
    MODE = "MODE"
    WINDOW_UNITS = "WINDOW_UNITS"
    INNER = "INNER_WINDOW"
    OUTER = "OUTER_WINDOW"
    BACKGROUND_MASK = "BACKGROUND_MASK"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Input raster")))
        self.addParameter(self.band_parameter(self.BANDS, self.INPUT))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODE, tr("Mode"), options=[tr(label) for _, label in RX_MODES], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.WINDOW_UNITS,
                tr("Local windows given in"),
                options=[tr(label) for _, label in WINDOW_UNITS],
                defaultValue=0,
            )
        )
        inner = QgsProcessingParameterNumber(
            self.INNER,
            tr("Inner (guard) window size, local mode"),
            QgsProcessingParameterNumber.Double,
            defaultValue=7,
            minValue=0.0,
        )
        inner.setHelp(
            tr(
                "Odd number of pixels, or a length in map units. Should exceed the "
                "anomalies sought so that they do not enter their own background."
            )
        )
        self.addParameter(inner)
        outer = QgsProcessingParameterNumber(
            self.OUTER,
            tr("Outer window size, local mode"),
            QgsProcessingParameterNumber.Double,
            defaultValue=21,
            minValue=0.0,
        )
        outer.setHelp(tr("Odd number of pixels, or a length in map units; larger than the inner."))
        self.addParameter(outer)
        background = QgsProcessingParameterRasterLayer(
            self.BACKGROUND_MASK, tr("Background mask (non-zero = background)"), optional=True
        )
        background.setHelp(
            tr(
                "Optional raster on the input's grid: only its non-zero pixels enter the "
                "background statistics. Every valid pixel is scored."
            )
        )
        self.addParameter(background)
        self.add_nodata_parameter()
        self.add_memory_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("RX scores")))
        self.addOutput(QgsProcessingOutputNumber("BACKGROUND_PIXELS", tr("Background pixels")))

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Runs RX with the engine and returns the outputs."""
        rx = engine_module("uniadrs_engine.baselines.rx")
        input_path = self.raster_path(parameters, self.INPUT, context)
        background_path = self.raster_path(parameters, self.BACKGROUND_MASK, context, optional=True)
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        mode = RX_MODES[self.parameterAsEnum(parameters, self.MODE, context)][0]
        crs = self.layer_crs(parameters, self.INPUT, context, feedback)
        inner = outer = None
        if mode == "local":
            inner_size = self.parameterAsDouble(parameters, self.INNER, context)
            outer_size = self.parameterAsDouble(parameters, self.OUTER, context)
            units = WINDOW_UNITS[self.parameterAsEnum(parameters, self.WINDOW_UNITS, context)][0]
            if units == "map_units":
                reader = engine_module("uniadrs_engine.raster.reader")
                with reader.open_raster(input_path, bands=[1], crs=crs) as source:
                    geotransform, crs_wkt = source.geotransform, source.projection
                inner, outer = rx.local_windows_from_map_units(
                    inner_size, outer_size, geotransform, crs_wkt
                )
                feedback.pushInfo(
                    f"Windows of {inner_size:g} and {outer_size:g} map units: "
                    f"{inner} and {outer} pixels"
                )
            else:
                inner, outer = int(round(inner_size)), int(round(outer_size))
        bands = self.band_list(parameters, self.BANDS, context)
        nodata = self.nodata_rule(parameters, self.INPUT, bands, context, feedback)
        progress, is_cancelled = self.callbacks(feedback)
        report = rx.rx_raster(
            input_path,
            output_path,
            mode=mode,
            inner=inner,
            outer=outer,
            bands=bands,
            nodata=nodata,
            crs=crs,
            background_mask_path=background_path,
            memory_mb=self.memory_mb(parameters, context),
            progress=progress,
            is_cancelled=is_cancelled,
        )
        feedback.pushInfo(report.summary_line())
        left_out = report.describe_bands_left_out()
        if left_out:
            feedback.pushWarning(f"RX: {left_out}")
        attach_styler(context, output_path, style_score_layer)
        return {self.OUTPUT: output_path, "BACKGROUND_PIXELS": report.background_pixels}
