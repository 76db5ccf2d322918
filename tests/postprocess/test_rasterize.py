from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from tests.raster_factory import (
    DEFAULT_GEOTRANSFORM,
    affine_rpc,
    set_ground_points,
    write_polygons,
    write_raster,
)
from uniadrs_engine.errors import InputError
from uniadrs_engine.postprocess.rasterize import rasterize_polygons_like
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster


def _box(x0, y0, x1, y1):
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def test_polygons_burn_on_the_score_grid(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    # columns 2..4 and rows 3..6 (10 m pixels, north-up)
    vector = write_polygons(tmp_path / "truth.gpkg", [_box(x0 + 20, y0 - 70, x0 + 50, y0 - 30)])
    out = rasterize_polygons_like(vector, like, tmp_path / "truth.tif")
    dataset = gdal.Open(str(out))
    mask = dataset.GetRasterBand(1).ReadAsArray()
    expected = np.zeros((20, 30), dtype=np.uint8)
    expected[3:7, 2:5] = 1
    np.testing.assert_array_equal(mask, expected)
    assert dataset.GetGeoTransform() == DEFAULT_GEOTRANSFORM


def _plain_raster(path, array):
    """A GeoTIFF without geotransform or CRS, as a PNG or a bare camera frame is."""
    rows, cols = array.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, 1, gdal.GDT_Float32)
    dataset.GetRasterBand(1).WriteArray(array)
    dataset = None
    return path


def test_polygons_burn_where_qgis_draws_a_raster_without_georeferencing(tmp_path):
    like = _plain_raster(tmp_path / "plain.tif", np.zeros((20, 30), dtype=np.float32))
    # QGIS draws it with one unit per pixel, rows going down to negative y
    vector = write_polygons(tmp_path / "truth.gpkg", [_box(2, -7, 5, -3)], epsg=None)
    out = rasterize_polygons_like(vector, like, tmp_path / "truth.tif")
    dataset = gdal.Open(str(out))
    expected = np.zeros((20, 30), dtype=np.uint8)
    expected[3:7, 2:5] = 1
    np.testing.assert_array_equal(dataset.GetRasterBand(1).ReadAsArray(), expected)
    assert dataset.GetGeoTransform(can_return_null=True) is None  # as the raster it lies on


