import dataclasses
import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.raster_factory import write_raster
from uniadrs_engine.cli.main import main
from uniadrs_engine.errors import CancelledError, InputError, TrainingError
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.raster.normalisation import WHITENING_NAME, normalise_input
from uniadrs_engine.training.batches import collate
from uniadrs_engine.training.checkpoint import CHECKPOINT_FILENAME, load_checkpoint
from uniadrs_engine.training.config import TrainingConfig, parse_override, weight_differences
from uniadrs_engine.training.trainer import Trainer, learning_rate_at, train_from_config


def test_a_run_writes_a_model_with_its_card(tiny_config):
    result = train_from_config(tiny_config)
    assert result.steps == 4
    loaded = load_model(result.model_path)
    card = loaded.card
    assert card.training["steps"] == 4
    assert card.training["config"]["seed"] == 3
    assert 0.0 <= card.validation["auc"] <= 1.0
    assert [entry["step"] for entry in card.validation["history"]] == [2, 4]
    names = {source["name"] for source in card.data_sources}
    assert names == {"user data"}
    assert card.data_sources[0]["files"] == 3  # held-out files are not training data
    assert card.validation["held_out_sources"][0]["files"] == 2
    assert card.validation["held_out"] is True
    log_path = result.model_path.parent / "train_log.csv"
    assert b"\r\r\n" not in log_path.read_bytes()  # text mode would double a "\r\n"
    log = log_path.read_text().splitlines()
    assert len(log) == 5


@pytest.mark.parametrize("pixel_loss", ["margin", "balanced_bce"])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_run(tiny_config, tmp_path, pixel_loss):
    tiny_config = dataclasses.replace(tiny_config, pixel_loss=pixel_loss)
    straight = train_from_config(tiny_config)

    resumed_config = dataclasses.replace(tiny_config, output_dir=str(tmp_path / "resumed"))
    trainer = Trainer(resumed_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError, match="cancelled at step 2"):
        trainer.run()
    assert (tmp_path / "resumed" / CHECKPOINT_FILENAME).is_file()
    assert not (tmp_path / "resumed" / "model.safetensors").exists()

    resumed = Trainer(resumed_config).run(resume=True)
    expected = load_file(str(straight.model_path))
    found = load_file(str(resumed.model_path))
    assert expected.keys() == found.keys()
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-4)
    assert resumed.validation["auc"] == pytest.approx(straight.validation["auc"], abs=1e-4)


