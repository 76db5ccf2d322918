from __future__ import annotations

import math

import numpy as np
import processing
import pytest
from osgeo import ogr, osr
from qgis.core import QgsProcessingException

from tests.raster_factory import DEFAULT_GEOTRANSFORM, write_raster
from uniadrs_engine.metrics.evaluation import evaluate_rasters

ALGORITHM = "uniadrs:evaluate"


@pytest.fixture
def scores_and_truth(tmp_path):
    rng = np.random.default_rng(7)
    truth = np.zeros((30, 40), dtype=np.uint8)
    truth[5:9, 6:10] = 1
    truth[20:23, 30:34] = 1
    scores = rng.random(truth.shape).astype(np.float32) + 0.8 * truth
    return (
        write_raster(tmp_path / "scores.tif", scores),
        write_raster(tmp_path / "truth.tif", truth),
    )


def _truth_polygons(path, boxes):
    x0, pixel, _, y0, _, _ = DEFAULT_GEOTRANSFORM
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = dataset.CreateLayer("truth", srs=srs, geom_type=ogr.wkbPolygon)
    for row0, row1, col0, col1 in boxes:
        left, right = x0 + col0 * pixel, x0 + col1 * pixel
        top, bottom = y0 - row0 * pixel, y0 - row1 * pixel
        ring = f"{left} {bottom},{right} {bottom},{right} {top},{left} {top},{left} {bottom}"
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({ring}))"))
        layer.CreateFeature(feature)
    dataset = None
    return path


def test_evaluate_with_mask_raster_matches_engine(provider, scores_and_truth, tmp_path):
    scores, truth = scores_and_truth
    report = tmp_path / "report.html"
    result = processing.run(
        ALGORITHM,
        {"INPUT": str(scores), "GROUND_TRUTH_MASK": str(truth), "OUTPUT_HTML": str(report)},
    )
    engine = evaluate_rasters(scores, truth)
    assert result["AUC"] == pytest.approx(engine.auc)
    assert result["AUC_DT"] == pytest.approx(engine.roc3d.auc_dt)
    assert result["SNPR"] == pytest.approx(engine.roc3d.snpr)
    assert result["N_ANOMALIES"] == engine.n_anomalies == 28
    assert result["N_PIXELS"] == 1200
    html = report.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and f"{engine.auc:.6g}" in html


def test_evaluate_with_polygons_equals_mask(provider, scores_and_truth, tmp_path):
    scores, truth = scores_and_truth
    polygons = _truth_polygons(tmp_path / "truth.gpkg", [(5, 9, 6, 10), (20, 23, 30, 34)])
    result = processing.run(
        ALGORITHM, {"INPUT": str(scores), "GROUND_TRUTH_POLYGONS": str(polygons)}
    )
    engine = evaluate_rasters(scores, truth)
    assert result["AUC"] == pytest.approx(engine.auc)
    assert result["N_ANOMALIES"] == engine.n_anomalies
    assert all(not isinstance(value, float) or math.isfinite(value) for value in result.values())


def test_evaluate_needs_exactly_one_ground_truth(provider, scores_and_truth):
    scores, truth = scores_and_truth
    with pytest.raises(QgsProcessingException, match="exactly one"):
        processing.run(ALGORITHM, {"INPUT": str(scores)})


def test_evaluate_mask_on_another_grid_is_a_clear_error(provider, scores_and_truth, tmp_path):
    scores, _ = scores_and_truth
    other = write_raster(tmp_path / "other.tif", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(QgsProcessingException, match="grid|size|differ"):
        processing.run(ALGORITHM, {"INPUT": str(scores), "GROUND_TRUTH_MASK": str(other)})


def test_the_report_shows_counts_whole(provider, tmp_path):
    from qgis_plugin.algorithms.evaluate import _shown

    assert _shown(1234567) == "1234567" and _shown(np.int64(28)) == "28"
    assert _shown(0.123456789) == "0.123457"


def test_a_report_into_a_missing_folder_is_refused_before_evaluating(
    provider, scores_and_truth, tmp_path, monkeypatch
):
    import uniadrs_engine.metrics.evaluation as evaluation

    scores, truth = scores_and_truth
    calls = []
    monkeypatch.setattr(evaluation, "evaluate_rasters", lambda *a, **k: calls.append(a))
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run(
            ALGORITHM,
            {
                "INPUT": str(scores),
                "GROUND_TRUTH_MASK": str(truth),
                "OUTPUT_HTML": str(tmp_path / "missing" / "report.html"),
            },
        )
    assert calls == []


def test_polygons_without_an_anomaly_pixel_are_named_as_the_layer(
    provider, scores_and_truth, tmp_path
):
    scores, _ = scores_and_truth
    polygons = _truth_polygons(tmp_path / "far.gpkg", [(500, 510, 600, 610)])  # off the grid
    with pytest.raises(QgsProcessingException, match=r"the ground truth \(polygons .*far\.gpkg"):
        processing.run(ALGORITHM, {"INPUT": str(scores), "GROUND_TRUTH_POLYGONS": str(polygons)})
