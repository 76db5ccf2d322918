"""Processing algorithm "Threshold anomaly scores": score raster -> mask raster and polygons.

A thin wrapper around :func:`uniadrs_engine.postprocess.threshold.threshold_raster`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..dependencies import THRESHOLD_MODULES
from ..styling import attach_styler, style_mask_layer, style_polygon_layer
from .base import GROUP_POSTPROCESSING, UniadrsAlgorithm, engine_module, make_advanced, tr

#: (engine method, label) in the order of the Method parameter.
METHODS = (
    ("value", "Score threshold (score >= value)"),
    ("top_percent", "Top k percent of the valid pixels"),
    ("false_alarm_rate", "False-alarm rate (fraction of the background flagged)"),
)


class ThresholdAlgorithm(UniadrsAlgorithm):
    """Turns an anomaly-score raster into a binary mask and anomaly polygons."""

    ALGORITHM_ID = "threshold"
    DISPLAY_NAME = "Threshold anomaly scores"
    GROUP = GROUP_POSTPROCESSING
    TAGS = ("threshold", "mask", "polygonize", "objects", "false alarm", "percentile")
    REQUIRED_MODULES = THRESHOLD_MODULES
    HELP = "\n".join(
        (
            "Turns an anomaly-score raster (from Detect anomalies or RX) into a binary mask "
            "raster and anomaly polygons.",
            "Method:",
            "- Score threshold: pixels with score >= the value.",
            "- Top k percent: the k percent of valid pixels with the highest scores (at least k "
            "percent: pixels tied at the cut are all kept).",
            "- False-alarm rate: the cut that flags at most this fraction of the background (e.g. "
            "0.001 = one pixel in a thousand). The background is every valid pixel, or the non-"
            "zero pixels of the optional background mask (e.g. the pixels known to be normal). "
            "Pixels with score > the cut are flagged.",
            "Quantiles are exact and computed without loading the raster into memory.",
            "Objects are 8-connected groups of flagged pixels. Each polygon carries its area "
            "(square map units; square metres when the raster's CRS is geographic, pixels when "
            "it has no georeferencing), pixel count and min/mean/max score. Objects smaller "
            "than the minimum area or larger than the maximum area (0: no maximum) are removed "
            "from both outputs. The polygons of a raster georeferenced by ground control points "
            "only (such as Sentinel-1 GRD) are carried through those points into their CRS.",
            "Mask: uint8 on the score raster's grid: 1 anomaly, 0 background, 255 nodata.",
        )
    )

    INPUT = "INPUT"
    METHOD = "METHOD"
    THRESHOLD = "THRESHOLD"
    TOP_PERCENT = "TOP_PERCENT"
    FALSE_ALARM_RATE = "FALSE_ALARM_RATE"
    BACKGROUND_MASK = "BACKGROUND_MASK"
    MIN_AREA = "MIN_AREA"
    MAX_AREA = "MAX_AREA"
    OUTPUT_MASK = "OUTPUT_MASK"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Anomaly scores")))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD,
                tr("Method"),
                options=[tr(label) for _, label in METHODS],
                defaultValue=1,
            )
        )
        for name, label, default, minimum, maximum in (
            (self.THRESHOLD, "Score threshold (method: score threshold)", 0.5, None, None),
            (self.TOP_PERCENT, "Top k percent (method: top k percent)", 1.0, 0.0, 100.0),
            (
                self.FALSE_ALARM_RATE,
                "False-alarm rate, 0-1 (method: false-alarm rate)",
                0.001,
                0.0,
                1.0,
            ),
        ):
            parameter = QgsProcessingParameterNumber(
                name, tr(label), QgsProcessingParameterNumber.Double, defaultValue=default
            )
            if minimum is not None:
                parameter.setMinimum(minimum)
                parameter.setMaximum(maximum)
            self.addParameter(parameter)
        background = QgsProcessingParameterRasterLayer(
            self.BACKGROUND_MASK,
            tr("Background mask for the false-alarm rate (non-zero = background)"),
            optional=True,
        )
        self.addParameter(make_advanced(background))
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MIN_AREA,
                tr("Minimum object area (square map units; m² on a geographic CRS)"),
                QgsProcessingParameterNumber.Double,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_AREA,
                tr("Maximum object area (same units, 0: no maximum)"),
                QgsProcessingParameterNumber.Double,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        self.add_memory_parameter()
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_MASK, tr("Anomaly mask"), optional=True, createByDefault=True
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT_POLYGONS,
                tr("Anomaly polygons"),
                type=QgsProcessing.TypeVectorPolygon,
                optional=True,
                createByDefault=True,
            )
        )
        for name, description in (
            ("THRESHOLD_USED", "Score cut used"),
            ("ANOMALY_PIXELS", "Anomaly pixels"),
            ("OBJECT_COUNT", "Anomaly objects"),
            ("VALID_PIXELS", "Valid score pixels"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(description)))

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Thresholds the scores with the engine and returns the outputs."""
        threshold = engine_module("uniadrs_engine.postprocess.threshold")
        score_path = self.raster_path(parameters, self.INPUT, context)
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        value_parameter = {
            "value": self.THRESHOLD,
            "top_percent": self.TOP_PERCENT,
            "false_alarm_rate": self.FALSE_ALARM_RATE,
        }[method]
        rule = threshold.ThresholdRule(
            method, self.parameterAsDouble(parameters, value_parameter, context)
        )
        background_path = self.raster_path(parameters, self.BACKGROUND_MASK, context, optional=True)
        if method != "false_alarm_rate":
            background_path = None
        mask_path = self._output_path(parameters, self.OUTPUT_MASK, context)
        polygons_path = self._output_path(parameters, self.OUTPUT_POLYGONS, context)
        if mask_path is None and polygons_path is None:
            raise QgsProcessingException(
                "Choose at least one output: OUTPUT_MASK and/or OUTPUT_POLYGONS "
                "(a file path, or TEMPORARY_OUTPUT)"
            )
        maximum_area = self.parameterAsDouble(parameters, self.MAX_AREA, context)
        progress, is_cancelled = self.callbacks(feedback)
        report = threshold.threshold_raster(
            score_path,
            rule,
            mask_path=mask_path,
            polygons_path=polygons_path,
            min_object_area=self.parameterAsDouble(parameters, self.MIN_AREA, context),
            max_object_area=maximum_area if maximum_area > 0 else None,
            background_mask_path=background_path,
            memory_mb=self.memory_mb(parameters, context),
            progress=progress,
            is_cancelled=is_cancelled,
        )
        comparison = ">=" if report.inclusive else ">"
        feedback.pushInfo(
            f"Score cut: score {comparison} {report.threshold:.6g} ({method} {rule.value:g}); "
            f"{report.anomaly_pixels} of {report.valid_pixels} valid pixels flagged"
        )
        if polygons_path is not None:
            feedback.pushInfo(
                f"{report.object_count} object(s) kept, {report.objects_removed} removed by "
                "the area limits"
            )
        results: Dict[str, Any] = {
            "THRESHOLD_USED": report.threshold,
            "ANOMALY_PIXELS": report.anomaly_pixels,
            "OBJECT_COUNT": report.object_count,
            "VALID_PIXELS": report.valid_pixels,
        }
        if mask_path is not None:
            attach_styler(context, mask_path, style_mask_layer)
            results[self.OUTPUT_MASK] = mask_path
        if polygons_path is not None:
            attach_styler(context, polygons_path, style_polygon_layer)
            results[self.OUTPUT_POLYGONS] = polygons_path
        return results

    def _output_path(
        self, parameters: Dict[str, Any], name: str, context: QgsProcessingContext
    ) -> Optional[str]:
        """The file path of an optional output, or None when it is skipped."""
        value = parameters.get(name)
        if value is None or value == "":
            return None
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            return None
        if "://" in path or path.startswith(("ogr:", "postgis:", "memory:")):
            raise QgsProcessingException(
                f"{self.parameterDefinition(name).description()}: write it to a file "
                f"(e.g. .gpkg or .tif), not to {path.split(':', 1)[0]}"
            )
        return path
