from __future__ import annotations

import numpy as np
import processing
import pytest
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback

from tests.qgis_plugin.conftest import assert_on_grid_of, read_band
from tests.raster_factory import write_raster
from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
from uniadrs_engine.raster.writer import SCORE_NODATA

ALGORITHM = "uniadrs:detectanomalies"


def _parameters(scene, model, output, **extra):
    return {"INPUT": str(scene), "MODEL": str(model), "DEVICE": 2, "OUTPUT": str(output), **extra}


def _recording_feedback():
    """A feedback whose info messages are kept in the returned list."""
    feedback = QgsProcessingFeedback()
    messages = []
    feedback.pushInfo = messages.append  # type: ignore[method-assign]
    return feedback, messages


def test_detect_matches_engine_on_input_grid(provider, scene, tiny_model, tmp_path):
    feedback, messages = _recording_feedback()
    result = processing.run(
        ALGORITHM,
        _parameters(scene, tiny_model, tmp_path / "scores.tif", BANDS=[1, 3, 4], PRESET=3),
        feedback=feedback,
    )
    engine = detect_raster(
        scene,
        tmp_path / "engine.tif",
        DetectionOptions(model=str(tiny_model), bands=[1, 3, 4], preset="sar", device="cpu"),
    )
    layer = assert_on_grid_of(result["OUTPUT"], scene)
    assert layer.bandCount() == 1
    np.testing.assert_allclose(
        read_band(result["OUTPUT"]), read_band(engine.output_path), rtol=1e-6
    )
    assert result["SCORE_MAX"] == pytest.approx(engine.score_max)
    assert result["TILE_COUNT"] == engine.tile_count
    assert result["DEVICE_USED"] == engine.device
    log = "\n".join(messages)
    assert "plugin-test-lite8" in log  # the model card summary
    assert "tile(s) in" in log and "Device: cpu" in log


def test_detect_with_scales_and_settings_device(provider, scene, tiny_model, tmp_path):
    result = processing.run(
        ALGORITHM,
        {
            "INPUT": str(scene),
            "MODEL": str(tiny_model),
            "SCALES": "0.5, 1",
            "MEMORY_MB": 256,
            "OUTPUT": str(tmp_path / "scores.tif"),
        },
    )
    engine = detect_raster(
        scene,
        tmp_path / "engine.tif",
        DetectionOptions(model=str(tiny_model), scales=(0.5, 1.0), device="auto", memory_mb=256),
    )
    np.testing.assert_allclose(
        read_band(result["OUTPUT"]), read_band(engine.output_path), rtol=1e-6
    )


def test_detect_with_global_rx_fused(provider, scene, tiny_model, tmp_path):
    feedback, messages = _recording_feedback()
    result = processing.run(
        ALGORITHM,
        _parameters(scene, tiny_model, tmp_path / "scores.tif", RX_WEIGHT=0.3),
        feedback=feedback,
    )
    engine = detect_raster(
        scene,
        tmp_path / "engine.tif",
        DetectionOptions(model=str(tiny_model), device="cpu", rx_weight=0.3),
    )
    np.testing.assert_allclose(
        read_band(result["OUTPUT"]), read_band(engine.output_path), rtol=1e-6
    )
    assert "+ global RX (weight 0.3)" in "\n".join(messages)


def test_detect_with_tile_statistics(provider, scene, tiny_model, tmp_path):
    """'Each tile's window' reaches the engine as the normalisation scope ``tile``."""
    feedback, messages = _recording_feedback()
    tiling = dict(TILE=32, HALO=8)
    result = processing.run(
        ALGORITHM,
        _parameters(scene, tiny_model, tmp_path / "scores.tif", STATISTICS=2, **tiling),
        feedback=feedback,
    )
    options = dict(model=str(tiny_model), device="cpu", tile=32, halo=8)
    engine = detect_raster(
        scene, tmp_path / "t.tif", DetectionOptions(normalisation_scope="tile", **options)
    )
    raster = detect_raster(scene, tmp_path / "r.tif", DetectionOptions(**options))
    scores = read_band(result["OUTPUT"])
    np.testing.assert_allclose(scores, read_band(engine.output_path), rtol=1e-6)
    assert np.abs(scores - read_band(raster.output_path)).max() > 1e-4


def test_statistics_choices_are_the_engine_s_scopes():
    from qgis_plugin.algorithms.detect import STATISTICS_SCOPES
    from uniadrs_engine.raster.normalisation import NORMALISATION_SCOPES

    assert STATISTICS_SCOPES[0][0] is None
    assert tuple(scope for scope, _ in STATISTICS_SCOPES[1:]) == NORMALISATION_SCOPES


