"""Simulate anomalies and Train UniADRS model, through Processing, against the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import processing
import pytest
import torch
from qgis.core import QgsProcessingException, QgsProcessingFeedback
from safetensors.numpy import load_file

from tests.qgis_plugin.conftest import read_band
from tests.raster_factory import write_netcdf, write_raster
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import load_model, save_model
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.simulation.export import simulate_to_dir
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.preview import simulate_config_to_dir
from uniadrs_engine.training.trainer import train_from_config


@pytest.fixture
def backgrounds(tmp_path) -> Path:
    """A 24-band hyperspectral scene and an RGB tile, in one folder."""
    rng = np.random.default_rng(5)
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    spectra = rng.uniform(100, 1000, size=(24, 1, 1))
    hsi = (spectra * rng.uniform(0.8, 1.2, size=(1, 48, 48))).astype("float32")
    write_raster(folder / "scene.tif", hsi, epsg=None)
    write_raster(
        folder / "tile.tif", rng.integers(40, 200, size=(3, 48, 48)).astype("uint8"), epsg=None
    )
    return folder


def _simulate(backgrounds: Path, output: Path, **extra) -> dict:
    """Three 32 px samples of seed 7 through the Simulate algorithm."""
    parameters = {"BACKGROUND_FOLDER": str(backgrounds), "COUNT": 3, "SEED": 7, "SIZE": 32}
    return processing.run("uniadrs:simulate", {**parameters, **extra, "OUTPUT_FOLDER": str(output)})


def _assert_same_last_sample(folder: Path, engine_folder: Path) -> None:
    for name in ("sample_0002_image.tif", "sample_0002_labels.tif"):
        np.testing.assert_array_equal(read_band(folder / name), read_band(engine_folder / name))


def test_simulate_matches_engine(provider, backgrounds, tmp_path):
    result = _simulate(backgrounds, tmp_path / "samples")
    simulate_to_dir([str(backgrounds)], tmp_path / "engine", n=3, seed=7, size=32)
    assert result["SAMPLE_COUNT"] == 3
    assert Path(result["CONTACT_SHEET"]).is_file()
    _assert_same_last_sample(tmp_path / "samples", tmp_path / "engine")


def test_simulate_a_training_configuration_matches_engine(provider, backgrounds, tmp_path):
    config_path = tmp_path / "run.yaml"
    config_path.write_text(
        f"backgrounds: [{backgrounds}]\nmodel: lite8\ncrop_size: 32\nbatch_size: 2\nseed: 4\n"
        "spatial_options: {normal_count: 1}\n",
        encoding="utf-8",
    )
    for validation in (False, True):
        out = tmp_path / f"plugin_{validation}"
        result = processing.run(
            "uniadrs:simulate",
            {
                "CONFIG": str(config_path),
                "VALIDATION": validation,
                "COUNT": 3,
                "SIZE": 64,  # ignored: the configuration's crop size rules
                "OUTPUT_FOLDER": str(out),
            },
        )
        engine = tmp_path / f"engine_{validation}"
        simulate_config_to_dir(
            TrainingConfig.from_yaml(config_path), engine, n=3, validation=validation
        )
        assert result["SAMPLE_COUNT"] == 3
        for name in ("sample_0002_image.tif", "sample_0002_labels.tif"):
            plugin_band = read_band(out / name)
            assert plugin_band.shape == (32, 32)
            np.testing.assert_array_equal(plugin_band, read_band(engine / name))
    few = processing.run(  # no more validation samples than the validation set holds
        "uniadrs:simulate",
        {
            "CONFIG": str(config_path),
            "VALIDATION": True,
            "COUNT": 40,
            "OUTPUT_FOLDER": str(tmp_path / "validation"),
        },
    )
    assert few["SAMPLE_COUNT"] == TrainingConfig.from_yaml(config_path).validation_samples


def test_simulate_without_backgrounds_is_a_clear_error(provider, tmp_path):
    with pytest.raises(QgsProcessingException, match="Give background rasters"):
        processing.run("uniadrs:simulate", {"OUTPUT_FOLDER": str(tmp_path / "samples")})


def test_a_missing_background_file_is_named(provider, backgrounds, tmp_path):
    missing = tmp_path / "gone.tif"
    present = sorted(backgrounds.glob("*.tif"))[0]
    parameters = {
        "BACKGROUNDS": [str(present), str(missing)],
        "OUTPUT_FOLDER": str(tmp_path / "samples"),
    }
    with pytest.raises(QgsProcessingException, match=f"file not found: {missing}"):
        processing.run("uniadrs:simulate", parameters)


def test_a_container_or_a_subdataset_as_a_background_is_a_clear_error(provider, tmp_path):
    path = write_netcdf(
        tmp_path / "scene.nc", {"radiance": np.ones((16, 16)), "quality": np.ones((16, 16))}
    )
    output = str(tmp_path / "samples")
    with pytest.raises(QgsProcessingException, match="pass one of its subdatasets instead"):
        processing.run("uniadrs:simulate", {"BACKGROUNDS": [str(path)], "OUTPUT_FOLDER": output})
    subdataset = f'NETCDF:"{path}":radiance'
    with pytest.raises(QgsProcessingException, match="background rasters are files"):
        processing.run("uniadrs:simulate", {"BACKGROUNDS": [subdataset], "OUTPUT_FOLDER": output})


def _tiny_yaml(path: Path, backgrounds: Path) -> Path:
    path.write_text(
        "\n".join(
            (
                "model: lite8",
                f"backgrounds: [{backgrounds}]",
                "validation_samples: 2",
                "crop_size: 32",
                "steps: 2",
                "batch_size: 1",
                "warmup_steps: 1",
                "checkpoint_every: 1",
                "validate_every: 2",
                "threads: 1",
                "device: cpu",
                "seed: 3",
                "output_dir: ignored",
            )
        ),
        encoding="utf-8",
    )
    return path


def test_train_from_yaml_matches_engine(provider, backgrounds, tmp_path):
    config_path = _tiny_yaml(tmp_path / "train.yaml", backgrounds)
    result = processing.run(
        "uniadrs:train", {"CONFIG": str(config_path), "OUTPUT_FOLDER": str(tmp_path / "run")}
    )
    config = TrainingConfig.from_yaml(config_path)
    config.output_dir = str(tmp_path / "engine_run")
    engine = train_from_config(config)
    assert result["STEPS_DONE"] == engine.steps == 2
    assert Path(result["MODEL_FILE"]) == tmp_path / "run" / "model.safetensors"
    ours, theirs = load_file(result["MODEL_FILE"]), load_file(engine.model_path)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6)


def _parameters(backgrounds: Path, tmp_path: Path, **extra) -> dict:
    """A tiny training run from the algorithm's parameters (CPU, lite8, 32 px samples)."""
    return {
        "BACKGROUND_FOLDER": str(backgrounds),
        "NETWORK": 0,
        "STEPS": 2,
        "BATCH_SIZE": 1,
        "CROP_SIZE": 32,
        "DEVICE": 2,
        "OUTPUT_FOLDER": str(tmp_path / "run"),
        **extra,
    }


