from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from tests.raster_factory import affine_rpc, set_ground_points, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.same_grid import check_same_grid


def _with_points(path, longitude: float = 8.0):
    gdal.GetDriverByName("GTiff").Create(str(path), 30, 20, 1, gdal.GDT_Float32)  # closed at once
    corners = [(0, 0, longitude, 50.0), (30, 0, longitude + 0.3, 50.0), (0, 20, longitude, 49.8)]
    return set_ground_points(path, corners)


def _with_coefficients(path, latitude: float = 45.0):
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 30, 20, 1, gdal.GDT_Float32)
    dataset.SetMetadata(affine_rpc(latitude=latitude), "RPC")
    dataset = None
    return path


def _check(first, second) -> None:
    with open_raster(first) as one, open_raster(second) as other:
        check_same_grid(one, other)


def test_rasters_georeferenced_alike_are_on_the_same_grid(tmp_path):
    _check(_with_points(tmp_path / "a.tif"), _with_points(tmp_path / "b.tif"))
    _check(_with_coefficients(tmp_path / "c.tif"), _with_coefficients(tmp_path / "d.tif"))
    plain = write_raster(tmp_path / "plain.tif", np.zeros((20, 30), np.float32), epsg=None)
    dataset = gdal.Open(str(plain), gdal.GA_Update)
    dataset.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # the placeholder: none
    dataset = None
    _check(_with_points(tmp_path / "e.tif"), plain)  # no georeference matches any


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (lambda path: _with_points(path, longitude=8.5), "their ground control points differ"),
        (
            lambda path: _with_coefficients(path),
            "one is georeferenced by ground control points, the other by rational polynomial",
        ),
        (
            lambda path: write_raster(path, np.zeros((20, 30), np.float32)),
            "one is georeferenced by ground control points, the other by a geotransform",
        ),
    ],
)
def test_rasters_georeferenced_otherwise_are_not(tmp_path, second, reason):
    with pytest.raises(InputError, match=f"not on the same grid: {reason}"):
        _check(_with_points(tmp_path / "a.tif"), second(tmp_path / "b.tif"))


def test_rasters_with_other_coefficients_are_not(tmp_path):
    with pytest.raises(InputError, match="their rational polynomial coefficients differ"):
        _check(_with_coefficients(tmp_path / "a.tif"), _with_coefficients(tmp_path / "b.tif", 46))


def test_a_background_mask_on_another_grid_is_refused_by_threshold(tmp_path):
    scores = write_raster(tmp_path / "scores.tif", np.random.default_rng(0).random((20, 30)))
    other = write_raster(
        tmp_path / "water.tif",
        np.ones((20, 30), np.uint8),
        geotransform=(8.0, 0.01, 0, 50, 0, -0.01),
        epsg=4326,
    )
    with pytest.raises(InputError, match="not on the same grid: their geotransforms differ"):
        threshold_raster(
            scores,
            ThresholdRule("false_alarm_rate", 0.01),
            mask_path=tmp_path / "mask.tif",
            background_mask_path=other,
        )
    assert not (tmp_path / "mask.tif").exists()
