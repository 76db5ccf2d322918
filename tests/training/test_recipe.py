import dataclasses

import pytest
import torch
import yaml

from tests.training.conftest import trained
from uniadrs_engine.errors import TrainingError
from uniadrs_engine.model.ensemble import MemberMean, select_networks
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.members import validate_ensemble
from uniadrs_engine.training.recipe import EnsembleRecipe, join_recipe


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def recipe_files(tiny_config, tmp_path):
    """Two configurations (a pair and a single network on other spectra) and their recipe."""
    folder = tmp_path / "configs"
    (folder / "more").mkdir(parents=True)
    pair = dataclasses.replace(tiny_config, members=2, output_dir=str(tmp_path / "pair"))
    other = dataclasses.replace(
        tiny_config,
        seed=11,
        spectral_share=0.9,
        spectral_options={"spectrum_sources": {"transplant": 1.0}},
        output_dir=str(tmp_path / "other"),
    )
    write_yaml(folder / "pair.yaml", pair.to_dict())
    write_yaml(folder / "more" / "other.yaml", other.to_dict())
    recipe = write_yaml(
        folder / "recipe.yaml",
        {
            "model_name": "mixed",
            "model_version": "2.0",
            "description": "two simulations",
            "float16_weights": True,  # the key before weight_storage
            "validation_config": "pair.yaml",
            "parts": [
                {"config": "pair.yaml", "note": "the first pair"},
                {"config": "more/other.yaml"},
            ],
        },
    )
    return {"recipe": recipe, "pair": pair, "other": other}


def test_a_recipe_reads_its_parts_relative_to_its_folder(recipe_files):
    recipe = EnsembleRecipe.from_yaml(recipe_files["recipe"])
    assert (recipe.model_name, recipe.model_version, recipe.weight_storage) == (
        "mixed",
        "2.0",
        "float16",
    )
    assert [part.config_path for part in recipe.parts] == ["pair.yaml", "more/other.yaml"]
    assert recipe.member_counts == [2, 1] and recipe.member_total == 3
    assert recipe.parts[0].note == "the first pair" and recipe.parts[1].note == ""
    assert recipe.parts[1].config.spectral_share == 0.9
    assert recipe.validation_config.seed == recipe_files["pair"].seed


@pytest.mark.parametrize(
    "change, message",
    [
        ({"parts": []}, "at least one"),
        ({"parts": [{"note": "no config"}]}, "needs a 'config'"),
        ({"parts": [{"config": "missing.yaml"}]}, "not found"),
        ({"model_vesion": "3"}, "unknown keys"),
        ({"parts": [{"config": "pair.yaml", "presets": ["visual"]}]}, "unknown presets .*visual"),
        ({"parts": [{"config": "pair.yaml", "presets": "visible"}]}, "must list preset names"),
        ({"parts": [{"config": "pair.yaml", "preset": ["visible"]}]}, "unknown part keys"),
    ],
)
def test_a_broken_recipe_is_a_clear_error(recipe_files, change, message):
    path = recipe_files["recipe"]
    data = {**yaml.safe_load(path.read_text()), **change}
    write_yaml(path, data)
    with pytest.raises(TrainingError, match=message):
        EnsembleRecipe.from_yaml(path)


def restrict_second_part(recipe_path, presets):
    data = yaml.safe_load(recipe_path.read_text())
    data["parts"][1]["presets"] = presets
    write_yaml(recipe_path, data)
    return EnsembleRecipe.from_yaml(recipe_path)


def test_every_preset_scores_with_all_parts_unless_a_part_names_its_presets(recipe_files):
    recipe = EnsembleRecipe.from_yaml(recipe_files["recipe"])
    assert set(recipe.preset_networks().values()) == {None}

    recipe = restrict_second_part(recipe_files["recipe"], ["visible", "lowlight"])
    assert recipe.parts[1].presets == ("visible", "lowlight")
    networks = recipe.preset_networks()
    assert networks["visible"] is None and networks["lowlight"] is None
    assert all(networks[name] == (1, 2) for name in ("auto", "hyperspectral", "sar", "infrared"))


def test_a_preset_left_without_networks_is_a_clear_error(recipe_files):
    data = yaml.safe_load(recipe_files["recipe"].read_text())
    for part in data["parts"]:
        part["presets"] = ["visible"]
    write_yaml(recipe_files["recipe"], data)
    # Refused when read, before any network is joined.
    with pytest.raises(TrainingError, match="no part of the recipe scores with the preset 'auto'"):
        EnsembleRecipe.from_yaml(recipe_files["recipe"])


