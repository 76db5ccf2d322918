#!/usr/bin/env python3
"""Writes resources/models/detect_threshold_stats.model3, the example Processing model.

The model chains three steps:

1. ``uniadrs:detectanomalies``: input raster -> anomaly scores;
2. ``uniadrs:threshold``: top k percent of the scores -> anomaly mask and polygons;
3. ``native:rasterlayerstatistics``: statistics of the mask (its mean is the share of
   anomaly pixels, its sum their count) as an HTML report.

Inputs: ``input_raster``, ``model_file`` (optional), ``preset``, ``top_percent``,
``min_area``. Outputs: ``detect:anomaly_scores``, ``threshold:anomaly_mask``,
``threshold:anomaly_polygons``, ``statistics:mask_statistics``.

Run it headless with::

    qgis_process.bin run resources/models/detect_threshold_stats.model3 -- \\
        input_raster=scene.tif top_percent=1 detect:anomaly_scores=scores.tif ...

Regenerate the file (after changing an algorithm's parameters) with::

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_example_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Tuple

REPO = Path(__file__).resolve().parent.parent
MODEL_PATH = REPO / "resources" / "models" / "detect_threshold_stats.model3"
MODEL_NAME = "Detect, threshold and summarise anomalies"
MODEL_GROUP = "UniADRS"


def build_model():  # -> QgsProcessingModelAlgorithm (QGIS imported lazily)
    """Builds the model; QGIS and the UniADRS provider must be initialised."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.PyQt.QtCore import QPointF

    from uniadrs_engine.inference.presets import PRESETS

    model = QgsProcessingModelAlgorithm(MODEL_NAME, MODEL_GROUP)
    model.setHelpContent(
        {
            "ALG_DESC": (
                "Detects anomalies with UniADRS, keeps the top k percent of the scores as "
                "anomaly mask and polygons (objects smaller than the minimum area removed) and "
                "summarises the mask with Raster layer statistics (mean = share of anomaly "
                "pixels, sum = their count)."
            ),
            "ALG_CREATOR": "UniADRS for QGIS",
        }
    )
    inputs = (
        QgsProcessingParameterRasterLayer("input_raster", "Input raster"),
        QgsProcessingParameterFile(
            "model_file",
            "Model file (empty: the shipped default model)",
            extension="safetensors",
            optional=True,
        ),
        QgsProcessingParameterEnum(
            "preset", "Modality preset", options=list(PRESETS), defaultValue=0
        ),
        QgsProcessingParameterNumber(
            "top_percent",
            "Top k percent flagged as anomalies",
            QgsProcessingParameterNumber.Double,
            defaultValue=1.0,
            minValue=0.0,
            maxValue=100.0,
        ),
        QgsProcessingParameterNumber(
            "min_area",
            "Minimum object area (square map units)",
            QgsProcessingParameterNumber.Double,
            defaultValue=0.0,
            minValue=0.0,
        ),
    )
    for index, parameter in enumerate(inputs):
        component = QgsProcessingModelParameter(parameter.name())
        component.setPosition(QPointF(120.0, 60.0 + 70.0 * index))
        model.addModelParameter(parameter, component)

    def from_input(name: str) -> list:
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def from_child(child_id: str, output: str) -> list:
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)]

    def static(value: object) -> list:
        return [QgsProcessingModelChildParameterSource.fromStaticValue(value)]

    def child(
        child_id: str,
        algorithm_id: str,
        description: str,
        sources: Dict[str, list],
        outputs: Dict[str, str],
        row: int,
        mandatory: Tuple[str, ...] = (),
    ) -> None:
        step = QgsProcessingModelChildAlgorithm(algorithm_id)
        step.setChildId(child_id)
        step.setDescription(description)
        step.setPosition(QPointF(420.0, 80.0 + 160.0 * row))
        for name, value in sources.items():
            step.addParameterSources(name, value)
        model_outputs = {}
        for output_name, child_output in outputs.items():
            output = QgsProcessingModelOutput(output_name, output_name.replace("_", " "))
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            # an output a later step reads cannot be skipped (QGIS then writes it to a
            # temporary file when no path is given)
            if output_name in mandatory:
                output.setMandatory(True)
                output.setDefaultValue(QgsProcessing.TEMPORARY_OUTPUT)
            output.setPosition(QPointF(720.0, 80.0 + 160.0 * row + 40.0 * len(model_outputs)))
            model_outputs[output_name] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)

    child(
        "detect",
        "uniadrs:detectanomalies",
        "Detect anomalies (UniADRS)",
        {
            "INPUT": from_input("input_raster"),
            "MODEL": from_input("model_file"),
            "PRESET": from_input("preset"),
            "OBJECT_SIZE_UNITS": static(0),
            "TILE": static(0),
            "BATCH_SIZE": static(4),
            "DEVICE": static(0),
        },
        {"anomaly_scores": "OUTPUT"},
        0,
    )
    child(
        "threshold",
        "uniadrs:threshold",
        "Threshold anomaly scores",
        {
            "INPUT": from_child("detect", "OUTPUT"),
            "METHOD": static(1),
            "THRESHOLD": static(0.5),
            "TOP_PERCENT": from_input("top_percent"),
            "FALSE_ALARM_RATE": static(0.001),
            "MIN_AREA": from_input("min_area"),
            "MAX_AREA": static(0.0),
        },
        {"anomaly_mask": "OUTPUT_MASK", "anomaly_polygons": "OUTPUT_POLYGONS"},
        1,
        mandatory=("anomaly_mask",),  # the statistics read it
    )
    child(
        "statistics",
        "native:rasterlayerstatistics",
        "Statistics of the anomaly mask",
        {"INPUT": from_child("threshold", "OUTPUT_MASK"), "BAND": static(1)},
        {"mask_statistics": "OUTPUT_HTML_FILE"},
        2,
    )
    return model


def main() -> int:
    from processing.core.Processing import Processing
    from qgis.core import QgsApplication

    sys.path.insert(0, str(REPO))
    application = QgsApplication([], False)
    application.initQgis()
    Processing.initialize()
    from qgis_plugin.provider import UniadrsProvider

    provider = UniadrsProvider()  # keep a reference: the registry does not own it
    QgsApplication.processingRegistry().addProvider(provider)
    model = build_model()
    problems = model.validate()[1]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(MODEL_PATH)):
        print(f"cannot write {MODEL_PATH}", file=sys.stderr)
        return 1
    print(MODEL_PATH)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    sys.exit(main())
