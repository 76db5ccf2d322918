"""Runs that start from a model file's weights (``init_model``, fine-tuning)."""

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from uniadrs_engine.cli.main import main
from uniadrs_engine.errors import CancelledError, TrainingError
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.ensemble import MemberMean
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import load_model, save_ensemble, save_model
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.initial_weights import load_initial_weights, settings_of_model
from uniadrs_engine.training.members import member_config
from uniadrs_engine.training.trainer import Trainer, train_from_config


def _model_file(path: Path, seeds=(11,), normalisation="band_max", **options) -> Path:
    """A random network (or an ensemble of several) saved as a model file."""
    config = get_config("lite8", **options)
    networks = []
    for seed in seeds:
        torch.manual_seed(seed)
        networks.append(UniADRS(config))
    network = networks[0] if len(networks) == 1 else MemberMean(networks)
    card = ModelCard(
        name="start",
        config=config,
        model_version="7",
        normalisation=normalisation,
        data_sources=[{"name": "their scenes", "sets": ["a"], "license": "CC-BY-4.0"}],
    )
    if len(networks) > 1:
        card.members = [{"name": f"start-{index}"} for index in range(len(networks))]
    save_model(path, network, card)
    return path


def _assert_same_weights(network, expected: torch.nn.Module) -> None:
    """``network`` (a module or a state dict) holds exactly ``expected``'s weights."""
    found = network.state_dict() if isinstance(network, torch.nn.Module) else network
    wanted = expected.state_dict()
    assert found.keys() == wanted.keys()
    for name in wanted:
        torch.testing.assert_close(found[name], wanted[name], rtol=0, atol=0)


def test_a_run_starts_from_the_model_and_records_where_it_came_from(tiny_config, tmp_path):
    start = _model_file(tmp_path / "start.safetensors")
    config = dataclasses.replace(tiny_config, init_model=str(start))
    trainer = Trainer(config)
    trainer.initialise()
    _assert_same_weights(trainer.network, load_model(start).network)

    result = train_from_config(config)
    card = load_model(result.model_path).card
    origin = card.training["initialised_from"]
    assert origin["model"] == str(start) and origin["network"] is None
    assert (origin["name"], origin["model_version"]) == ("start", "7")
    assert len(origin["sha256"]) == 64
    assert card.training["config"]["init_model"] == str(start)
    # Training moved the weights away from the start, and differently from a random start.
    trained = load_file(str(result.model_path))
    initial = load_model(start).network.state_dict()
    assert any(not torch.equal(trained[name], initial[name]) for name in initial)
    random_start = load_file(
        str(
            train_from_config(
                dataclasses.replace(tiny_config, output_dir=str(tmp_path / "random"))
            ).model_path
        )
    )
    assert any(not torch.equal(trained[name], random_start[name]) for name in trained)


def test_a_random_start_records_no_origin(tiny_config):
    card = load_model(train_from_config(tiny_config).model_path).card
    assert "initialised_from" not in card.training


def test_each_member_starts_from_its_network_of_an_ensemble_file(tiny_config, tmp_path):
    start = _model_file(tmp_path / "pair.safetensors", seeds=(11, 12))
    pair = dataclasses.replace(tiny_config, members=2, init_model=str(start))
    stored = load_model(start).network
    for index in (0, 1):
        trainer = Trainer(member_config(pair, index))
        trainer.initialise()
        _assert_same_weights(trainer.network, stored.members[index])
        assert trainer.initialised_from["network"] == index
    # init_member shifts which networks are taken.
    shifted = Trainer(member_config(dataclasses.replace(pair, members=1, init_member=1), 0))
    shifted.initialise()
    _assert_same_weights(shifted.network, stored.members[1])


def test_a_single_network_file_starts_every_member(tiny_config, tmp_path):
    start = _model_file(tmp_path / "one.safetensors")
    pair = dataclasses.replace(tiny_config, members=2, init_model=str(start))
    second = Trainer(member_config(pair, 1))
    second.initialise()
    _assert_same_weights(second.network, load_model(start).network)


def test_a_missing_ensemble_network_fails_before_any_member_trains(tiny_config, tmp_path):
    start = _model_file(tmp_path / "pair.safetensors", seeds=(11, 12))
    shifted = dataclasses.replace(tiny_config, members=2, init_model=str(start), init_member=1)
    with pytest.raises(TrainingError, match="init_member 2 is outside"):
        train_from_config(shifted)
    assert not (Path(tiny_config.output_dir) / "member_0").exists()


