"""The shipped default model: present, small, documented by its card, and usable."""

import dataclasses
from pathlib import Path

import numpy as np
import torch

from uniadrs_engine.inference.presets import PRESETS, get_preset
from uniadrs_engine.model.default import default_model_path
from uniadrs_engine.model.model_file import load_model, read_weight_storage
from uniadrs_engine.raster.normalisation import normalise_input
from uniadrs_engine.training.config import TrainingConfig, weight_differences
from uniadrs_engine.training.recipe import VALIDATION_PRESETS, EnsembleRecipe

REPO = Path(__file__).resolve().parents[2]

EXCLUDED_SETS = {"cas-hokkaido-landslide", "bijie-landslide"}


def test_default_model_is_shipped_small_and_documented():
    path = default_model_path()
    assert path.is_file(), "resources/models/uniadrs_default.safetensors must be shipped"
    # Sixteen networks of 0.87-0.99 M parameters stored as int4: about 8.6 MB.
    assert path.stat().st_size < 9 * 1024 * 1024
    card = load_model("default").card
    assert set(card.presets) == set(PRESETS)
    assert card.training["steps"] >= 1000 and card.training["wall_seconds"] > 0
    commands = card.training["retrain_commands"]
    assert commands[0].startswith("uniadrs train configs/default_model.yaml")
    assert commands[-1].endswith("scripts/package_default_model.py")
    assert 0.5 < card.validation["auc"] <= 1.0
    assert {"spectral_auc", "spatial_auc"} <= set(card.validation)
    # Each kind of validation sample is scored as the preset for such rasters scores it.
    assert card.validation["networks"] == {
        kind: card.presets[preset].get("networks") for kind, preset in VALIDATION_PRESETS.items()
    }
    used_sets = {name for source in card.data_sources for name in source["sets"]}
    assert used_sets and not used_sets & EXCLUDED_SETS
    assert all(source["license"] for source in card.data_sources)
    # Only hyperspectral and visible backgrounds: SAR and infrared stay zero-shot.
    backgrounds = [
        str(path) for part in card.training["parts"] for path in part["config"]["backgrounds"]
    ]
    assert backgrounds and all(
        path.rstrip("/").endswith(("hsi", "visible")) for path in backgrounds
    )


def test_default_model_card_presets_are_the_built_in_ones_with_the_recipes_networks():
    """The card's presets override the built-in table, so a preset changed in
    ``inference/presets.py`` reaches the default model only through a repackaged card; each
    scores with the networks the recipe's parts give it."""
    card = load_model("default").card
    recipe = EnsembleRecipe.from_yaml(REPO / "configs" / "default_model_recipe.yaml")
    for name, preset in PRESETS.items():
        expected = dataclasses.replace(preset, networks=recipe.preset_networks()[name])
        assert get_preset(name, card.presets) == expected, name


def test_default_model_scores_an_image():
    """A small bright square on a flat background, given in the card's input normalisation."""
    model = load_model("default")
    image = np.full((3, 64, 64), 0.3, dtype=np.float32)
    image[:, 28:36, 28:36] = 0.9
    normalised = normalise_input(image, model.card.normalisation)
    with torch.inference_mode():
        # Score only, as inference does: the members' stem widths differ (32 and 64), so the
        # ensemble has no common feature map.
        output = model.network(torch.from_numpy(normalised)[None], features=False)
        score = output.score[0, 0].numpy()
    assert np.isfinite(score).all()
    assert score[28:36, 28:36].mean() > np.median(score)


def test_the_recipe_describes_the_shipped_model(monkeypatch):
    """configs/default_model_recipe.yaml and its configurations made the shipped model."""
    recipe = EnsembleRecipe.from_yaml(REPO / "configs" / "default_model_recipe.yaml")
    card = load_model("default").card
    monkeypatch.chdir(REPO)  # the card's paths are relative to the repository
    assert (card.name, card.model_version) == (recipe.model_name, recipe.model_version)
    assert card.member_count == recipe.member_total
    assert read_weight_storage(default_model_path()) == recipe.weight_storage
    parts = card.training["parts"]
    assert [part["config_file"] for part in parts] == [p.config_path for p in recipe.parts]
    member_seeds = [member["training"]["seed"] for member in card.members]
    expected_seeds = []
    for part, recorded in zip(recipe.parts, parts):
        assert weight_differences(part.config, recorded["config"]) == []
        seeds = [part.config.seed + index for index in range(part.config.members)]
        assert recorded["seeds"] == seeds
        expected_seeds.extend(seeds)
    assert member_seeds == expected_seeds
    first = recipe.parts[0]
    other = TrainingConfig.from_yaml(
        REPO / "configs" / first.config_path, overrides={"seed": first.config.seed + 1}
    )
    assert weight_differences(other, parts[0]["config"]) == ["seed"]
