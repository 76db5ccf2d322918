from __future__ import annotations

import pytest
from osgeo import gdal, ogr, osr

from uniadrs_engine.raster.reader import NO_GEOTRANSFORM
from uniadrs_engine.raster.vector_frame import (
    UNREFERENCED_FRAME,
    VectorFrame,
    vector_geotransform,
)

SQUARE = "POLYGON ((2 3,5 3,5 6,2 6,2 3))"


def _wkt(epsg: int) -> str:
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    return reference.ExportToWkt()


def test_frames_of_each_kind_of_georeferencing():
    projected = (500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0)
    assert vector_geotransform(projected) == projected
    assert vector_geotransform(NO_GEOTRANSFORM) == UNREFERENCED_FRAME
    assert vector_geotransform(NO_GEOTRANSFORM, has_gcps=True) == NO_GEOTRANSFORM


def test_a_raster_without_georeferencing_measures_in_pixels():
    frame = VectorFrame(10, 8, NO_GEOTRANSFORM, "")
    square = ogr.CreateGeometryFromWkt(SQUARE)
    assert frame.srs is None and not frame.warps and frame.area_unit == "pixels"
    assert frame.to_map(square).ExportToWkt() == square.ExportToWkt()
    assert frame.area(square) == 9.0


def test_a_projected_raster_measures_in_its_units():
    frame = VectorFrame(10, 8, (0.0, 10.0, 0.0, 0.0, 0.0, -10.0), _wkt(32633))
    assert frame.area_unit == "squared map units" and frame.srs.GetAuthorityCode(None) == "32633"
    assert frame.area(ogr.CreateGeometryFromWkt(SQUARE)) == 9.0


def _quadratic_gcps() -> list:
    """Ground points of a gently curved mapping (GDAL fits it with a 2nd-order polynomial)."""
    points = []
    for pixel in range(0, 101, 25):
        for line in range(0, 81, 20):
            x = 10.0 + 0.001 * pixel + 1e-7 * pixel * line
            y = 50.0 - 0.001 * line + 2e-7 * pixel**2
            points.append(gdal.GCP(x, y, 0.0, float(pixel), float(line)))
    return points


def test_ground_points_carry_geometries_to_the_map_and_back():
    frame = VectorFrame(100, 80, NO_GEOTRANSFORM, "", _quadratic_gcps(), _wkt(4326))
    assert frame.warps and frame.warning is None and frame.area_unit == "square metres"
    assert frame.srs.GetAuthorityCode(None) == "4326"
    square = ogr.CreateGeometryFromWkt(SQUARE)
    mapped = frame.to_map(square)
    x, y = mapped.GetGeometryRef(0).GetPoint_2D(0)
    assert (x, y) == pytest.approx((10.0 + 0.002 + 6e-7, 50.0 - 0.003 + 8e-7), abs=1e-9)
    back = frame.to_frame(mapped)  # kept: a ring must not outlive its polygon
    expected = square.GetGeometryRef(0).GetPoints()
    # GDAL fits the way back separately: a hundredth of a pixel from the start here
    assert back.GetGeometryRef(0).GetPoints() == [pytest.approx(p, abs=0.01) for p in expected]
    assert square.GetGeometryRef(0).GetPoint_2D(0) == (2.0, 3.0)  # the input is left alone
    assert 0 < frame.area(mapped) < 1e6  # square metres of 9 pixels of ~70 m x 111 m


def test_a_geotransform_wins_over_ground_points():
    geotransform = (0.0, 10.0, 0.0, 0.0, 0.0, -10.0)
    frame = VectorFrame(100, 80, geotransform, _wkt(32633), _quadratic_gcps(), _wkt(4326))
    assert not frame.warps and frame.geotransform == geotransform
    assert frame.srs.GetAuthorityCode(None) == "32633"
