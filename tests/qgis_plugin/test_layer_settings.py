"""A layer's QGIS settings (no data, CRS) reach the engine: the RX and detection algorithms."""

from __future__ import annotations

import math

import numpy as np
import processing
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRasterRange,
)

import uniadrs_engine.raster.nodata as nodata_module
from qgis_plugin.layer_settings import layer_bands, layer_crs, layer_nodata
from tests.qgis_plugin.conftest import read_band
from tests.raster_factory import write_raster
from uniadrs_engine.baselines.rx import rx_raster
from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
from uniadrs_engine.raster.nodata import NodataRange
from uniadrs_engine.raster.writer import SCORE_NODATA


@pytest.fixture
def collared(tmp_path):
    """A 3-band scene whose first 5 columns are a fill of -1 that the file does not declare,
    the same scene declaring it, and a layer of the first one added to the project."""
    image = np.random.default_rng(12).random((3, 24, 28)).astype(np.float32)
    image[:, :, :5] = -1.0
    undeclared = write_raster(tmp_path / "undeclared.tif", image)
    declared = write_raster(tmp_path / "declared.tif", image, nodata=-1.0)
    layer = QgsRasterLayer(str(undeclared), "undeclared")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    yield undeclared, declared, layer
    QgsProject.instance().removeMapLayer(layer.id())


def _set_user_nodata(layer, ranges, use_source=True):
    for band in range(1, layer.bandCount() + 1):
        layer.dataProvider().setUserNoDataValue(band, ranges)
        layer.dataProvider().setUseSourceNoDataValue(band, use_source)


def test_layer_settings_become_the_engine_s_ranges(collared):
    _, _, layer = collared
    assert layer_nodata(layer, None, nodata_module) == ((), True)
    _set_user_nodata(
        layer,
        [
            QgsRasterRange(-1.0, -1.0),
            QgsRasterRange(float("nan"), -50.0, QgsRasterRange.IncludeMin),
            QgsRasterRange(10.0, float("nan"), QgsRasterRange.Exclusive),
        ],
        use_source=False,
    )
    ranges, use_file_nodata = layer_nodata(layer, [2], nodata_module)
    assert ranges == (
        NodataRange(-1.0, -1.0),
        NodataRange(-math.inf, -50.0, include_low=True, include_high=False),
        NodataRange(10.0, math.inf, include_low=False, include_high=False),
    )
    assert use_file_nodata is True  # the file has no nodata value to set aside
    assert layer_bands(layer, [3, 1]) == [3, 1]
    assert layer_bands(layer, None) == [1, 2, 3]


def test_the_file_s_nodata_is_set_aside_only_where_every_band_used_sets_it_aside(collared):
    _, declared, _ = collared
    layer = QgsRasterLayer(str(declared), "declared")
    assert layer_nodata(layer, None, nodata_module) == ((), True)
    _set_user_nodata(layer, [], use_source=False)
    assert layer_nodata(layer, None, nodata_module) == ((), False)
    layer.dataProvider().setUseSourceNoDataValue(3, True)  # one band used keeps it
    assert layer_nodata(layer, [2, 3], nodata_module)[1] is True
    assert layer_nodata(layer, [2], nodata_module)[1] is False


def test_rx_applies_a_project_layer_s_additional_no_data(provider, collared, tmp_path):
    _, declared, layer = collared
    _set_user_nodata(layer, [QgsRasterRange(-1.0, -1.0)])
    result = processing.run("uniadrs:rx", {"INPUT": layer, "OUTPUT": str(tmp_path / "rx.tif")})
    engine = rx_raster(declared, tmp_path / "engine.tif")
    scores = read_band(result["OUTPUT"])
    np.testing.assert_array_equal(scores, read_band(engine.output_path))
    assert (scores[:, :5] == SCORE_NODATA).all() and (scores[:, 5:] != SCORE_NODATA).all()


