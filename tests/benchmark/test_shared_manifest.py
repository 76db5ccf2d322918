"""Opt-in (``pytest -m benchmark``): global RX reproduces the shared manifest's ``rx_auc``.

The manifest defines ``rx_auc`` as the pixel AUC (scikit-learn) of global RX with the global
covariance (ddof=1) and the pseudo-inverse on all bands; ``rx_raster`` + ``evaluate_rasters``
must match it within 1e-3 on every scene. Set ``UNIADRS_SHARED_MANIFEST`` to use another copy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from uniadrs_engine.baselines.rx import rx_raster
from uniadrs_engine.metrics.evaluation import evaluate_rasters

MANIFEST = Path(
    os.environ.get(
        "UNIADRS_SHARED_MANIFEST",
        Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "manifest.json",
    )
)


def _scenes() -> list:
    if not MANIFEST.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{MANIFEST} not found"))]
    scenes = json.loads(MANIFEST.read_text())["scenes"]
    return [pytest.param(scene, id=f"{scene['modality']}/{scene['scene']}") for scene in scenes]


@pytest.mark.benchmark
@pytest.mark.parametrize("scene", _scenes())
def test_global_rx_reproduces_manifest_rx_auc(scene, tmp_path):
    root = MANIFEST.parent
    rx_raster(root / scene["image"], tmp_path / "rx.tif", mode="global")
    result = evaluate_rasters(tmp_path / "rx.tif", root / scene["mask"])
    assert result.n_ignored == 0
    assert result.auc == pytest.approx(scene["rx_auc"], abs=1e-3)
