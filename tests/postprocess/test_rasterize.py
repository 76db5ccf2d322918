from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from tests.raster_factory import DEFAULT_GEOTRANSFORM, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.postprocess.rasterize import rasterize_polygons_like


def _write_polygons(path, wkts, epsg=32633):
    driver = ogr.GetDriverByName("GPKG")
    dataset = driver.CreateDataSource(str(path))
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
