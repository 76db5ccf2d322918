"""``uniadrs threshold``: the engine's mask and polygons from the command line; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, ogr

from tests.raster_factory import DEFAULT_GEOTRANSFORM
from uniadrs_engine.cli.main import main
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster


@pytest.fixture
def scores(make_raster):
    values = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    values[5:9, 5:10] += 2.0  # one object of 20 pixels
    values[20:22, 30:31] += 2.0  # one of 2 pixels
    return make_raster(values, "scores.tif")


def _mask(path) -> np.ndarray:
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()


def test_top_percent_writes_the_engine_s_mask_and_polygons(scores, tmp_path, capsys):
    mask, polygons = tmp_path / "mask.tif", tmp_path / "objects.gpkg"
    arguments = ["threshold", str(scores), "--top-percent", "1.8", "--quiet"]
    assert main([*arguments, "--mask", str(mask), "--polygons", str(polygons)]) == 0
    report = threshold_raster(
        scores, ThresholdRule("top_percent", 1.8), mask_path=tmp_path / "engine.tif"
    )
    np.testing.assert_array_equal(_mask(mask), _mask(tmp_path / "engine.tif"))
    assert report.anomaly_pixels == 22
    layer_source = ogr.Open(str(polygons))
    assert layer_source.GetLayer(0).GetFeatureCount() == 2
    out = capsys.readouterr().out
    assert "22 of 1200 valid pixels" in out and "in 2 object(s)" in out
    assert f"wrote {mask}" in out and f"wrote {polygons}" in out


def test_value_with_an_area_filter(scores, tmp_path, capsys):
    mask = tmp_path / "mask.tif"
    pixel_area = abs(DEFAULT_GEOTRANSFORM[1] * DEFAULT_GEOTRANSFORM[5])
    arguments = ["threshold", str(scores), "--value", "2", "--quiet"]
    arguments += ["--min-area", str(5 * pixel_area)]
    assert main([*arguments, "--mask", str(mask)]) == 0
    assert (_mask(mask) == 1).sum() == 20
    assert "1 removed by area" in capsys.readouterr().out


def test_false_alarm_rate_over_a_background_mask(scores, make_raster, tmp_path):
    background = np.ones((30, 40), dtype=np.uint8)
    background[5:9, 5:10] = background[20:22, 30:31] = 0  # the two objects
    background_path = make_raster(background, "background.tif")
    mask = tmp_path / "mask.tif"
    arguments = ["threshold", str(scores), "--false-alarm-rate", "0", "--quiet"]
    assert main([*arguments, "--background-mask", str(background_path), "--mask", str(mask)]) == 0
    flagged = _mask(mask) == 1
    assert flagged[5:9, 5:10].all() and flagged.sum() == 22  # above every background score


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--value", "1"], "give a mask raster path, a polygon file path, or both"),
        (["--top-percent", "1", "--background-mask", "b.tif", "--mask", "m.tif"], "applies to"),
        (["--top-percent", "120", "--mask", "m.tif"], "top percent must lie in [0, 100]"),
        (["--value", "1", "--mask", "m.png"], "must end in .tif or .tiff"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(scores, tmp_path, capsys, arguments, message):
    assert main(["threshold", str(scores), *arguments, "--quiet"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tif"]


def test_a_negative_value_may_follow_the_option_and_is_shown_as_given(
    make_raster, tmp_path, capsys
):
    """``--value -1e-3`` is a value, not an option; the cut is compared and shown exactly."""
    values = np.zeros((10, 10), dtype=np.float32)
    values[4, 4] = 0.5
    scores_path = make_raster(values, "scores.tif")
    arguments = ["threshold", str(scores_path), "--quiet"]
    assert main([*arguments, "--value", "-1e-3", "--mask", str(tmp_path / "all.tif")]) == 0
    assert "score >= -0.001: 100 of 100" in capsys.readouterr().out
    assert main([*arguments, "--value", "0.50000001", "--mask", str(tmp_path / "none.tif")]) == 0
    assert "score >= 0.50000001: 0 of 100" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--min-area", "--max-area"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_area_limits_are_finite_and_not_negative(scores, tmp_path, capsys, option, value):
    arguments = ["threshold", str(scores), "--value", "2", "--mask", str(tmp_path / "m.tif")]
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, f"{option}={value}", "--quiet"])
    assert stopped.value.code == 2
    assert option in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tif"]