def test_detect_with_views(provider, scene, tiny_model, tmp_path):
    """The views parameter reaches the engine; 'The preset's' leaves the preset's (1)."""
    from qgis_plugin.algorithms.detect import VIEW_CHOICES

    feedback, messages = _recording_feedback()
    index = [count for count, _ in VIEW_CHOICES].index(4)
    result = processing.run(
        ALGORITHM,
        _parameters(scene, tiny_model, tmp_path / "scores.tif", VIEWS=index, SCALES="1"),
        feedback=feedback,
    )
    options = dict(model=str(tiny_model), device="cpu", scales=[1.0])
    engine = detect_raster(scene, tmp_path / "e.tif", DetectionOptions(views=4, **options))
    single = detect_raster(scene, tmp_path / "s.tif", DetectionOptions(**options))
    scores = read_band(result["OUTPUT"])
    np.testing.assert_allclose(scores, read_band(engine.output_path), rtol=1e-6)
    assert np.abs(scores - read_band(single.output_path)).max() > 1e-4
    assert "; 4 views a tile;" in "\n".join(messages)
    default = processing.run(
        ALGORITHM, _parameters(scene, tiny_model, tmp_path / "d.tif", SCALES="1")
    )
    np.testing.assert_allclose(
        read_band(default["OUTPUT"]), read_band(single.output_path), rtol=1e-6
    )


def test_detect_with_a_fusion_power(provider, scene, tiny_model, tmp_path):
    """The fusion power reaches the engine; empty leaves the preset's (1, the average)."""
    feedback, messages = _recording_feedback()
    result = processing.run(
        ALGORITHM,
        _parameters(scene, tiny_model, tmp_path / "p.tif", FUSION_POWER=4.0, SCALES="0.5,1"),
        feedback=feedback,
    )
    options = dict(model=str(tiny_model), device="cpu", scales=[0.5, 1.0])
    engine = detect_raster(scene, tmp_path / "e.tif", DetectionOptions(fusion_power=4.0, **options))
    average = detect_raster(scene, tmp_path / "a.tif", DetectionOptions(**options))
    scores = read_band(result["OUTPUT"])
    np.testing.assert_allclose(scores, read_band(engine.output_path), rtol=1e-6)
    assert np.abs(scores - read_band(average.output_path)).max() > 1e-4
    assert "; fusion power 4;" in "\n".join(messages)
    default = processing.run(
        ALGORITHM, _parameters(scene, tiny_model, tmp_path / "d.tif", SCALES="0.5,1")
    )
    np.testing.assert_allclose(
        read_band(default["OUTPUT"]), read_band(average.output_path), rtol=1e-6
    )


def test_view_choices_are_the_engine_s_counts():
    from qgis_plugin.algorithms.detect import VIEW_CHOICES
    from uniadrs_engine.inference.views import VIEW_COUNTS

    assert VIEW_CHOICES[0][0] is None
    assert tuple(count for count, _ in VIEW_CHOICES[1:]) == VIEW_COUNTS


def test_model_name_is_looked_up_in_the_model_folder(provider, scene, tiny_model, tmp_path):
    from processing.core.ProcessingConfig import ProcessingConfig

    from qgis_plugin.settings import MODEL_FOLDER_SETTING

    previous = ProcessingConfig.getSetting(MODEL_FOLDER_SETTING)
    ProcessingConfig.setSettingValue(MODEL_FOLDER_SETTING, str(tiny_model.parent))
    try:
        result = processing.run(
            ALGORITHM, _parameters(scene, tiny_model.name, tmp_path / "scores.tif")
        )
    finally:
        ProcessingConfig.setSettingValue(MODEL_FOLDER_SETTING, previous or "")
    assert (tmp_path / "scores.tif").exists() and result["TILE_COUNT"] >= 1


def test_no_default_model_says_so(provider, scene, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIADRS_DEFAULT_MODEL", str(tmp_path / "missing.safetensors"))
    with pytest.raises(QgsProcessingException, match="No default model is shipped"):
        processing.run(ALGORITHM, {"INPUT": str(scene), "OUTPUT": str(tmp_path / "s.tif")})
    assert not (tmp_path / "s.tif").exists()


def test_cancelling_leaves_no_output(provider, scene, tiny_model, tmp_path):
    feedback = QgsProcessingFeedback()
    original = feedback.setProgress

    def cancel_once_started(value: float) -> None:
        original(value)
        if value > 0:
            feedback.cancel()

    feedback.setProgress = cancel_once_started  # type: ignore[method-assign]
    output = tmp_path / "scores.tif"
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALGORITHM, _parameters(scene, tiny_model, output), feedback=feedback)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scene.tif"]