def test_train_cancel_says_how_to_resume(provider, backgrounds, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Resume"):
        processing.run("uniadrs:train", _parameters(backgrounds, tmp_path), feedback=feedback)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_train_refuses_to_replace_a_run_unless_asked(provider, backgrounds, tmp_path):
    first = processing.run("uniadrs:train", _parameters(backgrounds, tmp_path))
    trained = Path(first["MODEL_FILE"]).read_bytes()
    with pytest.raises(QgsProcessingException, match="already holds a training run"):
        processing.run("uniadrs:train", _parameters(backgrounds, tmp_path, SEED=5))
    assert Path(first["MODEL_FILE"]).read_bytes() == trained
    again = processing.run(
        "uniadrs:train", _parameters(backgrounds, tmp_path, SEED=5, OVERWRITE=True)
    )
    assert again["STEPS_DONE"] == 2
    assert Path(again["MODEL_FILE"]).read_bytes() != trained


@pytest.mark.parametrize(
    "parameter,field,choice",
    [
        ("PIXEL_LOSS", "pixel_loss", "balanced_bce"),
        ("NORMALISATION", "normalisation", "whiten"),
        ("WEIGHT_STORAGE", "weight_storage", "int8"),
        ("WEIGHT_STORAGE", "weight_storage", "int4"),
    ],
)
def test_train_from_parameters_with_a_non_default_choice(
    provider, backgrounds, tmp_path, parameter, field, choice
):
    """An enum parameter lists the engine's choices, the configuration default first, and the
    chosen one reaches the training configuration (and, for the normalisation, the card that
    detection reads)."""
    algorithm = provider.algorithm("train")
    options = algorithm.parameterDefinition(parameter).options()
    assert options[0] == TrainingConfig.__dataclass_fields__[field].default
    result = processing.run(
        "uniadrs:train",
        _parameters(backgrounds, tmp_path, STEPS=1, **{parameter: options.index(choice)}),
    )
    card = load_model(result["MODEL_FILE"]).card
    assert card.training["config"][field] == choice
    if field == "normalisation":
        assert card.normalisation == choice
    if field == "weight_storage":
        stored = {value.dtype for value in load_file(result["MODEL_FILE"]).values()}
        assert np.dtype({"int8": np.int8, "int4": np.uint8}[choice]) in stored


def test_train_from_parameters_a_seed_ensemble(provider, backgrounds, tmp_path):
    result = processing.run(
        "uniadrs:train", _parameters(backgrounds, tmp_path, STEPS=1, SEED=10, MEMBERS=2)
    )
    assert Path(result["MODEL_FILE"]) == tmp_path / "run" / "model.safetensors"
    card = load_model(result["MODEL_FILE"]).card
    assert card.member_count == 2 and card.training["seeds"] == [10, 11]
    assert (tmp_path / "run" / "member_1" / "model.safetensors").is_file()
    assert 0.0 <= result["VALIDATION_AUC"] <= 1.0


def test_train_from_a_model_takes_its_network_and_normalisation(provider, backgrounds, tmp_path):
    """'Start from model' fine-tunes: the run starts from the file's weights, with its
    network configuration and normalisation whatever the enums say, at the learning rate
    given."""
    config = get_config("lite8", stem_width=16)
    torch.manual_seed(4)
    start = tmp_path / "start.safetensors"
    save_model(
        start, UniADRS(config), ModelCard(name="start", config=config, normalisation="whiten")
    )
    algorithm = provider.algorithm("train")
    assert algorithm.parameterDefinition("LEARNING_RATE").defaultValue() == (
        TrainingConfig.__dataclass_fields__["learning_rate"].default
    )
    result = processing.run(
        "uniadrs:train",
        _parameters(backgrounds, tmp_path, STEPS=1, INIT_MODEL=str(start), LEARNING_RATE=0.0005),
    )
    card = load_model(result["MODEL_FILE"]).card
    assert card.config == config and card.normalisation == "whiten"
    assert card.training["initialised_from"]["model"] == str(start)
    assert card.training["config"]["learning_rate"] == 0.0005


class _Warnings(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.warnings: list = []

    def pushWarning(self, warning: str) -> None:  # noqa: N802 - QGIS's name
        self.warnings.append(warning)
        super().pushWarning(warning)


def test_training_into_a_temporary_folder_is_warned_of(provider, backgrounds, tmp_path):
    """QGIS deletes its temporary folder when it closes, and hours of training with it."""
    feedback = _Warnings()
    result = processing.run(
        "uniadrs:train",
        _parameters(backgrounds, tmp_path, OUTPUT_FOLDER="TEMPORARY_OUTPUT"),
        feedback=feedback,
    )
    assert Path(result["MODEL_FILE"]).is_file()
    assert any("QGIS deletes when it closes" in warning for warning in feedback.warnings)
    feedback = _Warnings()
    processing.run("uniadrs:train", _parameters(backgrounds, tmp_path), feedback=feedback)
    assert not any("QGIS deletes" in warning for warning in feedback.warnings)


def test_simulate_and_train_take_the_backgrounds_nodata_values(provider, backgrounds, tmp_path):
    from uniadrs_engine.raster.nodata import NodataRule, parse_nodata_values

    result = _simulate(backgrounds, tmp_path / "samples", NODATA="40..90")
    rule = NodataRule(parse_nodata_values("40..90"))
    simulate_to_dir([str(backgrounds)], tmp_path / "engine", n=3, seed=7, size=32, nodata=rule)
    plain = tmp_path / "plain"
    simulate_to_dir([str(backgrounds)], plain, n=3, seed=7, size=32)
    _assert_same_last_sample(tmp_path / "samples", tmp_path / "engine")
    differs = [
        not np.array_equal(
            read_band(Path(result["OUTPUT_FOLDER"]) / f"sample_{index:04d}_labels.tif"),
            read_band(plain / f"sample_{index:04d}_labels.tif"),
        )
        for index in range(3)
    ]
    assert any(differs)  # the rule reached the engine
    trained = processing.run(
        "uniadrs:train", _parameters(backgrounds, tmp_path, STEPS=1, NODATA="40..90")
    )
    assert load_model(trained["MODEL_FILE"]).card.training["config"]["nodata"] == "40..90"
    with pytest.raises(QgsProcessingException, match="'zero' is not a number"):
        processing.run(
            "uniadrs:train", _parameters(backgrounds, tmp_path / "bad", STEPS=1, NODATA="zero")
        )