def test_an_earlier_run_is_not_replaced_unasked(tiny_config):
    trainer = Trainer(tiny_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    with pytest.raises(InputError, match="already holds a training run"):
        train_from_config(tiny_config)
    ensemble = dataclasses.replace(tiny_config, members=2)
    with pytest.raises(InputError, match="already holds a training run"):
        train_from_config(ensemble)  # its folder holds a checkpoint too
    assert train_from_config(tiny_config, overwrite=True).steps == 4


def test_resume_refuses_a_changed_configuration(tiny_config):
    trainer = Trainer(tiny_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    changed = dataclasses.replace(tiny_config, learning_rate=0.5)
    with pytest.raises(TrainingError, match="configuration changed"):
        Trainer(changed).run(resume=True)


def test_mixed_band_counts_in_one_batch():
    spectral = SimpleNamespace(
        image=np.random.rand(270, 16, 16).astype("f4"), labels=np.zeros((16, 16))
    )
    spatial = SimpleNamespace(
        image=np.random.rand(3, 16, 16).astype("f4"), labels=np.ones((16, 16))
    )
    images, labels = collate([spectral, spatial], in_channels=270)
    assert images.shape == (2, 270, 16, 16)
    assert torch.equal(images[1, 3], images[1, 0])  # channel k is band k mod 3
    assert labels.dtype == torch.int64


def test_whitening_runs_whiten_every_sample_and_record_it_for_inference(tiny_config):
    """``normalisation: whiten`` whitens each sample of a batch by its own statistics (a
    mixed batch too) and the model card tells inference to do the same."""
    rng = np.random.default_rng(0)
    spectral = SimpleNamespace(image=rng.random((270, 16, 16), "f4"), labels=np.zeros((16, 16)))
    spatial = SimpleNamespace(image=rng.random((3, 16, 16), "f4"), labels=np.zeros((16, 16)))
    images, _ = collate([spectral, spatial], in_channels=270, normalisation=WHITENING_NAME)
    expected = normalise_input(spatial.image, WHITENING_NAME)
    np.testing.assert_allclose(images[1, :3].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(images[0].numpy(), normalise_input(spectral.image, WHITENING_NAME))
    result = train_from_config(dataclasses.replace(tiny_config, normalisation=WHITENING_NAME))
    card = load_model(result.model_path).card
    assert card.normalisation == WHITENING_NAME
    assert card.training["config"]["normalisation"] == WHITENING_NAME
    assert 0.0 <= card.validation["auc"] <= 1.0


def test_learning_rate_schedule():
    config = TrainingConfig(
        backgrounds=["x"], steps=100, warmup_steps=10, learning_rate=1.0, min_learning_rate=0.0
    )
    assert learning_rate_at(0, config) == pytest.approx(0.1)
    assert learning_rate_at(10, config) == pytest.approx(1.0)
    assert learning_rate_at(55, config) == pytest.approx(0.5)
    assert learning_rate_at(99, config) < 0.01


def test_configuration_errors_are_clear(tmp_path):
    with pytest.raises(TrainingError, match="unknown training configuration keys"):
        TrainingConfig.from_dict({"backgrounds": ["a"], "stepz": 3})
    with pytest.raises(TrainingError, match="crop_size"):
        TrainingConfig(backgrounds=["a"], crop_size=30)
    with pytest.raises(TrainingError, match="not found"):
        TrainingConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backgrounds: [unclosed")
    with pytest.raises(TrainingError, match="not valid YAML"):
        TrainingConfig.from_yaml(bad)
    with pytest.raises(TrainingError, match="unknown pixel_loss"):
        TrainingConfig(backgrounds=["a"], pixel_loss="hinge")
    with pytest.raises(TrainingError, match="unknown normalisation 'pca'"):
        TrainingConfig(backgrounds=["a"], normalisation="pca")


def test_overrides_replace_keys_and_take_paths_from_the_current_folder(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "train.yaml"
    path.write_text("backgrounds: [data]\nseed: 1\noutput_dir: runs/a\n")
    plain = TrainingConfig.from_yaml(path)
    assert plain.backgrounds == [str(folder / "data")] and plain.seed == 1
    monkeypatch.chdir(tmp_path)
    overrides = dict(
        parse_override(text)
        for text in ("seed=7", "output_dir=runs/b", "backgrounds=other", "spectral_share=0.6")
    )
    changed = TrainingConfig.from_yaml(path, overrides=overrides)
    assert changed.seed == 7 and changed.spectral_share == 0.6
    assert changed.output_dir == str(tmp_path / "runs" / "b")
    assert changed.backgrounds == [str(tmp_path / "other")]
    assert parse_override("exclude=[a, b]") == ("exclude", ["a", "b"])
    for text in ("seed", "=3", "seed=[1"):
        with pytest.raises(TrainingError, match="override"):
            parse_override(text)


def test_train_command_end_to_end(tiny_config, backgrounds, tmp_path, capsys):
    data = tiny_config.to_dict()
    data["backgrounds"] = ["backgrounds"]
    data["validation_backgrounds"] = ["backgrounds/held_out"]
    data["output_dir"] = "cli_run"
    data["steps"] = 2
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(data))
    assert main(["train", str(config_path)]) == 0
    output = capsys.readouterr().out
    assert "model:" in output and (tmp_path / "cli_run" / "model.safetensors").is_file()
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "training configuration not found" in capsys.readouterr().err
    # --set replaces keys, the same way on --resume.
    other = ["--set", "seed=11", "--set", f"output_dir={tmp_path / 'seed11'}"]
    assert main(["train", str(config_path), *other]) == 0
    card = load_model(tmp_path / "seed11" / "model.safetensors").card
    assert card.training["config"]["seed"] == 11
    assert main(["train", str(config_path), *other, "--resume"]) == 0
    # Starting again over a finished run is refused unless asked for.
    trained = (tmp_path / "seed11" / "model.safetensors").read_bytes()
    assert main(["train", str(config_path), *other]) == 2
    assert "already holds a training run (checkpoint.pt)" in capsys.readouterr().err
    assert (tmp_path / "seed11" / "model.safetensors").read_bytes() == trained
    assert main(["train", str(config_path), *other, "--overwrite"]) == 0
    with pytest.raises(SystemExit):  # argparse: one or the other
        main(["train", str(config_path), *other, "--overwrite", "--resume"])
    assert main(["train", str(config_path), "--set", "seed"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_spectral_options_reach_the_simulator(tiny_config):
    from uniadrs_engine.training.simulators import build_simulation

    config = dataclasses.replace(
        tiny_config,
        spectral_options={"spectrum_sources": {"transplant": 1.0}, "abundance_range": [0.5, 1.0]},
    )
    setup = build_simulation(config)
    spectral = setup.training.spectral
    assert spectral.abundance_range == (0.5, 1.0)
    with pytest.raises(TrainingError, match="invalid spectral_options"):
        build_simulation(dataclasses.replace(tiny_config, spectral_options={"colour": 1}))


def test_spatial_options_reach_the_simulator(tiny_config):
    from uniadrs_engine.training.simulators import build_simulation

    config = dataclasses.replace(
        tiny_config,
        spectral_share=0.0,
        spatial_options={"anomaly_area": [0.01, 0.03], "normal_count": 3},
    )
    setup = build_simulation(config)
    spatial = setup.training.spatial
    assert spatial.anomaly_area == (0.01, 0.03)
    assert spatial.normal_count == 3
    sample = setup.training.sample(np.random.default_rng(0))
    assert sample.kind == "spatial"
    with pytest.raises(TrainingError, match="invalid spatial_options"):
        build_simulation(dataclasses.replace(tiny_config, spatial_options={"colour": 1}))


def test_weight_differences_ignore_run_settings_and_default_missing_keys():
    config = TrainingConfig(backgrounds=["/data"], seed=1)
    recorded = {**config.to_dict(), "threads": 4, "output_dir": "elsewhere", "seed": 2}
    assert weight_differences(config, recorded) == ["seed"]
    del recorded["pixel_loss"]  # recorded before the key existed: counts as the default
    assert weight_differences(config, recorded) == ["seed"]
    recorded["pixel_loss"] = "balanced_bce"
    assert weight_differences(config, recorded) == ["pixel_loss", "seed"]


def test_a_first_ctrl_c_stops_the_train_command_with_a_checkpoint(
    tiny_config, backgrounds, tmp_path, capsys, monkeypatch
):
    data = tiny_config.to_dict()
    data["backgrounds"] = ["backgrounds"]
    data["validation_backgrounds"] = ["backgrounds/held_out"]
    data["output_dir"] = "interrupted"
    data["checkpoint_every"] = 100  # only the interruption writes one before the end
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(data))
    train_step = Trainer.train_step

    def step_then_ctrl_c(trainer):
        record = train_step(trainer)
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return record

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)
    assert main(["train", str(config_path), "--set", "seed=4"]) == 130
    error = capsys.readouterr().err
    assert "cancelled at step 2" in error
    assert f"uniadrs train {config_path} --set seed=4 --resume" in error
    checkpoint = load_checkpoint(tmp_path / "interrupted" / CHECKPOINT_FILENAME)
    assert checkpoint["step"] == 2
    monkeypatch.setattr(Trainer, "train_step", train_step)
    assert main(["train", str(config_path), "--set", "seed=4", "--resume"]) == 0
    assert load_model(tmp_path / "interrupted" / "model.safetensors").card.training["steps"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_that_cannot_start_leaves_no_folder(tiny_config, tmp_path):
    missing = dataclasses.replace(
        tiny_config, backgrounds=[str(tmp_path / "nowhere")], output_dir=str(tmp_path / "run")
    )
    with pytest.raises(InputError, match="nowhere"):
        train_from_config(missing)
    assert not (tmp_path / "run").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    with pytest.raises(InputError, match="is a file"):
        train_from_config(dataclasses.replace(tiny_config, output_dir=str(a_file)))


def test_validation_on_the_training_backgrounds_is_not_called_held_out(tiny_config, capsys):
    shared = dataclasses.replace(tiny_config, validation_backgrounds=[], steps=2)
    result = train_from_config(shared)
    assert load_model(result.model_path).card.validation["held_out"] is False
    assert main(["info", str(result.model_path)]) == 0
    out = capsys.readouterr().out
    assert "in the training backgrounds, none held out" in out and "held-out" not in out


def test_samples_with_pixels_without_data_train_with_them_weighted_out(tiny_config, tmp_path):
    """Backgrounds whose corners hold no data: the network is given the weights that keep
    the filled pixels out of its instance statistics (as at inference), gradients flow
    through them, and batches without such pixels are given none."""
    rng = np.random.default_rng(8)
    root = tmp_path / "with_nodata"
    root.mkdir()
    rows, cols = np.mgrid[:64, :64]
    corner = rows + cols < 40  # a corner without data, as a turned footprint leaves
    for name in ("a", "b"):
        rgb = rng.integers(40, 200, size=(3, 64, 64)).astype("uint8")
        rgb[:, corner] = 0
        write_raster(root / f"{name}.tif", rgb, nodata=0, epsg=None)
    config = dataclasses.replace(
        tiny_config, backgrounds=[str(root)], spectral_share=0.0, batch_size=2
    )
    trainer, seen, records = _train_recording_weights(config, 6)
    assert all(np.isfinite(record.loss) for record in records)
    weighted = [weights for weights in seen if weights is not None]
    assert weighted, "no batch held a pixel without data"
    for weights in weighted:
        assert weights.shape == (2, 1, 32, 32)
        assert 0 < float(weights.mean()) < 1
        assert set(torch.unique(weights).tolist()) <= {0.0, 1.0}
    assert all(torch.isfinite(p).all() for p in trainer.network.parameters())
    # backgrounds that hold data everywhere (tiny_config's): the network gets no weights, so
    # such training (the shipped model's) computes exactly what it did before weights existed
    _, seen, _ = _train_recording_weights(tiny_config, 4)
    assert seen == [None] * 4


def _train_recording_weights(config, steps):
    """Trains ``steps`` steps; returns the trainer, the ``valid`` weights the network got in
    each step and the steps' records."""
    trainer = Trainer(config)
    trainer.initialise()
    trainer.prepare_data()
    seen = []
    forward = trainer.network.forward

    def recording(images, *args, valid=None, **kwargs):
        seen.append(None if valid is None else valid.detach().clone())
        return forward(images, *args, valid=valid, **kwargs)

    trainer.network.forward = recording
    records = [trainer.train_step() for _ in range(steps)]
    return trainer, seen, records


def test_a_date_in_a_text_key_is_kept_as_its_text(tiny_config, tmp_path):
    """YAML reads 2024-01-05 as a date, which neither a card nor a checkpoint holds."""
    config_path = tmp_path / "dated.yaml"
    settings = {**tiny_config.to_dict(), "steps": 2}
    text = yaml.safe_dump(settings) + "model_version: 2024-01-05\ndescription: 2024-01-06\n"
    config_path.write_text(text)
    config = TrainingConfig.from_yaml(config_path)
    assert (config.model_version, config.description) == ("2024-01-05", "2024-01-06")
    trainer = Trainer(config, is_cancelled=lambda: trainer.step >= 1)
    with pytest.raises(CancelledError):
        trainer.run()
    result = Trainer(config).run(resume=True)  # the checkpoint loads
    assert load_model(result.model_path).card.model_version == "2024-01-05"


def test_presets_are_checked_before_training(tiny_config):
    for presets, message in (
        ({"visible": {"scales": ["abc"]}}, "scales \\['abc'\\] is not a list of numbers"),
        ({"visible": {"tile": "banana"}}, "tile 'banana' is not a whole number"),
        ({"visible": {"scales": [100]}}, "scale"),
        ({"visible": "fast"}, "expected a mapping"),
        ({"visible": {"networks": [3]}}, "names network 3, and the run trains 2"),
    ):
        with pytest.raises(TrainingError, match=f"presets: .*{message}"):
            dataclasses.replace(tiny_config, members=2, presets=presets)
    dataclasses.replace(tiny_config, members=2, presets={"visible": {"networks": [2]}})


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_seeds_out_of_numpy_s_range_are_refused(tiny_config, seed):
    with pytest.raises(TrainingError, match="seed must lie in"):
        dataclasses.replace(tiny_config, seed=seed)
    with pytest.raises(TrainingError, match="each of the 2 member"):
        dataclasses.replace(tiny_config, seed=2**63 - 1, members=2)


def test_a_configuration_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"backgrounds: [rgb]\ndescription: Mod\xe8le\n")
    with pytest.raises(TrainingError, match="not UTF-8 text"):
        TrainingConfig.from_yaml(path)


def test_a_diverging_run_stops_with_a_clear_error(tiny_config):
    config = dataclasses.replace(tiny_config, learning_rate=1e12, warmup_steps=0, steps=6)
    with pytest.raises(TrainingError, match="not finite"):
        Trainer(config).run()


def test_resume_accepts_a_moved_folder_and_refuses_fewer_steps(tiny_config, tmp_path):
    trainer = Trainer(tiny_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    with pytest.raises(TrainingError, match="it is at step 2, beyond steps 1"):
        Trainer(dataclasses.replace(tiny_config, steps=1)).run(resume=True)
    moved = tmp_path / "moved"
    os.rename(tiny_config.output_dir, moved)
    renamed = dataclasses.replace(tiny_config, output_dir=str(moved), description="moved")
    assert Trainer(renamed).run(resume=True).steps == 4


def test_overwrite_removes_the_earlier_run_of_every_member(tiny_config, tmp_path):
    ensemble = dataclasses.replace(tiny_config, members=2, steps=2)
    train_from_config(ensemble)
    again = dataclasses.replace(ensemble, seed=9)
    calls = []

    def stop_in_the_first_member() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError):
        train_from_config(again, overwrite=True, is_cancelled=stop_in_the_first_member)
    # the second member's earlier checkpoint (seed 4) is gone: resuming trains it anew
    assert train_from_config(again, resume=True).steps == 2


def test_the_card_of_a_rounded_model_holds_the_figures_of_its_stored_weights(tiny_config):
    from uniadrs_engine.training.validation import evaluate

    config = dataclasses.replace(tiny_config, weight_storage="int4")
    result = train_from_config(config)
    card = load_model(result.model_path).card
    probe = Trainer(config)
    probe.prepare_data()  # the same fixed validation samples
    stored = evaluate(
        load_model(result.model_path).network,
        probe.validation_samples,
        probe.device,
        normalisation=config.normalisation,
    )
    assert card.validation["auc"] == pytest.approx(stored["auc"], abs=1e-9)
    assert card.validation["stored_weights"] == "int4"
    assert result.validation["auc"] == card.validation["auc"]
    assert card.validation["history"][-1]["step"] == 4  # training's record is kept


def test_resume_refuses_backgrounds_that_changed(tiny_config, backgrounds):
    trainer = Trainer(tiny_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    extra = backgrounds["root"] / "added.tif"
    write_raster(extra, np.random.default_rng(5).random((3, 40, 40)).astype(np.float32))
    with pytest.raises(TrainingError, match=r"backgrounds changed .*added .*added\.tif"):
        Trainer(tiny_config).run(resume=True)
    extra.unlink()
    kept = backgrounds["root"] / "rgb" / "b.tif"
    moved = kept.with_name("b.tif.away")
    kept.rename(moved)
    with pytest.raises(TrainingError, match=r"backgrounds changed .*removed .*b\.tif"):
        Trainer(tiny_config).run(resume=True)
    moved.rename(kept)
    assert Trainer(tiny_config).run(resume=True).steps == 4