def test_threshold_polygons_of_a_raster_without_georeferencing_burn_back_to_its_mask(tmp_path):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    scores[12:14, 20:29] = 2.0
    like = _plain_raster(tmp_path / "scores.tif", scores)
    threshold_raster(like, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    dataset = ogr.Open(str(tmp_path / "o.gpkg"))
    envelopes = sorted(feature.GetGeometryRef().GetEnvelope() for feature in dataset.GetLayer(0))
    assert envelopes == [(2.0, 5.0, -6.0, -3.0), (20.0, 29.0, -14.0, -12.0)]
    dataset = None
    out = rasterize_polygons_like(tmp_path / "o.gpkg", like, tmp_path / "back.tif")
    burnt = gdal.Open(str(out))
    np.testing.assert_array_equal(burnt.GetRasterBand(1).ReadAsArray(), scores > 0.5)


def test_polygons_in_another_crs_are_reprojected(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    utm.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    polygon = ogr.CreateGeometryFromWkt(_box(x0 + 101, y0 - 99, x0 + 149, y0 - 51))
    polygon.AssignSpatialReference(utm)
    polygon.TransformTo(wgs84)
    vector = write_polygons(tmp_path / "truth.gpkg", [polygon.ExportToWkt()], epsg=4326)
    mask = gdal.Open(str(rasterize_polygons_like(vector, like, tmp_path / "t.tif"))).ReadAsArray()
    expected = np.zeros((20, 30), dtype=np.uint8)
    expected[5:10, 10:15] = 1
    np.testing.assert_array_equal(mask, expected)


def test_unreadable_vector_is_an_input_error(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((4, 4), dtype=np.float32))
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    with pytest.raises(InputError, match="not a vector file"):
        rasterize_polygons_like(tmp_path / "junk.gpkg", like, tmp_path / "t.tif")
    assert not (tmp_path / "t.tif").exists()


def test_threshold_polygons_of_a_raster_with_ground_points_burn_back_to_its_mask(tmp_path):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    corners = [(0, 0, 10.0, 50.0), (30, 0, 10.3, 50.0), (0, 20, 10.0, 49.8)]
    like = set_ground_points(_plain_raster(tmp_path / "gcps.tif", scores), corners)
    threshold_raster(like, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    # the same polygons in another CRS go through it to the raster's points, then to pixels
    reprojected = str(tmp_path / "o_3857.gpkg")
    gdal.VectorTranslate(reprojected, str(tmp_path / "o.gpkg"), dstSRS="EPSG:3857")
    for polygons in ("o.gpkg", "o_3857.gpkg"):
        out = rasterize_polygons_like(tmp_path / polygons, like, tmp_path / f"back_{polygons}.tif")
        burnt = gdal.Open(str(out))
        np.testing.assert_array_equal(burnt.GetRasterBand(1).ReadAsArray(), scores > 0.5)
        assert burnt.GetGeoTransform(can_return_null=True) is None
        assert [(p.GCPPixel, p.GCPLine, p.GCPX, p.GCPY) for p in burnt.GetGCPs()] == corners
        burnt = None


def test_threshold_polygons_of_a_raster_with_polynomial_coefficients_burn_back(tmp_path):
    scores = np.zeros((100, 100), dtype=np.float32)
    scores[40:43, 60:64] = 1.0
    scores[80:90, 5:7] = 1.0
    like = _plain_raster(tmp_path / "rpc.tif", scores)
    dataset = gdal.Open(str(like), gdal.GA_Update)
    dataset.SetMetadata(affine_rpc(), "RPC")
    dataset = None
    threshold_raster(like, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    out = rasterize_polygons_like(tmp_path / "o.gpkg", like, tmp_path / "back.tif")
    burnt = gdal.Open(str(out))
    np.testing.assert_array_equal(burnt.GetRasterBand(1).ReadAsArray(), scores > 0.5)
    assert burnt.GetMetadata("RPC")["LONG_OFF"] == "7"


def test_threshold_polygons_of_a_raster_with_too_few_ground_points_burn_back(tmp_path):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    two = [(0, 0, 10.0, 50.0), (30, 0, 10.3, 50.0)]
    like = set_ground_points(_plain_raster(tmp_path / "gcps.tif", scores), two)
    threshold_raster(like, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    out = rasterize_polygons_like(tmp_path / "o.gpkg", like, tmp_path / "back.tif")
    burnt = gdal.Open(str(out))
    np.testing.assert_array_equal(burnt.GetRasterBand(1).ReadAsArray(), scores > 0.5)
    assert burnt.GetGCPCount() == 2 and burnt.GetGeoTransform(can_return_null=True) is None


def _corner_mask():
    """The mask of :func:`_box` columns 2..4, rows 3..6 on ``like``'s grid."""
    expected = np.zeros((20, 30), dtype=np.uint8)
    expected[3:7, 2:5] = 1
    return expected


@pytest.mark.parametrize("georeferenced", [True, False], ids=["geotransform", "plain"])
@pytest.mark.parametrize(
    ("template", "geom_type"),
    [
        ("CURVEPOLYGON(({ring}))", ogr.wkbCurvePolygon),
        ("MULTISURFACE((({ring})))", ogr.wkbMultiSurface),
        ("MULTISURFACE(CURVEPOLYGON(({ring})))", ogr.wkbMultiSurface),
        ("MULTISURFACE((({ring})))", ogr.wkbUnknown),
    ],
    ids=["curve-polygon", "multi-surface", "multi-surface-of-curve", "unknown-layer"],
)
def test_curved_geometries_burn_as_their_polygons(tmp_path, georeferenced, template, geom_type):
    if georeferenced:
        like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
        x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
        box, epsg = _box(x0 + 20, y0 - 70, x0 + 50, y0 - 30), 32633
    else:
        like = _plain_raster(tmp_path / "plain.tif", np.zeros((20, 30), dtype=np.float32))
        box, epsg = _box(2, -7, 5, -3), None
    ring = box[len("POLYGON((") : -2]
    wkt = template.format(ring=ring)
    vector = write_polygons(tmp_path / "truth.gpkg", [wkt], epsg=epsg, geom_type=geom_type)
    mask = gdal.Open(str(rasterize_polygons_like(vector, like, tmp_path / "t.tif"))).ReadAsArray()
    np.testing.assert_array_equal(mask, _corner_mask())


def test_a_circle_burns_about_its_area(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    cx, cy, r = x0 + 150, y0 - 100, 60  # a circle of 6 pixels radius at column 15, row 10
    circle = f"CURVEPOLYGON(CIRCULARSTRING({cx - r} {cy},{cx + r} {cy},{cx - r} {cy}))"
    vector = write_polygons(tmp_path / "c.gpkg", [circle], geom_type=ogr.wkbCurvePolygon)
    mask = gdal.Open(str(rasterize_polygons_like(vector, like, tmp_path / "t.tif"))).ReadAsArray()
    assert abs(int(mask.sum()) - np.pi * 6**2) < 10
    assert mask[10, 15] == 1 and mask[0, 0] == 0


@pytest.mark.parametrize(
    ("wkts", "geom_type", "name"),
    [
        (["POINT(500020 5000030)"], ogr.wkbPoint, "Point"),
        (["LINESTRING(500000 4999900,500300 4999900)"], ogr.wkbLineString, "Line String"),
        (["MULTIPOINT((500020 5000030))"], ogr.wkbMultiPoint25D, "Multi Point"),
        ([_box(0, 0, 1, 1), "LINESTRING(500000 4999900,500300 4999900)"], ogr.wkbUnknown, "Line"),
    ],
    ids=["point", "line", "multi-point-z", "line-in-unknown-layer"],
)
def test_points_and_lines_are_not_ground_truth(tmp_path, wkts, geom_type, name):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    vector = write_polygons(tmp_path / "truth.gpkg", wkts, geom_type=geom_type)
    with pytest.raises(InputError, match=f"layer 'truth' of .* holds {name}.* must be polygons"):
        rasterize_polygons_like(vector, like, tmp_path / "t.tif")
    assert not (tmp_path / "t.tif").exists()


def test_a_geopackage_layer_without_crs_is_refused_on_a_georeferenced_raster(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    # GDAL gives the layer an "Undefined geographic SRS", not None
    vector = write_polygons(tmp_path / "t.gpkg", [_box(x0 + 20, y0 - 70, x0 + 50, y0 - 30)], None)
    assert ogr.Open(str(vector)).GetLayer(0).GetSpatialRef().GetName().startswith("Undefined")
    with pytest.raises(InputError, match="has no coordinate reference system"):
        rasterize_polygons_like(vector, like, tmp_path / "t.tif")
    assert not (tmp_path / "t.tif").exists()


def test_polygons_off_the_raster_give_a_warning(tmp_path, caplog):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    far = [_box(x0 + 1000, y0, x0 + 1100, y0 + 100), _box(x0 - 500, y0, x0 - 400, y0 + 100)]
    vector = write_polygons(tmp_path / "truth.gpkg", far)
    with caplog.at_level(logging.WARNING, logger="uniadrs_engine.postprocess.rasterize"):
        out = rasterize_polygons_like(vector, like, tmp_path / "t.tif")
    assert not gdal.Open(str(out)).ReadAsArray().any()
    assert "none of the 2 features of" in caplog.text


def test_polygons_on_the_raster_give_no_warning(tmp_path, caplog):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    vector = write_polygons(tmp_path / "truth.gpkg", [_box(x0 + 20, y0 - 70, x0 + 50, y0 - 30)])
    with caplog.at_level(logging.WARNING, logger="uniadrs_engine.postprocess.rasterize"):
        rasterize_polygons_like(vector, like, tmp_path / "t.tif")
    assert "none of the" not in caplog.text


def test_a_missing_vector_file_is_not_found(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(InputError, match="vector file not found: .*nonexist.gpkg$"):
        rasterize_polygons_like(tmp_path / "nonexist.gpkg", like, tmp_path / "t.tif")


def test_a_vector_in_a_zip_is_read_through_its_gdal_name(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    vector = write_polygons(tmp_path / "truth.gpkg", [_box(x0 + 20, y0 - 70, x0 + 50, y0 - 30)])
    with zipfile.ZipFile(tmp_path / "truth.zip", "w") as archive:
        archive.write(vector, "truth.gpkg")
    name = f"/vsizip/{tmp_path / 'truth.zip'}/truth.gpkg"
    mask = gdal.Open(str(rasterize_polygons_like(name, like, tmp_path / "t.tif"))).ReadAsArray()
    np.testing.assert_array_equal(mask, _corner_mask())
