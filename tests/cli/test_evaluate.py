"""``uniadrs evaluate``: text and JSON output, ROC PNG, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from uniadrs_engine.cli.main import main


@pytest.fixture
def scores_and_mask(make_raster):
    rng = np.random.default_rng(0)
    mask = (rng.random((20, 30)) < 0.1).astype(np.uint8)
    scores = rng.random((20, 30)).astype(np.float32) + mask
    return make_raster(scores, "scores.tif"), make_raster(mask, "mask.tif"), scores, mask


def test_json_output_is_one_object(scores_and_mask, tmp_path, capsys):
    score_path, mask_path, scores, mask = scores_and_mask
    png = tmp_path / "roc.png"
    assert main(["evaluate", str(score_path), str(mask_path), "--json", "--roc-png", str(png)]) == 0
    out = capsys.readouterr().out
    values = json.loads(out)
    assert out.count("\n") == 1
    assert values["auc"] == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()))
    for key in ("auc_df", "auc_dt", "auc_ft", "td", "bs", "odp", "tdbs", "snpr"):
        assert isinstance(values[key], float)
    assert values["n_pixels"] == 600 and values["n_anomalies"] == mask.sum()
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_text_output(scores_and_mask, capsys):
    score_path, mask_path, _, _ = scores_and_mask
    assert main(["evaluate", str(score_path), str(mask_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("AUC ") and "AUC(D,tau)" in out and "AUC SNPR" in out


def test_errors_are_one_line(scores_and_mask, make_raster, capsys):
    score_path, _, _, _ = scores_and_mask
    empty_mask = make_raster(np.zeros((20, 30), np.uint8), "empty.tif")
    other_grid = make_raster(np.zeros((10, 30), np.uint8), "small.tif")
    for mask in (empty_mask, other_grid, "missing.tif"):
        assert main(["evaluate", str(score_path), str(mask), "--json", "--quiet"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("uniadrs: error:")


@pytest.mark.parametrize("figure", ["scores", "mask", "roc.tif"])
def test_a_roc_figure_that_is_an_input_or_not_a_png_is_refused(
    scores_and_mask, tmp_path, figure, capsys
):
    score_path, mask_path, _, _ = scores_and_mask
    before = score_path.read_bytes(), mask_path.read_bytes()
    target = {"scores": score_path, "mask": mask_path}.get(figure, tmp_path / figure)
    code = main(["evaluate", str(score_path), str(mask_path), "--quiet", "--roc-png", str(target)])
    assert code == 2
    reason = "must end in .png" if figure == "roc.tif" else "would overwrite the input"
    assert reason in capsys.readouterr().err
    assert (score_path.read_bytes(), mask_path.read_bytes()) == before
    assert not (tmp_path / "roc.tif").exists()
