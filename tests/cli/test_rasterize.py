from __future__ import annotations

import numpy as np
from osgeo import gdal, ogr

from tests.raster_factory import DEFAULT_GEOTRANSFORM, write_polygons, write_raster
from uniadrs_engine.cli.main import EXIT_USER_ERROR, main


def test_threshold_polygons_burn_back_into_a_mask_that_evaluates(tmp_path, capsys):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    scores[10:12, 20:27] = 0.8
    score_path = write_raster(tmp_path / "scores.tif", scores)
    polygons = tmp_path / "objects.gpkg"
    assert main(["threshold", str(score_path), "--value", "0.5", "--polygons", str(polygons)]) == 0
    mask = tmp_path / "truth.tif"
    assert main(["rasterize", str(polygons), str(score_path), str(mask)]) == 0
    assert f"wrote {mask}: 23 of 600 pixels inside the polygons" in capsys.readouterr().out
    burnt = gdal.Open(str(mask))
    np.testing.assert_array_equal(burnt.GetRasterBand(1).ReadAsArray(), scores > 0.5)
    assert burnt.GetGeoTransform() == gdal.Open(str(score_path)).GetGeoTransform()
    burnt = None
    assert main(["evaluate", str(score_path), str(mask), "--quiet"]) == 0
    assert "AUC          1.000000" in capsys.readouterr().out


def test_a_missing_layer_is_one_line(tmp_path, capsys):
    score_path = write_raster(tmp_path / "scores.tif", np.ones((4, 4), dtype=np.float32))
    (tmp_path / "none.gpkg").write_text("not a vector file")
    assert main(["rasterize", str(tmp_path / "none.gpkg"), str(score_path), "t.tif"]) == (
        EXIT_USER_ERROR
    )
    assert "is not a vector file GDAL can read" in capsys.readouterr().err


def test_a_second_mask_of_the_same_name_is_counted_afresh(tmp_path, capsys):
    scores = np.zeros((20, 30), dtype=np.float32)
    score_path = write_raster(tmp_path / "scores.tif", scores)
    mask = tmp_path / "truth.tif"
    for low, count in ((0.9, 9), (0.5, 23)):
        scores[3:6, 2:5] = 1.0
        scores[10:12, 20:27] = 0.8
        write_raster(score_path, scores)
        polygons = tmp_path / f"objects_{low}.gpkg"
        (tmp_path / "truth.tif.aux.xml").write_text("<PAMDataset/>")  # an older mask's
        assert (
            main(["threshold", str(score_path), "--value", str(low), "--polygons", str(polygons)])
            == 0
        )
        assert main(["rasterize", str(polygons), str(score_path), str(mask)]) == 0
        assert f"{count} of 600 pixels inside" in capsys.readouterr().out
    assert not (tmp_path / "truth.tif.aux.xml").exists()  # not carried over to the new mask


def test_a_missing_vector_file_is_not_found(tmp_path, capsys):
    score_path = write_raster(tmp_path / "scores.tif", np.ones((4, 4), dtype=np.float32))
    missing = tmp_path / "nonexist.gpkg"
    assert main(["rasterize", str(missing), str(score_path), str(tmp_path / "t.tif")]) == (
        EXIT_USER_ERROR
    )
    err = capsys.readouterr().err
    assert f"vector file not found: {missing}" in err and "GDAL can read" not in err


def test_curved_polygons_burn(tmp_path, capsys):
    score_path = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    ring = f"{x0 + 20} {y0 - 70},{x0 + 50} {y0 - 70},{x0 + 50} {y0 - 30},{x0 + 20} {y0 - 30}"
    wkt = f"MULTISURFACE(CURVEPOLYGON(({ring},{x0 + 20} {y0 - 70})))"
    polygons = write_polygons(tmp_path / "curved.gpkg", [wkt], geom_type=ogr.wkbMultiSurface)
    mask = tmp_path / "truth.tif"
    assert main(["rasterize", str(polygons), str(score_path), str(mask)]) == 0
    assert f"wrote {mask}: 12 of 600 pixels inside the polygons" in capsys.readouterr().out


def test_a_point_layer_is_refused_in_one_line(tmp_path, capsys):
    score_path = write_raster(tmp_path / "scores.tif", np.zeros((20, 30), dtype=np.float32))
    x0, _, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    points = write_polygons(
        tmp_path / "points.gpkg", [f"POINT({x0 + 25} {y0 - 35})"], geom_type=ogr.wkbPoint
    )
    mask = tmp_path / "truth.tif"
    assert main(["rasterize", str(points), str(score_path), str(mask)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "layer 'truth'" in err and "holds Point geometries" in err and "\n" not in err
    assert not mask.exists()
