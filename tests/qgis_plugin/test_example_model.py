"""The shipped .model3 (Detect -> Threshold -> raster statistics) runs and styles its outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import processing
import pytest
from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProcessingException,
    QgsProcessingModelAlgorithm,
    QgsProcessingParameterDefinition,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)

from tests.qgis_plugin.conftest import assert_on_grid_of, read_band
from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
from uniadrs_engine.inference.presets import PRESETS
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster

MODEL_FILE = (
    Path(__file__).resolve().parents[2] / "resources" / "models" / ("detect_threshold_stats.model3")
)


def load_example_model() -> QgsProcessingModelAlgorithm:
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL_FILE))
    return model


def test_example_model_is_valid(provider):
    model = load_example_model()
    valid, problems = model.validate()
    assert valid, problems
    assert sorted(child.algorithmId() for child in model.childAlgorithms().values()) == [
        "native:rasterlayerstatistics",
        "uniadrs:detectanomalies",
        "uniadrs:threshold",
    ]
    # stale after a change of the preset table: regenerate with scripts/make_example_model.py
    assert model.parameterDefinition("preset").options() == list(PRESETS)


def test_example_model_runs_and_loads_styled_outputs(provider, scene, tiny_model, tmp_path):
    outputs = {
        "detect:anomaly_scores": str(tmp_path / "scores.tif"),
        "threshold:anomaly_mask": str(tmp_path / "mask.tif"),
        "threshold:anomaly_polygons": str(tmp_path / "objects.gpkg"),
        "statistics:mask_statistics": str(tmp_path / "stats.html"),
    }
    results = processing.runAndLoadResults(
        load_example_model(),
        {"input_raster": str(scene), "model_file": str(tiny_model), "top_percent": 2.0, **outputs},
    )
    for name, path in outputs.items():
        assert Path(path).exists(), name
    engine_scores = detect_raster(
        scene, tmp_path / "engine_scores.tif", DetectionOptions(model=str(tiny_model))
    )
    engine_mask = threshold_raster(
        engine_scores.output_path, ThresholdRule("top_percent", 2.0), mask_path=tmp_path / "em.tif"
    )
    np.testing.assert_array_equal(
        read_band(outputs["threshold:anomaly_mask"]), read_band(engine_mask.mask_path)
    )
    assert_on_grid_of(outputs["detect:anomaly_scores"], scene)
    assert "Mean" in Path(outputs["statistics:mask_statistics"]).read_text(encoding="utf-8")
    layers = {
        Path(layer.source().split("|")[0]).name: layer
        for layer in QgsProject.instance().mapLayers().values()
    }
    assert isinstance(layers["scores.tif"].renderer(), QgsSingleBandPseudoColorRenderer)
    assert isinstance(layers["mask.tif"].renderer(), QgsPalettedRasterRenderer)
    polygon_symbol = layers["objects.gpkg"].renderer().symbol()
    assert polygon_symbol.color().name() == "#ff0000" and polygon_symbol.color().alpha() == 60
    for layer in layers.values():
        QgsProject.instance().removeMapLayer(layer.id())
    assert results


def test_the_provider_offers_the_shipped_model_in_the_toolbox(
    provider, scene, tiny_model, tmp_path
):
    from qgis.core import QgsApplication

    model_id = f"uniadrs:{load_example_model().name()}"
    offered = QgsApplication.processingRegistry().algorithmById(model_id)
    assert offered is not None and offered.provider().id() == "uniadrs"
    mask = tmp_path / "mask.tif"
    processing.run(
        model_id,
        {
            "input_raster": str(scene),
            "model_file": str(tiny_model),
            "top_percent": 2.0,
            "detect:anomaly_scores": str(tmp_path / "scores.tif"),
            "threshold:anomaly_mask": str(mask),
            "threshold:anomaly_polygons": str(tmp_path / "objects.gpkg"),
            "statistics:mask_statistics": str(tmp_path / "stats.html"),
        },
    )
    assert_on_grid_of(mask, scene)


def test_example_model_asks_for_the_mask_up_front(provider, scene, tiny_model, tmp_path):
    """The statistics read the mask, so it cannot be skipped: asked for before anything runs
    (it used to fail after the whole detection), and a temporary file by default."""
    model = load_example_model()
    mask = model.parameterDefinition("threshold:anomaly_mask")
    assert not mask.flags() & QgsProcessingParameterDefinition.FlagOptional
    assert mask.defaultValue() == "TEMPORARY_OUTPUT"  # what the dialog offers
    statistics = tmp_path / "stats.html"
    parameters = {
        "input_raster": str(scene),
        "model_file": str(tiny_model),
        "top_percent": 2.0,
        "detect:anomaly_scores": str(tmp_path / "scores.tif"),
        "statistics:mask_statistics": str(statistics),
    }
    with pytest.raises(QgsProcessingException):
        processing.run(model, parameters)
    assert not (tmp_path / "scores.tif").exists()  # refused before the detection ran
    results = processing.run(model, {**parameters, "threshold:anomaly_mask": "TEMPORARY_OUTPUT"})
    assert "Mean" in statistics.read_text(encoding="utf-8")
    assert Path(results["threshold:anomaly_mask"]).is_file()