def test_a_layer_that_sets_the_file_s_nodata_aside_is_scored_everywhere(
    provider, collared, tmp_path
):
    undeclared, declared, _ = collared
    layer = QgsRasterLayer(str(declared), "declared")
    QgsProject.instance().addMapLayer(layer)
    try:
        _set_user_nodata(layer, [], use_source=False)
        feedback = QgsProcessingFeedback()
        messages = []
        feedback.pushInfo = messages.append  # type: ignore[method-assign]
        result = processing.run(
            "uniadrs:rx", {"INPUT": layer, "OUTPUT": str(tmp_path / "rx.tif")}, feedback=feedback
        )
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    engine = rx_raster(undeclared, tmp_path / "engine.tif")
    np.testing.assert_array_equal(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert "No data: the file's nodata ignored (from the layer's no data settings)" in messages


def test_the_nodata_parameter_adds_values_to_the_layer_s(provider, collared, tiny_model, tmp_path):
    undeclared, declared, _ = collared
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append  # type: ignore[method-assign]
    result = processing.run(
        "uniadrs:detectanomalies",
        {
            "INPUT": str(undeclared),
            "MODEL": str(tiny_model),
            "DEVICE": 2,
            "NODATA": "-1",
            "OUTPUT": str(tmp_path / "scores.tif"),
        },
        feedback=feedback,
    )
    engine = detect_raster(
        declared, tmp_path / "engine.tif", DetectionOptions(model=str(tiny_model), device="cpu")
    )
    scores = read_band(result["OUTPUT"])
    np.testing.assert_array_equal(scores, read_band(engine.output_path))
    assert (scores[:, :5] == SCORE_NODATA).all() and (scores[:, 5:] != SCORE_NODATA).all()
    assert "No data: -1 (from the additional no data values)" in messages


def test_a_bad_nodata_text_is_a_clear_error(provider, collared, tmp_path):
    undeclared, _, _ = collared
    with pytest.raises(QgsProcessingException, match="'zero' is not a number"):
        processing.run(
            "uniadrs:rx",
            {"INPUT": str(undeclared), "NODATA": "zero", "OUTPUT": str(tmp_path / "rx.tif")},
        )
    assert not (tmp_path / "rx.tif").exists()


def test_a_layer_crs_its_user_set_is_measured_in_and_carried_by_the_scores(provider, tmp_path):
    image = np.random.default_rng(13).random((2, 20, 22)).astype(np.float32)
    path = write_raster(tmp_path / "no_crs.tif", image, epsg=None)
    layer = QgsRasterLayer(str(path), "no_crs")
    assert layer_crs(layer) is None  # no CRS in the file, none set
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
        windows = {"MODE": 1, "WINDOW_UNITS": 1, "INNER_WINDOW": 30.0, "OUTER_WINDOW": 90.0}
        with pytest.raises(QgsProcessingException, match="geographic"):
            processing.run(
                "uniadrs:rx", {"INPUT": layer, **windows, "OUTPUT": str(tmp_path / "deg.tif")}
            )
        layer.setCrs(QgsCoordinateReferenceSystem("EPSG:32633"))
        feedback = QgsProcessingFeedback()
        messages = []
        feedback.pushInfo = messages.append  # type: ignore[method-assign]
        result = processing.run(
            "uniadrs:rx",
            {"INPUT": layer, **windows, "OUTPUT": str(tmp_path / "rx.tif")},
            feedback=feedback,
        )
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    scores = QgsRasterLayer(result["OUTPUT"], "scores")
    assert scores.crs().authid() == "EPSG:32633"
    engine = rx_raster(path, tmp_path / "engine.tif", mode="local", inner=3, outer=9)
    np.testing.assert_array_equal(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert any(message.startswith("CRS: the layer's, EPSG:32633") for message in messages)


def test_the_layer_s_values_and_the_parameter_s_are_both_applied(provider, collared, tmp_path):
    _, _, layer = collared
    _set_user_nodata(layer, [QgsRasterRange(-1.0, -1.0)])
    layer_path = layer.source()
    image = read_band(layer_path, 1)
    row = int(np.argmax(image[:, 10]))  # a pixel the parameter names, besides the layer's fill
    value = float(np.float32(image[row, 10]))
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append  # type: ignore[method-assign]
    result = processing.run(
        "uniadrs:rx",
        {"INPUT": layer, "NODATA": repr(value), "OUTPUT": str(tmp_path / "rx.tif")},
        feedback=feedback,
    )
    scores = read_band(result["OUTPUT"])
    assert (scores[:, :5] == SCORE_NODATA).all() and scores[row, 10] == SCORE_NODATA
    assert (scores[:, 5:] != SCORE_NODATA).sum() == 24 * 23 - 1
    sources = "the layer's no data settings and the additional no data values"
    assert f"No data: -1, {value!r} (from {sources})" in messages


def test_an_empty_layer_range_matches_nothing_as_in_qgis(collared):
    _, _, layer = collared
    _set_user_nodata(layer, [QgsRasterRange(10.0, 5.0), QgsRasterRange(-1.0, -1.0)])
    assert layer_nodata(layer, None, nodata_module) == ((NodataRange(-1.0, -1.0),), True)
