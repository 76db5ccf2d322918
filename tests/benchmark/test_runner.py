"""The benchmark runner on a tiny generated manifest."""

from __future__ import annotations

import csv

import pytest
import torch

from uniadrs_engine.baselines.rx import global_rx
from uniadrs_engine.benchmark.detectors import local_windows_for, make_detectors, preset_for
from uniadrs_engine.benchmark.runner import run_benchmark
from uniadrs_engine.errors import CancelledError, InputError, ModelFileError
from uniadrs_engine.metrics.roc import pooled_auc
from uniadrs_engine.raster.reader import open_raster


def test_rx_detectors_reproduce_the_manifest_and_write_reports(tiny_manifest, tmp_path):
    out = tmp_path / "out"
    fractions = []
    results = run_benchmark(
        tiny_manifest,
        ("rx-global", "rx-local"),
        out,
        progress=lambda fraction, message: fractions.append(fraction),
    )
    assert [(r.scene, r.detector) for r in results] == [
        ("a", "rx-global"),
        ("a", "rx-local"),
        ("b", "rx-global"),
        ("b", "rx-local"),
        ("c", "rx-global"),
        ("c", "rx-local"),
    ]
    assert all(result.ok and result.seconds > 0 for result in results)
    for result in results:
        if result.detector == "rx-global":
            assert result.auc == pytest.approx(result.manifest_rx_auc, abs=1e-3)
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 6
    assert float(rows[0]["auc"]) == pytest.approx(results[0].auc, abs=1e-6)
    assert rows[1]["settings"] == "local RX, windows 5/15 px"
    markdown = (out / "results.md").read_text()
    assert "| hsi | 2 |" in markdown and "| ir | 1 |" in markdown
    assert "Every scene is within 0.001" in markdown
    assert (out / "figure.png").read_bytes()[:4] == b"\x89PNG"
    leftovers = [path.name for path in out.iterdir()]
    assert sorted(leftovers) == ["figure.png", "pooled.csv", "results.csv", "results.md"]

    pooled = {
        (row["modality"], row["detector"]): row
        for row in csv.DictReader((out / "pooled.csv").open())
    }
    assert set(pooled) == {(m, d) for m in ("hsi", "ir") for d in ("rx-global", "rx-local")}
    hsi_images = []
    for name in ("a", "b"):
        with open_raster(tiny_manifest.parent / "hsi" / name / "image.tif") as source:
            image = source.read_window(source.full_window()).data
        with open_raster(tiny_manifest.parent / "hsi" / name / "mask.tif") as source:
            mask = source.read_window(source.full_window()).data[0]
        hsi_images.append((global_rx(image), mask))
    assert float(pooled[("hsi", "rx-global")]["pooled_auc"]) == pytest.approx(
        pooled_auc(hsi_images), abs=1e-5
    )
    assert pooled[("hsi", "rx-global")]["scenes"] == "2"


def test_keep_scores_and_scene_filter(tiny_manifest, tmp_path):
    out = tmp_path / "out"
    results = run_benchmark(
        tiny_manifest, ("rx-global",), out, scenes="ir/*", keep_scores=True, figure=False
    )
    assert len(results) == 1
    assert (out / "scores" / "rx-global" / "ir__c.tif").exists()
    assert results[0].score_path is not None
    assert not (out / "figure.png").exists()


def test_failures_are_recorded_and_cancellation_stops(tiny_manifest, tmp_path):
    # an all-background mask: evaluation fails for that scene, the run goes on
    import numpy as np

    from tests.raster_factory import write_raster

    write_raster(tiny_manifest.parent / "hsi/b/mask.tif", np.zeros((40, 48), np.uint8), epsg=None)
    results = run_benchmark(tiny_manifest, ("rx-global",), tmp_path / "out", figure=False)
    failed = [result for result in results if not result.ok]
    assert [result.scene for result in failed] == ["b"]
    assert "no anomaly pixel" in failed[0].error
    assert "## Errors" in (tmp_path / "out" / "results.md").read_text()
    with pytest.raises(CancelledError):
        run_benchmark(
            tiny_manifest, ("rx-local",), tmp_path / "cancelled", is_cancelled=lambda: True
        )
    assert not (tmp_path / "cancelled" / "results.csv").exists()