@pytest.mark.parametrize(
    "file_options,message",
    [
        ({"stem_width": 16}, "another network configuration"),
        ({"normalisation": "whiten"}, "trained with normalisation 'whiten'"),
    ],
)
def test_a_model_that_does_not_fit_the_run_is_refused(tiny_config, tmp_path, file_options, message):
    start = _model_file(tmp_path / "other.safetensors", **file_options)
    with pytest.raises(TrainingError, match=message):
        train_from_config(dataclasses.replace(tiny_config, init_model=str(start)))
    assert not Path(tiny_config.output_dir).exists()  # nothing left behind


def test_a_missing_or_pickled_file_is_a_clear_error(tiny_config, tmp_path):
    with pytest.raises(TrainingError, match="init_model: model file not found"):
        train_from_config(dataclasses.replace(tiny_config, init_model=str(tmp_path / "no")))
    pickled = tmp_path / "pickled.pt"
    torch.save({"weights": torch.zeros(2)}, pickled)
    with pytest.raises(TrainingError, match="pickled payload"):
        train_from_config(dataclasses.replace(tiny_config, init_model=str(pickled)))


def test_a_resumed_fine_tuning_run_equals_an_uninterrupted_one(tiny_config, tmp_path):
    """Resume restores the checkpoint; it neither needs nor rereads the initial model."""
    start = _model_file(tmp_path / "start.safetensors")
    config = dataclasses.replace(tiny_config, init_model=str(start))
    straight = train_from_config(config)

    resumed_config = dataclasses.replace(config, output_dir=str(tmp_path / "resumed"))
    trainer = Trainer(resumed_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    origin = trainer.initialised_from
    start.unlink()
    resumed = Trainer(resumed_config).run(resume=True)
    expected, found = load_file(str(straight.model_path)), load_file(str(resumed.model_path))
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-4)
    assert load_model(resumed.model_path).card.training["initialised_from"] == origin


def test_init_model_paths_are_taken_from_the_yaml_file_and_default_is_kept(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    path = folder / "fine.yaml"
    path.write_text(
        yaml.safe_dump({"backgrounds": ["bg"], "init_model": "../models/start.safetensors"}),
        encoding="utf-8",
    )
    config = TrainingConfig.from_yaml(path)
    assert config.init_model == str((tmp_path / "models" / "start.safetensors").resolve())
    assert TrainingConfig.from_yaml(path, {"init_model": "default"}).init_model == "default"
    assert TrainingConfig.from_yaml(path).init_member == 0
    with pytest.raises(TrainingError, match="init_member must be"):
        TrainingConfig(backgrounds=["bg"], init_member=-1)


def test_settings_of_model_give_the_configuration_keys_that_fit_it(tiny_config, tmp_path):
    start = _model_file(tmp_path / "wide.safetensors", stem_width=16, normalisation="whiten")
    settings = settings_of_model(start)
    assert settings == {
        "model": "lite8",
        "model_options": {"stem_width": 16},
        "normalisation": "whiten",
    }
    config = dataclasses.replace(tiny_config, **settings, init_model=str(start))
    weights = load_initial_weights(start, 0, config.model_config(), config.normalisation)
    assert weights.provenance["name"] == "start"
    assert train_from_config(config).steps == tiny_config.steps


def test_each_network_of_a_mixed_ensemble_starts_runs_of_its_own_configuration(
    tiny_config, tmp_path
):
    plain, magnitude = (
        _model_file(tmp_path / "plain.safetensors", seeds=(1,)),
        _model_file(tmp_path / "magnitude.safetensors", seeds=(2,), magnitude_input=True),
    )
    mixed = tmp_path / "mixed.safetensors"
    save_ensemble([plain, magnitude], mixed, "mixed")
    assert settings_of_model(mixed)["model_options"] == {}
    settings = settings_of_model(mixed, index=1)
    assert settings["model_options"] == {"magnitude_input": True}

    config = dataclasses.replace(tiny_config, **settings)
    weights = load_initial_weights(mixed, 1, config.model_config(), config.normalisation)
    assert weights.provenance["network"] == 1
    _assert_same_weights(weights.state, load_model(magnitude).network)
    with pytest.raises(TrainingError, match="network 0 has another network configuration"):
        load_initial_weights(mixed, 0, config.model_config(), config.normalisation)


def test_a_fine_tuned_model_names_its_start_and_inherits_its_data_sources(
    tiny_config, tmp_path, capsys
):
    start = _model_file(tmp_path / "start.safetensors")
    result = train_from_config(dataclasses.replace(tiny_config, init_model=str(start)))
    card = load_model(result.model_path).card
    inherited = [source for source in card.data_sources if source.get("via")]
    assert inherited == [
        {"name": "their scenes", "sets": ["a"], "license": "CC-BY-4.0", "via": "start v7"}
    ]
    assert main(["info", str(result.model_path)]) == 0
    out = capsys.readouterr().out
    assert f"started from: start v7, {start}" in out
    assert "their scenes (a): CC-BY-4.0 [through the starting model start v7]" in out