def test_non_raster_input_is_a_clear_error(provider, tiny_model, tmp_path):
    vector = tmp_path / "points.geojson"
    vector.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(QgsProcessingException, match="not a raster layer QGIS can open"):
        processing.run(ALGORITHM, _parameters(vector, tiny_model, tmp_path / "s.tif"))
    with pytest.raises(QgsProcessingException, match="file not found"):
        processing.run(
            ALGORITHM, _parameters(tmp_path / "nope.tif", tiny_model, tmp_path / "s.tif")
        )


def test_raster_without_valid_pixels_is_a_clear_error(provider, tiny_model, tmp_path):
    empty = write_raster(
        tmp_path / "empty.tif", np.full((3, 16, 16), -1.0, dtype=np.float32), nodata=-1.0
    )
    with pytest.raises(QgsProcessingException, match="valid"):
        processing.run(ALGORITHM, _parameters(empty, tiny_model, tmp_path / "s.tif"))
    assert not (tmp_path / "s.tif").exists()


def test_bands_that_hold_no_value_are_left_out_with_a_warning(provider, tiny_model, tmp_path):
    image = np.random.default_rng(5).random((4, 20, 22)).astype(np.float32)
    image[3] = -32768.0
    path = write_raster(tmp_path / "dead_band.tif", image, nodata=-32768.0)
    feedback = QgsProcessingFeedback()
    warnings = []
    feedback.pushWarning = warnings.append  # type: ignore[method-assign]
    result = processing.run(
        ALGORITHM, _parameters(path, tiny_model, tmp_path / "s.tif"), feedback=feedback
    )
    engine = detect_raster(
        path,
        tmp_path / "engine.tif",
        DetectionOptions(model=str(tiny_model), bands=[1, 2, 3], device="cpu"),
    )
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert warnings == ["UniADRS: band 4 left out: it holds no value"]


def test_band_out_of_range_is_a_clear_error(provider, scene, tiny_model, tmp_path):
    with pytest.raises(QgsProcessingException, match="band 9 is out of range"):
        processing.run(ALGORITHM, _parameters(scene, tiny_model, tmp_path / "s.tif", BANDS=[2, 9]))


def test_bad_scales_text(provider, scene, tiny_model, tmp_path):
    with pytest.raises(QgsProcessingException, match="comma-separated"):
        processing.run(ALGORITHM, _parameters(scene, tiny_model, tmp_path / "s.tif", SCALES="a,b"))


def test_nodata_pixels_stay_nodata(provider, tiny_model, tmp_path):
    image = np.random.default_rng(3).random((3, 24, 24)).astype(np.float32)
    image[:, :4, :4] = -5.0
    path = write_raster(tmp_path / "holes.tif", image, nodata=-5.0)
    result = processing.run(ALGORITHM, _parameters(path, tiny_model, tmp_path / "s.tif"))
    scores = read_band(result["OUTPUT"])
    assert (scores[:4, :4] == SCORE_NODATA).all()
    assert (scores[4:, 4:] != SCORE_NODATA).all()
    assert isinstance(QgsProcessingContext(), QgsProcessingContext)


def test_an_ensemble_model_file_scores_the_mean_of_its_members(provider, scene, tmp_path):
    import torch

    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import save_ensemble, save_model
    from uniadrs_engine.model.network import UniADRS

    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        card = ModelCard(name=f"member{seed}", config=get_config("lite8"))
        members.append(tmp_path / f"member{seed}.safetensors")
        save_model(members[-1], UniADRS(card.config), card)
    pair = tmp_path / "pair.safetensors"
    save_ensemble(members, pair, "plugin-test-pair")
    # One scale: the score raster holds the network's scores themselves (no rank fusion).
    maps = [
        read_band(
            processing.run(ALGORITHM, _parameters(scene, model, tmp_path / f"{i}.tif", SCALES="1"))[
                "OUTPUT"
            ]
        )
        for i, model in enumerate([*members, pair])
    ]
    assert not np.allclose(maps[0], maps[1])
    np.testing.assert_allclose(maps[2], (maps[0] + maps[1]) / 2, atol=1e-5)
    # NETWORKS: the pair's second network alone scores as its own file does.
    second = read_band(
        processing.run(
            ALGORITHM, _parameters(scene, pair, tmp_path / "second.tif", SCALES="1", NETWORKS="2")
        )["OUTPUT"]
    )
    np.testing.assert_allclose(second, maps[1], atol=1e-6)
    with pytest.raises(QgsProcessingException, match="network 3 does not exist"):
        processing.run(
            ALGORITHM, _parameters(scene, pair, tmp_path / "third.tif", SCALES="1", NETWORKS="3")
        )
    with pytest.raises(QgsProcessingException, match="bad network list item"):
        processing.run(
            ALGORITHM, _parameters(scene, pair, tmp_path / "bad.tif", SCALES="1", NETWORKS="x")
        )