def test_detector_choices():
    assert preset_for("hsi") == "hyperspectral" and preset_for("ir") == "infrared"
    assert preset_for("sar") == "sar" and preset_for("visible") == "visible"
    assert preset_for("lidar") == "auto"
    assert local_windows_for("sar") == (31, 93) and local_windows_for("other") == (7, 21)
    with pytest.raises(InputError, match="unknown detector"):
        make_detectors(["rx-median"])
    with pytest.raises(InputError, match="twice"):
        make_detectors(["rx-global", "rx-global"])


def test_uniadrs_detector_with_a_tiny_model(tiny_manifest, tmp_path):
    pytest.importorskip("uniadrs_engine.inference.detector")
    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import save_model
    from uniadrs_engine.model.network import UniADRS

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_path = tmp_path / "tiny.safetensors"
        card = ModelCard(
            name="tiny",
            config=get_config("lite8"),
            model_version="0",
            data_sources=[{"name": "none", "license": "CC0"}],
            training={"steps": 0},
            validation={},
        )
        save_model(model_path, UniADRS(get_config("lite8")), card)
        results = run_benchmark(
            tiny_manifest,
            ("uniadrs", "rx-global"),
            tmp_path / "out",
            model=str(model_path),
            scenes="ir/*",
            device="cpu",
            figure=False,
        )
    finally:
        torch.set_num_threads(threads)
    uniadrs = [result for result in results if result.detector == "uniadrs"]
    assert len(uniadrs) == 1 and uniadrs[0].ok, uniadrs[0].error
    assert 0.0 <= uniadrs[0].auc <= 1.0
    assert uniadrs[0].settings == "UniADRS tiny.safetensors ('tiny' v0), preset infrared"
    with pytest.raises(ModelFileError, match="tiny_missing"):
        run_benchmark(
            tiny_manifest,
            ("uniadrs",),
            tmp_path / "out2",
            model=str(tmp_path / "tiny_missing.safetensors"),
        )


def test_uniadrs_settings_name_a_preset_s_rx_weight_and_networks():
    pytest.importorskip("uniadrs_engine.inference.detector")
    from pathlib import Path

    from uniadrs_engine.benchmark.detectors import UniadrsDetector
    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import LoadedModel

    card = ModelCard(
        name="tiny",
        config=get_config("lite8"),
        presets={"hyperspectral": {"rx_weight": 0.5}, "visible": {"networks": [2, 3]}},
    )
    loaded = LoadedModel(network=None, card=card, path=Path("tiny.safetensors"))  # type: ignore[arg-type]
    detector = UniadrsDetector(name="uniadrs", loaded_model=loaded)
    assert detector.describe("hsi").endswith(
        "preset hyperspectral, fused with global RX at weight 0.5"
    )
    assert detector.describe("sar").endswith("preset sar")
    assert detector.describe("visible").endswith("preset visible (networks 2, 3)")


def test_bad_setups_are_refused_before_anything_runs_or_is_written(tiny_manifest, tmp_path):
    import numpy as np

    from tests.raster_factory import write_raster

    before = tiny_manifest.read_bytes()
    with pytest.raises(InputError, match="would overwrite the input"):
        run_benchmark(tiny_manifest, ("rx-global",), tmp_path / "out", report_path=tiny_manifest)
    assert tiny_manifest.read_bytes() == before
    with pytest.raises(ModelFileError):
        run_benchmark(tiny_manifest, ("uniadrs",), tmp_path / "out", model=tmp_path / "nosuch")
    assert not (tmp_path / "out").exists()
    write_raster(tiny_manifest.parent / "hsi/b/mask.tif", np.zeros((30, 48), np.uint8), epsg=None)
    with pytest.raises(InputError, match=r"scene hsi/b: .*not on the same grid: sizes differ"):
        run_benchmark(tiny_manifest, ("rx-global",), tmp_path / "out")
    assert not (tmp_path / "out").exists()
