import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from uniadrs_engine.cli.main import main
from uniadrs_engine.errors import CancelledError, TrainingError
from uniadrs_engine.model.ensemble import MemberMean
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.checkpoint import CHECKPOINT_FILENAME, load_checkpoint, save_checkpoint
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.members import join_members, member_config
from uniadrs_engine.training.trainer import Trainer, train_from_config


@pytest.fixture
def pair_config(tiny_config):
    return dataclasses.replace(tiny_config, members=2, model_name="pair", model_version="5")


def test_a_two_member_run_writes_the_ensemble_of_two_single_runs(pair_config, tmp_path):
    result = train_from_config(pair_config)
    loaded = load_model(result.model_path)
    assert isinstance(loaded.network, MemberMean)
    card = loaded.card
    assert (card.name, card.model_version, card.member_count) == ("pair", "5", 2)
    assert card.training["seeds"] == [3, 4] and card.training["steps"] == 4
    assert card.training["config"]["members"] == 2
    assert 0.0 <= card.validation["auc"] <= 1.0 and card.validation["samples"] == 2
    assert card.validation["held_out_sources"]
    assert result.validation["auc"] == card.validation["auc"]

    # Member 1 is exactly the single run with seed + 1.
    single = train_from_config(
        dataclasses.replace(pair_config, members=1, seed=4, output_dir=str(tmp_path / "single"))
    )
    single_weights = load_file(str(single.model_path))
    ensemble_weights = load_file(str(result.model_path))
    for name, value in single_weights.items():
        torch.testing.assert_close(ensemble_weights[f"members.1.{name}"], value)


def test_an_interrupted_ensemble_run_resumes_member_by_member(pair_config, tmp_path):
    straight = train_from_config(pair_config)
    resumed_config = dataclasses.replace(pair_config, output_dir=str(tmp_path / "resumed"))
    calls = []

    def cancel_in_member_1() -> bool:
        calls.append(1)
        return len(calls) > 6  # member 0 (4 steps, 5 checks) done, member 1 part-way

    with pytest.raises(CancelledError):
        train_from_config(resumed_config, is_cancelled=cancel_in_member_1)
    assert (tmp_path / "resumed" / "member_0" / "model.safetensors").is_file()
    assert (tmp_path / "resumed" / "member_1" / CHECKPOINT_FILENAME).is_file()
    fractions = []
    resumed = train_from_config(
        resumed_config, resume=True, progress=lambda f, m: fractions.append((f, m))
    )
    assert fractions[-1][0] == pytest.approx(1.0) and "(member 2/2)" in fractions[-1][1]
    expected, found = load_file(str(straight.model_path)), load_file(str(resumed.model_path))
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], atol=1e-5, rtol=1e-4)


def test_members_trained_separately_are_joined_only_if_they_are_the_members(pair_config, tmp_path):
    runs = []
    for index in range(2):
        member = dataclasses.replace(
            member_config(pair_config, index), output_dir=str(tmp_path / f"separate{index}")
        )
        runs.append(train_from_config(member).model_path)
    joined = join_members(pair_config, runs, tmp_path / "joined.safetensors")
    assert load_model(joined.model_path).card.training["seeds"] == [3, 4]
    half_config = dataclasses.replace(pair_config, weight_storage="float16")
    half = join_members(half_config, runs, tmp_path / "half.safetensors").model_path
    assert half.stat().st_size < 0.55 * joined.model_path.stat().st_size
    # Members trained apart from a float16 configuration ("--set members=1") join it too.
    half_member = dataclasses.replace(
        member_config(half_config, 1), weight_storage="float16", output_dir=str(tmp_path / "h1")
    )
    mixed = [runs[0], train_from_config(half_member).model_path]
    assert join_members(half_config, mixed, tmp_path / "mixed.safetensors").steps == 4
    with pytest.raises(TrainingError, match="not member 0 .*seed"):
        join_members(pair_config, runs[::-1], tmp_path / "x.safetensors")
    with pytest.raises(TrainingError, match="expected 2 member models"):
        join_members(pair_config, runs[:1], tmp_path / "x.safetensors")


