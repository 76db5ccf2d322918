from __future__ import annotations

import numpy as np
import processing
import pytest
from osgeo import ogr
from qgis.core import QgsProcessingException, QgsVectorLayer

from tests.qgis_plugin.conftest import assert_on_grid_of, read_band
from tests.raster_factory import write_raster
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster
from uniadrs_engine.raster.writer import SCORE_NODATA


@pytest.fixture
def scores(tmp_path):
    rng = np.random.default_rng(4)
    values = rng.random((30, 36)).astype(np.float32)
    values[8:11, 8:12] = 5.0
    values[20:22, 25:27] = 4.0
    values[0, :5] = SCORE_NODATA
    return write_raster(tmp_path / "scores.tif", values, nodata=SCORE_NODATA)


def test_threshold_matches_engine(provider, scores, tmp_path):
    result = processing.run(
        "uniadrs:threshold",
        {
            "INPUT": str(scores),
            "METHOD": 1,
            "TOP_PERCENT": 2.0,
            "MIN_AREA": 300.0,
            "OUTPUT_MASK": str(tmp_path / "mask.tif"),
            "OUTPUT_POLYGONS": str(tmp_path / "objects.gpkg"),
        },
    )
    engine = threshold_raster(
        scores,
        ThresholdRule("top_percent", 2.0),
        mask_path=tmp_path / "engine_mask.tif",
        polygons_path=tmp_path / "engine_objects.gpkg",
        min_object_area=300.0,
    )
    assert_on_grid_of(result["OUTPUT_MASK"], scores)
    np.testing.assert_array_equal(read_band(result["OUTPUT_MASK"]), read_band(engine.mask_path))
    assert result["THRESHOLD_USED"] == engine.threshold
    assert result["OBJECT_COUNT"] == engine.object_count == 2
    layer = QgsVectorLayer(result["OUTPUT_POLYGONS"], "objects", "ogr")
    assert layer.isValid() and layer.featureCount() == 2
    assert layer.crs().authid() == "EPSG:32633"
    assert sorted(feature["pixels"] for feature in layer.getFeatures()) == [4, 12]


def test_threshold_polygons_only(provider, scores, tmp_path):
    result = processing.run(
        "uniadrs:threshold",
        {
            "INPUT": str(scores),
            "METHOD": 0,
            "THRESHOLD": 4.5,
            "OUTPUT_MASK": None,
            "OUTPUT_POLYGONS": str(tmp_path / "objects.shp"),
        },
    )
    assert "OUTPUT_MASK" not in result or not result["OUTPUT_MASK"]
    dataset = ogr.Open(result["OUTPUT_POLYGONS"])
    assert dataset.GetLayer(0).GetFeatureCount() == 1


def test_threshold_bad_input(provider, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a raster")
    with pytest.raises(QgsProcessingException):
        processing.run(
            "uniadrs:threshold", {"INPUT": str(text), "OUTPUT_MASK": str(tmp_path / "m.tif")}
        )
