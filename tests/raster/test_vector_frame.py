from __future__ import annotations

import math

import pytest
from osgeo import gdal, ogr, osr

from uniadrs_engine.raster.reader import NO_GEOTRANSFORM
from uniadrs_engine.raster.vector_frame import UNREFERENCED_FRAME, VectorFrame

SQUARE = "POLYGON ((2 3,5 3,5 6,2 6,2 3))"


def _wkt(epsg: int) -> str:
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    return reference.ExportToWkt()


def test_frames_of_each_kind_of_georeferencing():
    projected = (500_000.0, 10.0, 0.0, 4_000_000.0, 0.0, -10.0)
    assert VectorFrame(9, 9, projected, _wkt(32633)).geotransform == projected
    assert VectorFrame(9, 9, NO_GEOTRANSFORM, "").geotransform == UNREFERENCED_FRAME
    with_points = VectorFrame(100, 80, NO_GEOTRANSFORM, "", _quadratic_gcps(), _wkt(4326))
    assert with_points.geotransform == NO_GEOTRANSFORM and with_points.warps


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
    back = frame.to_pixels(mapped)  # kept: a ring must not outlive its polygon
    expected = square.GetGeometryRef(0).GetPoints()
    # GDAL fits the way back separately: a hundredth of a pixel from the start here
    assert back.GetGeometryRef(0).GetPoints() == [pytest.approx(p, abs=0.01) for p in expected]
    assert square.GetGeometryRef(0).GetPoint_2D(0) == (2.0, 3.0)  # the input is left alone
    assert 0 < frame.area(mapped) < 1e6  # square metres of 9 pixels of ~70 m x 111 m


def _bent_gcps() -> list:
    """A 10 x 10 grid of ground points of a mapping that bends along the columns."""
    points = []
    for pixel in range(0, 401, 400 // 9):
        for line in range(0, 301, 300 // 9):
            x = 12.0 + pixel * 9e-5
            y = 55.0 - line * 9e-5 + pixel * 1.5e-5 + (pixel / 400) ** 2 * 0.003
            points.append(gdal.GCP(x, y, 0.0, float(pixel), float(line)))
    return points


def test_long_edges_follow_a_bent_transform():
    frame = VectorFrame(400, 300, NO_GEOTRANSFORM, "", _bent_gcps(), _wkt(4326))
    block = ogr.CreateGeometryFromWkt("POLYGON ((0 50,200 50,200 250,0 250,0 50))")
    mapped = frame.to_map(block)
    transformer = gdal.Transformer(_gcp_dataset(_bent_gcps()), None, [])
    for pixel, line in ((100, 50), (200, 150), (50, 250)):  # points on the block's edges
        (point,), _ = transformer.TransformPoints(0, [(pixel, line)])
        where = ogr.CreateGeometryFromWkt(f"POINT ({point[0]} {point[1]})")
        # a pixel is about 9e-5 degrees: the outline passes within a hundredth of one
        assert mapped.Boundary().Distance(where) < 0.01 * 9e-5


def _gcp_dataset(points: list) -> gdal.Dataset:
    dataset = gdal.GetDriverByName("MEM").Create("", 400, 300, 0)
    dataset.SetGCPs(points, "")
    return dataset


def test_too_few_ground_points_leave_the_raster_unreferenced_as_qgis_draws_it():
    two = _quadratic_gcps()[:2]
    frame = VectorFrame(100, 80, NO_GEOTRANSFORM, "", two, _wkt(4326))
    assert not frame.warps and frame.geotransform == UNREFERENCED_FRAME
    assert "give no transform" in frame.warning and frame.area_unit == "pixels"
    assert frame.srs.GetAuthorityCode(None) == "4326"  # the CRS QGIS labels the raster with
    drawn = ogr.CreateGeometryFromWkt("POLYGON ((2 -3,5 -3,5 -6,2 -6,2 -3))")
    assert frame.area(drawn) == 9.0
    pixels = frame.to_pixels(drawn)
    assert pixels.GetEnvelope() == (2.0, 5.0, 3.0, 6.0)


def test_areas_far_from_the_centre_of_a_near_global_raster_are_exact():
    step = 0.9  # degrees per pixel: 400 x 200 pixels cover the globe
    frame = VectorFrame(400, 200, (-180.0, step, 0.0, 90.0, 0.0, -step), _wkt(4326))
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    e = math.sqrt(e2)

    def q(latitude: float) -> float:
        sine = math.sin(math.radians(latitude))
        return sine / (1 - e2 * sine**2) + math.log((1 + e * sine) / (1 - e * sine)) / (2 * e)

    for west, south in ((0.0, 0.0), (162.0, -3.6), (172.8, 40.5)):
        east, north = west + 4 * step, south + 4 * step
        corners = [(west, south), (east, south), (east, north), (west, north), (west, south)]
        ring = ",".join(f"{x} {y}" for x, y in corners)
        box = ogr.CreateGeometryFromWkt(f"POLYGON (({ring}))")
        expected = a**2 * (1 - e2) / 2 * math.radians(east - west) * (q(north) - q(south))
        assert frame.area(box) == pytest.approx(expected, rel=1e-12)


def test_a_geotransform_wins_over_ground_points():
    geotransform = (0.0, 10.0, 0.0, 0.0, 0.0, -10.0)
    frame = VectorFrame(100, 80, geotransform, _wkt(32633), _quadratic_gcps(), _wkt(4326))
    assert not frame.warps and frame.geotransform == geotransform
    assert frame.srs.GetAuthorityCode(None) == "32633"
