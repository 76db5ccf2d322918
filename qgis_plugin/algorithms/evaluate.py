"""Processing algorithm "Evaluate anomaly map": AUC and the 3D-ROC family against ground truth.

A thin wrapper around :func:`uniadrs_engine.metrics.evaluation.evaluate_rasters`; a polygon
ground truth is first burnt onto the score raster's grid by
:func:`uniadrs_engine.postprocess.rasterize.rasterize_polygons_like`. The figures are
numeric outputs (for the next step of a model) and an HTML report with the ROC curve.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ..dependencies import EVALUATION_MODULES, REPORT_MODULES, missing_requirements_message
from .base import GROUP_POSTPROCESSING, UniadrsAlgorithm, engine_module, tr

#: Numeric outputs: (output name, attribute path in the EvaluationResult, description).
METRIC_OUTPUTS: Tuple[Tuple[str, str, str], ...] = (
    ("AUC", "auc", "Pixel AUC-ROC"),
    ("AUC_DF", "roc3d.auc_df", "AUC(D,F)"),
    ("AUC_DT", "roc3d.auc_dt", "AUC(D,tau)"),
    ("AUC_FT", "roc3d.auc_ft", "AUC(F,tau)"),
    ("TD", "roc3d.td", "AUC_TD = AUC(D,F) + AUC(D,tau)"),
    ("BS", "roc3d.bs", "AUC_BS = AUC(D,F) - AUC(F,tau)"),
    ("ODP", "roc3d.odp", "AUC_ODP = AUC(D,tau) + 1 - AUC(F,tau)"),
    ("TDBS", "roc3d.tdbs", "AUC_TDBS = AUC(D,tau) - AUC(F,tau)"),
    ("SNPR", "roc3d.snpr", "AUC_SNPR = AUC(D,tau) / AUC(F,tau)"),
    ("N_PIXELS", "n_pixels", "Pixels evaluated"),
    ("N_ANOMALIES", "n_anomalies", "Anomaly pixels"),
)


def _attribute(result: Any, path: str) -> Any:
    value = result
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _number(value: Any) -> Any:
    """Numbers for the outputs; non-finite floats become None (JSON has no inf/nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shown(value: Any) -> str:
    """A figure as the log and the report show it: counts whole, other numbers to 6 digits."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return f"{value:.6g}"


def report_html(rows: List[Tuple[str, str]], png_path: Optional[Path], title: str) -> str:
    """A self-contained HTML page: a table of figures and the ROC figure inlined."""
    table = "\n".join(
        f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
        f"<td>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    image = ""
    if png_path is not None and png_path.is_file():
        encoded = base64.b64encode(png_path.read_bytes()).decode("ascii")
        image = f"<p><img alt='ROC curve' src='data:image/png;base64,{encoded}'/></p>"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h2>{html.escape(title)}</h2><table>{table}</table>{image}</body></html>\n"
    )


class EvaluateAlgorithm(UniadrsAlgorithm):
    """Scores an anomaly map against a ground-truth mask or polygons."""

    ALGORITHM_ID = "evaluate"
    DISPLAY_NAME = "Evaluate anomaly map"
    GROUP = GROUP_POSTPROCESSING
    TAGS = ("auc", "roc", "3d-roc", "accuracy", "ground truth", "validation")
    REQUIRED_MODULES = EVALUATION_MODULES
    HELP = "\n".join(
        (
            "Compares an anomaly-score raster with a ground truth, given either as a mask raster "
            "on the same grid (non-zero = anomaly; its nodata pixels are left out) or as a layer "
            "of anomaly polygons (burnt onto the score raster's grid: a pixel is an anomaly when "
            "its centre lies in a polygon).",
            "Outputs: the exact pixel AUC-ROC (anomalies positive) and the 3D-ROC family "
            "(AUC(D,F), AUC(D,tau), AUC(F,tau), TD, BS, ODP, TDBS, SNPR; tau runs over the min-"
            "max normalised scores) as numeric outputs that a model's next step can use, and an "
            "HTML report with the ROC curve. Pixels whose score is nodata are left out.",
        )
    )

    INPUT = "INPUT"
    GROUND_TRUTH_MASK = "GROUND_TRUTH_MASK"
    GROUND_TRUTH_POLYGONS = "GROUND_TRUTH_POLYGONS"
    OUTPUT_HTML = "OUTPUT_HTML"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Anomaly scores")))
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.GROUND_TRUTH_MASK,
                tr("Ground truth mask raster (non-zero = anomaly)"),
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                self.GROUND_TRUTH_POLYGONS,
                tr("Ground truth polygons (instead of a mask raster)"),
                types=[QgsProcessing.TypeVectorPolygon],
                optional=True,
            )
        )
        self.add_memory_parameter()
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_HTML,
                tr("Evaluation report"),
                tr("HTML files (*.html)"),
                optional=True,
            )
        )
        for name, _, description in METRIC_OUTPUTS:
            self.addOutput(QgsProcessingOutputNumber(name, tr(description)))

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Evaluates with the engine and writes the report."""
        evaluation = engine_module("uniadrs_engine.metrics.evaluation")
        progress_module = engine_module("uniadrs_engine.progress")
        score_path = self.raster_path(parameters, self.INPUT, context)
        mask_path = self.raster_path(parameters, self.GROUND_TRUTH_MASK, context, optional=True)
        has_polygons = parameters.get(self.GROUND_TRUTH_POLYGONS) not in (None, "")
        if (mask_path is None) == (not has_polygons):
            raise QgsProcessingException(
                "Give the ground truth either as a mask raster or as polygons (exactly one)"
            )
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        writer = engine_module("uniadrs_engine.raster.writer")
        if html_path:  # before the evaluation runs, not after
            message = missing_requirements_message(REPORT_MODULES)
            if message is not None:
                raise QgsProcessingException(f"The HTML report: {message}")
            writer.check_output_folder(html_path)
        progress, is_cancelled = self.callbacks(feedback)
        reporter = progress_module.ProgressReporter(progress, is_cancelled)
        with tempfile.TemporaryDirectory(prefix="uniadrs-evaluate-") as work_folder:
            if mask_path is None:
                mask_path = self._rasterized_polygons(
                    parameters, context, feedback, score_path, Path(work_folder)
                )
            try:
                result = evaluation.evaluate_rasters(
                    score_path,
                    mask_path,
                    memory_mb=self.memory_mb(parameters, context),
                    progress=reporter,
                )
            except engine_module("uniadrs_engine.errors").InputError as error:
                if not has_polygons:
                    raise
                # the mask burnt from the polygons is a temporary file: name the layer
                truth = self._truth_name(parameters, context, mask_path)
                raise QgsProcessingException(
                    str(error).replace(f"mask {mask_path}", f"the ground truth ({truth})")
                ) from None
            outputs = {name: _number(_attribute(result, path)) for name, path, _ in METRIC_OUTPUTS}
            rows = [
                (description, _shown(_attribute(result, path)))
                for _, path, description in METRIC_OUTPUTS
            ]
            for description, value in rows:
                feedback.pushInfo(f"{description}: {value}")
            if html_path:
                png_path = Path(work_folder) / "roc.png"
                evaluation.save_roc_png(result, png_path, title=Path(score_path).name)
                rows = [
                    ("Score raster", score_path),
                    ("Ground truth", self._truth_name(parameters, context, mask_path)),
                    *rows,
                ]
                writer.write_text_file(
                    Path(html_path), report_html(rows, png_path, "UniADRS anomaly map evaluation")
                )
                outputs[self.OUTPUT_HTML] = html_path
        return outputs

    def _rasterized_polygons(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        score_path: str,
        work_folder: Path,
    ) -> str:
        """Burns the ground-truth polygons onto the score raster's grid; returns the mask."""
        rasterize = engine_module("uniadrs_engine.postprocess.rasterize")
        vector_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters,
            self.GROUND_TRUTH_POLYGONS,
            context,
            ["gpkg", "shp", "geojson"],
            "gpkg",
            feedback,
        )
        if not vector_path:
            raise QgsProcessingException("Ground truth polygons: the layer cannot be read")
        feedback.pushInfo("Burning the ground-truth polygons onto the score raster's grid")
        return str(
            rasterize.rasterize_polygons_like(
                vector_path,
                score_path,
                work_folder / "ground_truth.tif",
                layer_name=layer_name or None,
            )
        )

    def _truth_name(
        self, parameters: Dict[str, Any], context: QgsProcessingContext, mask_path: str
    ) -> str:
        if parameters.get(self.GROUND_TRUTH_POLYGONS) not in (None, ""):
            layer = self.parameterAsVectorLayer(parameters, self.GROUND_TRUTH_POLYGONS, context)
            return f"polygons {layer.source() if layer else ''}".strip()
        return mask_path
