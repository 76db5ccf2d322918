"""Raster evaluation: exact AUC in bounded memory, nodata handling, grid checks, ROC PNG."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from sklearn.metrics import roc_auc_score

from tests.raster_factory import DEFAULT_GEOTRANSFORM
from uniadrs_engine.errors import CancelledError, InputError
from uniadrs_engine.metrics.evaluation import evaluate_rasters, pooled_auc_rasters, save_roc_png
from uniadrs_engine.metrics.roc import pooled_auc
from uniadrs_engine.metrics.roc3d import roc3d
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.writer import SCORE_NODATA


def _scores_and_mask(rows=30, cols=40, anomaly_fraction=0.05, seed=0):
    rng = np.random.default_rng(seed)
    mask = (rng.random((rows, cols)) < anomaly_fraction).astype(np.uint8)
    scores = rng.integers(0, 20, size=(rows, cols)).astype(np.float32)  # many ties
    scores[mask == 1] += 5
    return scores, mask


def test_auc_and_3d_roc_match_array_computation_and_skip_nodata(make_raster):
    scores, mask = _scores_and_mask()
    with_nodata = scores.copy()
    with_nodata[:3, :5] = SCORE_NODATA
    score_path = make_raster(with_nodata, "scores.tif", nodata=SCORE_NODATA)
    mask_path = make_raster(mask, "mask.tif")
    valid = np.ones_like(mask, dtype=bool)
    valid[:3, :5] = False
    result = evaluate_rasters(score_path, mask_path)
    assert result.auc == pytest.approx(roc_auc_score(mask[valid], scores[valid]), abs=1e-12)
    assert result.roc3d.as_dict() == pytest.approx(roc3d(scores, mask, valid).as_dict())
    assert result.n_pixels == valid.sum()
    assert result.n_anomalies == mask[valid].sum()
    assert result.n_ignored == 15
    assert result.score_min == scores[valid].min()


@pytest.mark.parametrize("anomaly_fraction", [0.05, 0.9])
def test_chunked_ranking_in_a_tiny_budget_stays_exact(make_raster, anomaly_fraction):
    scores, mask = _scores_and_mask(anomaly_fraction=anomaly_fraction, seed=5)
    score_path = make_raster(scores, "scores.tif")
    mask_path = make_raster(mask, "mask.tif")
    # 1e-4 MiB: one-row windows and a reference of 3 scores, so many chunks and passes
    result = evaluate_rasters(score_path, mask_path, memory_mb=1e-4)
    assert result.auc == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()), abs=1e-12)
    assert result.auc == pytest.approx(evaluate_rasters(score_path, mask_path).auc, abs=1e-12)


def test_curve_is_a_monotone_roc(make_raster):
    scores, mask = _scores_and_mask(seed=2)
    result = evaluate_rasters(make_raster(scores, "s.tif"), make_raster(mask, "m.tif"))
    curve = result.curve
    assert curve.false_positive_rate[0] == 0 and curve.true_positive_rate[-1] == 1
    assert np.all(np.diff(curve.false_positive_rate) >= 0)
    area = np.trapz(curve.true_positive_rate, curve.false_positive_rate)
    assert area == pytest.approx(result.auc, abs=1e-6)  # integer scores: bins hold ties only


def test_mask_nodata_pixels_are_left_out_unless_nodata_is_zero(make_raster):
    scores, mask = _scores_and_mask(seed=3)
    score_path = make_raster(scores, "s.tif")
    unknown = mask.copy()
    unknown[:, :4] = 255
    result = evaluate_rasters(score_path, make_raster(unknown, "m255.tif", nodata=255))
    assert result.n_pixels == mask[:, 4:].size and result.n_ignored == mask[:, :4].size
    assert result.auc == pytest.approx(roc_auc_score(mask[:, 4:].ravel(), scores[:, 4:].ravel()))
    zero_nodata = evaluate_rasters(score_path, make_raster(mask, "m0.tif", nodata=0))
    assert zero_nodata.n_pixels == mask.size
    assert zero_nodata.auc == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()))


@pytest.mark.parametrize("mask_value", [0, 1])
def test_one_class_masks_are_rejected(make_raster, mask_value):
    scores, _ = _scores_and_mask()
    mask = np.full(scores.shape, mask_value, dtype=np.uint8)
    with pytest.raises(InputError, match="AUC is undefined"):
        evaluate_rasters(make_raster(scores, "s.tif"), make_raster(mask, "m.tif"))


def test_grids_must_match(make_raster):
    scores, mask = _scores_and_mask()
    score_path = make_raster(scores, "s.tif")
    with pytest.raises(InputError, match="sizes differ"):
        evaluate_rasters(score_path, make_raster(mask[:, :-1], "narrow.tif"))
    shifted = list(DEFAULT_GEOTRANSFORM)
    shifted[0] += 100.0
    with pytest.raises(InputError, match="geotransforms differ"):
        evaluate_rasters(score_path, make_raster(mask, "shifted.tif", geotransform=shifted))
    with pytest.raises(InputError, match="not found"):
        evaluate_rasters(score_path, score_path.parent / "missing.tif")


def test_cancellation_raises(make_raster):
    scores, mask = _scores_and_mask()
    reporter = ProgressReporter(is_cancelled=lambda: True)
    with pytest.raises(CancelledError):
        evaluate_rasters(
            make_raster(scores, "s.tif"), make_raster(mask, "m.tif"), progress=reporter
        )


def test_save_roc_png_writes_a_png_and_no_temporary_file(make_raster, tmp_path):
    scores, mask = _scores_and_mask()
    result = evaluate_rasters(make_raster(scores, "s.tif"), make_raster(mask, "m.tif"))
    out = tmp_path / "roc.png"
    assert save_roc_png(result, out, title="test") == out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*partial*"))
    with pytest.raises(InputError):
        save_roc_png(result, tmp_path / "missing" / "roc.png")


def test_as_dict_is_json_ready(make_raster):
    import json

    scores, mask = _scores_and_mask()
    result = evaluate_rasters(make_raster(scores, "s.tif"), make_raster(mask, "m.tif"))
    values = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert values["auc"] == pytest.approx(result.auc)
    assert {"auc_df", "auc_dt", "auc_ft", "td", "bs", "odp", "tdbs", "snpr"} <= set(values)


@pytest.mark.parametrize("memory_mb", [256, 1e-4])
def test_pooled_auc_over_rasters_matches_the_array_pooling(make_raster, memory_mb):
    first_scores, first_mask = _scores_and_mask(seed=7)
    second_scores, second_mask = _scores_and_mask(rows=12, cols=9, seed=8)
    second_scores = second_scores * 0.5 + 3  # another scale: pooling is not the mean AUC
    pairs = [
        (make_raster(first_scores, "s1.tif"), make_raster(first_mask, "m1.tif")),
        (make_raster(second_scores, "s2.tif"), make_raster(second_mask, "m2.tif")),
    ]
    expected = pooled_auc([(first_scores, first_mask), (second_scores, second_mask)])
    assert pooled_auc_rasters(pairs, memory_mb=memory_mb) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(InputError):
        pooled_auc_rasters([])


def test_a_paletted_mask_is_read_as_its_classes(make_raster, tmp_path):
    rng = np.random.default_rng(4)
    truth = (rng.random((16, 16)) < 0.2).astype(np.uint8)
    scores = make_raster(rng.random((16, 16)).astype(np.float32) + truth, "scores.tif")
    mask_path = tmp_path / "classes.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(mask_path), 16, 16, 1, gdal.GDT_Byte)
    table = gdal.ColorTable()
    table.SetColorEntry(0, (255, 255, 255, 255))  # white background: colour 255, class 0
    table.SetColorEntry(1, (255, 0, 0, 255))
    band = dataset.GetRasterBand(1)
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.WriteArray(truth)
    band = dataset = None
    plain = make_raster(truth, "plain.tif")
    assert evaluate_rasters(scores, mask_path).auc == evaluate_rasters(scores, plain).auc


def _float64_probabilities(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float64 scores that float32 would turn into ties (probabilities near 1), and a mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((96, 96), dtype=np.uint8)
    mask[20:30, 40:52] = 1
    scores = 1.0 / (1.0 + np.exp(-(rng.normal(18.0, 2.0, mask.shape) + 2.0 * mask)))
    assert len(np.unique(scores.astype(np.float32))) < len(np.unique(scores)) // 2
    return scores, mask


@pytest.mark.parametrize("memory_mb", [64.0, 0.02])
def test_float64_scores_are_ranked_at_their_own_precision(make_raster, memory_mb):
    scores, mask = _float64_probabilities()
    score_path = make_raster(scores.astype(np.float64), "scores64.tif")
    mask_path = make_raster(mask, "mask.tif")
    result = evaluate_rasters(score_path, mask_path, memory_mb=memory_mb)
    assert result.auc == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()), abs=1e-12)


def test_a_float64_mask_is_read_at_its_own_precision(make_raster):
    scores = np.random.default_rng(9).random((20, 20)).astype(np.float32)
    mask = np.zeros((20, 20), dtype=np.float64)
    mask[5:8, 5:8] = 1e-50  # non-zero: an anomaly, though float32 would round it to 0
    result = evaluate_rasters(make_raster(scores, "s.tif"), make_raster(mask, "m.tif"))
    assert result.auc == pytest.approx(roc_auc_score((mask != 0).ravel(), scores.ravel()))


def test_a_masks_values_count_as_stored_but_scores_in_their_units(make_raster):
    """A 0/1 mask carrying an offset stays 0/1; scores with a negative scale are read in
    their units (stored order reversed)."""
    scores, mask = _scores_and_mask()
    stored_scores = np.round((10.0 - scores) * 1000).astype(np.int32)  # scale -0.001, offset 10
    score_path = make_raster(stored_scores, "scores.tif")
    mask_path = make_raster(mask.astype(np.uint8), "mask.tif")
    for path, scale, offset in ((score_path, -0.001, 10.0), (mask_path, 1.0, 5.0)):
        dataset = gdal.Open(str(path), gdal.GA_Update)
        band = dataset.GetRasterBand(1)
        band.SetScale(scale)
        band.SetOffset(offset)
        band = dataset = None
    result = evaluate_rasters(score_path, mask_path)
    expected = roc_auc_score(mask.ravel(), (10.0 - stored_scores * 0.001).ravel())
    assert result.auc == pytest.approx(expected, abs=1e-9) and result.auc > 0.5


@pytest.mark.parametrize("extreme", [1e308, 3e307])
def test_scores_spanning_more_than_float64_holds_are_evaluated(make_raster, extreme):
    """An undeclared fill of ±1e308 beside ordinary scores (another tool's float64 map)."""
    scores, mask = _scores_and_mask()
    wide = scores.astype(np.float64)
    wide[0, 0], wide[0, 1] = -extreme, extreme
    mask[0, 0], mask[0, 1] = 0, 1
    wide[mask == 1] += 1e306  # sums of the anomalies' scores overflow too at 1e308
    result = evaluate_rasters(make_raster(wide, "wide.tif"), make_raster(mask, "mask.tif"))
    assert result.auc == pytest.approx(roc_auc_score(mask.ravel(), wide.ravel()), abs=1e-12)
    low, high = wide.min(), wide.max()
    halves = (wide / 2 - low / 2) / (high / 2 - low / 2)  # each pixel normalised to the range
    expected_dt, expected_ft = halves[mask == 1].mean(), halves[mask == 0].mean()
    figures = result.roc3d.as_dict()
    assert figures["auc_dt"] == pytest.approx(expected_dt, abs=1 / 4096)
    assert figures["auc_ft"] == pytest.approx(expected_ft, abs=1 / 4096)


def test_scores_without_a_value_are_named_as_such(make_raster):
    scores, mask = _scores_and_mask()
    empty = make_raster(np.full_like(scores, SCORE_NODATA), "empty.tif", nodata=SCORE_NODATA)
    with pytest.raises(InputError, match="none holds both a score .* and a value of mask"):
        evaluate_rasters(empty, make_raster(mask, "mask.tif"))