def test_weight_storage_shrinks_the_model_file(tiny_config, tmp_path):
    full = train_from_config(tiny_config).model_path
    half, quarter = (
        train_from_config(
            dataclasses.replace(
                tiny_config, weight_storage=storage, output_dir=str(tmp_path / storage)
            )
        ).model_path
        for storage in ("float16", "int8")
    )
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert quarter.stat().st_size < 0.3 * full.stat().st_size
    image = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        scores = [
            load_model(p).network(torch.from_numpy(image)).score for p in (full, half, quarter)
        ]
    torch.testing.assert_close(scores[0], scores[1], atol=5e-3, rtol=0)
    # Barely trained networks: a few pixels move by a few hundredths, the map as a whole not.
    difference = (scores[0] - scores[2]).abs()
    assert difference.max() < 0.1 and difference.mean() < 1e-2


def test_the_float16_weights_key_of_earlier_files_still_reads(tiny_config):
    recorded = {**tiny_config.to_dict(), "float16_weights": True}
    del recorded["weight_storage"]
    assert TrainingConfig.from_dict(recorded).weight_storage == "float16"
    assert TrainingConfig.from_dict({**recorded, "weight_storage": "float16"}).weight_storage == (
        "float16"
    )
    with pytest.raises(TrainingError, match="contradicts weight_storage: int8"):
        TrainingConfig.from_dict({**recorded, "weight_storage": "int8"})
    with pytest.raises(TrainingError, match="unknown weight storage 'int2'"):
        TrainingConfig.from_dict({**tiny_config.to_dict(), "weight_storage": "int2"})


def test_members_must_be_a_positive_whole_number(tiny_config):
    for value in (0, -1, 1.5):
        with pytest.raises(TrainingError, match="members"):
            TrainingConfig.from_dict({**tiny_config.to_dict(), "members": value})


def test_a_checkpoint_from_before_new_keys_still_resumes(tiny_config):
    trainer = Trainer(tiny_config, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    path = trainer.checkpoint_path
    state = load_checkpoint(path)
    for key in ("members", "weight_storage"):
        del state["config"][key]
    save_checkpoint(path, state)
    assert Trainer(tiny_config).run(resume=True).steps == 4


def test_a_checkpoint_with_the_float16_weights_key_resumes(tiny_config):
    half = dataclasses.replace(tiny_config, weight_storage="float16")
    trainer = Trainer(half, is_cancelled=lambda: trainer.step >= 2)
    with pytest.raises(CancelledError):
        trainer.run()
    state = load_checkpoint(trainer.checkpoint_path)
    del state["config"]["weight_storage"]
    state["config"]["float16_weights"] = True  # as runs before weight_storage recorded it
    save_checkpoint(trainer.checkpoint_path, state)
    assert Trainer(half).run(resume=True).steps == 4
    with pytest.raises(TrainingError, match="configuration changed.*weight_storage"):
        Trainer(dataclasses.replace(half, weight_storage="int8")).run(resume=True)


def test_train_command_trains_an_ensemble(pair_config, tmp_path, capsys):
    import yaml

    config_path = tmp_path / "pair.yaml"
    data = {**pair_config.to_dict(), "steps": 2, "validate_every": 2}
    config_path.write_text(yaml.safe_dump(data))
    assert main(["train", str(config_path)]) == 0
    output = capsys.readouterr().out
    assert "model:" in output and "validation" in output
    assert load_model(pair_config.output_dir + "/model.safetensors").card.member_count == 2


def test_a_resumed_ensemble_needs_init_model_only_for_members_not_started(
    pair_config, tiny_config, tmp_path
):
    initial = train_from_config(
        dataclasses.replace(tiny_config, steps=1, output_dir=str(tmp_path / "initial"))
    ).model_path
    copy = tmp_path / "init_copy.safetensors"
    copy.write_bytes(initial.read_bytes())
    config = dataclasses.replace(
        pair_config, init_model=str(copy), output_dir=str(tmp_path / "fine_tuned")
    )
    calls = []

    def cancel_in_member_1() -> bool:
        calls.append(1)
        return len(calls) > 6  # member 0 done, member 1 part-way

    with pytest.raises(CancelledError):
        train_from_config(config, is_cancelled=cancel_in_member_1)
    copy.unlink()  # both members hold checkpoints: the file is needed no more
    assert train_from_config(config, resume=True).steps == 4
    with pytest.raises(TrainingError, match="not found"):  # a new member would need it
        train_from_config(dataclasses.replace(config, members=3), resume=True)
