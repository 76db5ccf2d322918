"""``scripts/package_default_model.py``: a recipe's networks joined into one model file."""

import dataclasses
import sys

import pytest
import yaml

from tests.scripts.conftest import load_script
from tests.training.conftest import backgrounds, tiny_config, trained  # noqa: F401 (fixtures)
from uniadrs_engine.model.default import DEFAULT_MODEL_FILENAME
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.recipe import EnsembleRecipe


@pytest.fixture(scope="module")
def package_default_model():
    return load_script("package_default_model")


def test_a_candidate_recipe_is_packaged_where_asked_with_its_preset_networks(
    package_default_model,
    tiny_config,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    folder = tmp_path / "configs"
    folder.mkdir()
    pair = dataclasses.replace(tiny_config, members=2, output_dir=str(tmp_path / "pair"))
    added = dataclasses.replace(tiny_config, seed=11, output_dir=str(tmp_path / "added"))
    (folder / "pair.yaml").write_text(yaml.safe_dump(pair.to_dict()), encoding="utf-8")
    (folder / "added.yaml").write_text(yaml.safe_dump(added.to_dict()), encoding="utf-8")
    recipe = folder / "candidate.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model_name": "candidate",
                "model_version": "9.9",
                "description": "a pair and a visible-only network",
                "weight_storage": "float16",
                "validation_config": "pair.yaml",
                "parts": [
                    {"config": "pair.yaml"},
                    {"config": "added.yaml", "presets": ["visible"]},
                ],
            }
        ),
        encoding="utf-8",
    )
    models = [trained(pair, 0, tmp_path), trained(pair, 1, tmp_path), trained(added, 0, tmp_path)]
    shipped = package_default_model.REPO / "resources" / "models" / DEFAULT_MODEL_FILENAME
    shipped_bytes = shipped.read_bytes()
    output = tmp_path / "out" / "V.safetensors"  # its folder is made
    arguments = ["package", "--recipe", str(recipe), "--output", str(output), *map(str, models)]
    monkeypatch.setattr(sys, "argv", arguments)

    package_default_model.main()

    card = load_model(output).card
    assert (card.name, card.model_version, card.member_count) == ("candidate", "9.9", 3)
    assert "networks" not in card.presets["visible"]  # all three
    assert card.presets["hyperspectral"]["networks"] == [1, 2]
    assert card.training["parts"][1]["presets"] == ["visible"]
    assert shipped.read_bytes() == shipped_bytes  # the shipped model is left alone


def test_retrain_commands_name_each_part_from_the_repository_root(package_default_model):
    module = package_default_model
    shipped = EnsembleRecipe.from_yaml(module.RECIPE)
    commands = module.retrain_commands(shipped)
    assert commands[0].startswith("uniadrs train configs/default_model.yaml ")
    assert commands[-1] == ".venv/bin/python scripts/package_default_model.py"
    candidate_path = module.REPO / "configs" / "experiments" / "visible_preset_sizes_recipe.yaml"
    candidate = module.retrain_commands(EnsembleRecipe.from_yaml(candidate_path), candidate_path)
    assert candidate[0].startswith("uniadrs train configs/default_model.yaml ")
    assert candidate[-2].startswith(
        "uniadrs train configs/experiments/visible_preset_sizes_spatial.yaml "
    )
    assert "--recipe configs/experiments/visible_preset_sizes_recipe.yaml" in candidate[-1]