def test_the_members_of_every_part_join_in_one_checked_ensemble(recipe_files, tmp_path):
    recipe = EnsembleRecipe.from_yaml(recipe_files["recipe"])
    pair, other = recipe_files["pair"], recipe_files["other"]
    models = [trained(pair, 0, tmp_path), trained(pair, 1, tmp_path), trained(other, 0, tmp_path)]

    result = join_recipe(recipe, models, tmp_path / "mixed.safetensors")
    loaded = load_model(result.model_path)
    assert isinstance(loaded.network, MemberMean) and loaded.card.member_count == 3
    card = loaded.card
    assert (card.name, card.model_version, card.description) == ("mixed", "2.0", "two simulations")
    first, second = card.training["parts"]
    assert first["config_file"] == "pair.yaml" and first["note"] == "the first pair"
    assert first["seeds"] == [3, 4] and second["seeds"] == [11]
    assert second["config"]["spectral_share"] == 0.9 and "note" not in second
    assert card.training["steps"] == 4 and card.training["wall_seconds"] > 0
    assert 0.0 <= card.validation["auc"] <= 1.0 and card.validation["samples"] == 2
    assert result.validation["auc"] == card.validation["auc"]
    assert "presets" not in first and "presets" not in second

    assert "networks" not in card.validation  # every preset scores with every network

    restricted = restrict_second_part(recipe_files["recipe"], ["visible"])
    # Enough validation samples for both kinds.
    restricted = dataclasses.replace(
        restricted,
        validation_config=dataclasses.replace(
            restricted.validation_config, validation_samples=6, spectral_share=0.5
        ),
    )
    loaded = load_model(join_recipe(restricted, models, tmp_path / "v.safetensors").model_path)
    card = loaded.card
    assert card.training["parts"][1]["presets"] == ["visible"]
    # Spectral samples are scored as the hyperspectral preset scores them (networks 1-2),
    # spatial ones as the visible preset does (all three).
    assert card.validation["networks"] == {"spectral": [1, 2], "spatial": None}
    config = restricted.validation_config
    device = torch.device("cpu")
    pair = validate_ensemble(config, select_networks(loaded.network, [1, 2]), device)
    everything = validate_ensemble(config, loaded.network, device)
    assert {"spectral_auc", "spatial_auc"} <= set(card.validation), card.validation
    for kind, reference in (("spectral", pair), ("spatial", everything)):
        if f"{kind}_auc" in reference:
            # Within float noise: the samples meet in other batches.
            assert card.validation[f"{kind}_auc"] == pytest.approx(
                reference[f"{kind}_auc"], abs=1e-4
            )

    with pytest.raises(TrainingError, match="2 \\+ 1 = 3 model files, got 2"):
        join_recipe(recipe, models[:2], tmp_path / "x.safetensors")
    # The other configuration's network in the pair's place is refused, naming what differs.
    with pytest.raises(TrainingError, match="not member 1 .*spectral"):
        join_recipe(recipe, [models[0], models[2], models[1]], tmp_path / "x.safetensors")


def test_networks_of_different_architectures_do_not_join(recipe_files, tmp_path):
    pair = recipe_files["pair"]
    wide = dataclasses.replace(recipe_files["other"], model="lite8s32")
    write_yaml(recipe_files["recipe"].parent / "more" / "other.yaml", wide.to_dict())
    recipe = EnsembleRecipe.from_yaml(recipe_files["recipe"])
    models = [trained(pair, 0, tmp_path), trained(pair, 1, tmp_path), trained(wide, 0, tmp_path)]
    with pytest.raises(TrainingError, match="share one network configuration"):
        join_recipe(recipe, models, tmp_path / "x.safetensors")


def test_parts_may_differ_in_member_options(recipe_files, tmp_path):
    pair = recipe_files["pair"]
    magnitude = dataclasses.replace(recipe_files["other"], model_options={"magnitude_input": True})
    write_yaml(recipe_files["recipe"].parent / "more" / "other.yaml", magnitude.to_dict())
    recipe = EnsembleRecipe.from_yaml(recipe_files["recipe"])
    models = [
        trained(pair, 0, tmp_path),
        trained(pair, 1, tmp_path),
        trained(magnitude, 0, tmp_path),
    ]
    result = join_recipe(recipe, models, tmp_path / "mixed.safetensors")
    card = load_model(result.model_path).card
    assert [config.magnitude_input for config in card.member_configs] == [False, False, True]
    assert card.training["parts"][1]["config"]["model_options"] == {"magnitude_input": True}
