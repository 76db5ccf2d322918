from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from tests.raster_factory import DEFAULT_GEOTRANSFORM, affine_rpc, set_ground_points, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.postprocess.rasterize import rasterize_polygons_like
from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster


def _write_polygons(path, wkts, epsg=32633):
    driver = ogr.GetDriverByName("GPKG")
    dataset = driver.CreateDataSource(str(path))
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = dataset.CreateLayer("truth", srs=srs, geom_type=ogr.wkbPolygon)
    for wkt in wkts:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    dataset = None
    return path


def _box(x0, y0, x1, y1):
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def test_polygons_burn_on_the_score_grid(tmp_path):
    like = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    # columns 2..4 and rows 3..6 (10 m pixels, north-up)
    vector = _write_polygons(tmp_path / "truth.gpkg", [_box(x0 + 20, y0 - 70, x0 + 50, y0 - 30)])
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
    vector = _write_polygons(tmp_path / "truth.gpkg", [_box(2, -7, 5, -3)], epsg=None)
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
    vector = _write_polygons(tmp_path / "truth.gpkg", [polygon.ExportToWkt()], epsg=4326)
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
