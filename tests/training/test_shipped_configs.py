"""Every training configuration shipped in configs/ reads and builds its network."""

from pathlib import Path

import pytest

from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.recipe import EnsembleRecipe

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: Ensemble recipes (the shipped model's and candidates') end in ``_recipe.yaml``.
RECIPES = sorted(CONFIGS.rglob("*_recipe.yaml"))
TRAINING_CONFIGS = sorted(set(CONFIGS.rglob("*.yaml")) - set(RECIPES))


def test_the_configurations_are_found():
    assert CONFIGS / "default_model.yaml" in TRAINING_CONFIGS
    assert len(TRAINING_CONFIGS) >= 2
    assert CONFIGS / "default_model_recipe.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.stem)
def test_a_recipe_reads_with_every_part(path):
    recipe = EnsembleRecipe.from_yaml(path)
    assert recipe.parts and all(part.config.steps > 0 for part in recipe.parts)
    networks = recipe.preset_networks()
    assert networks["visible"] and networks["hyperspectral"]


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda path: path.stem)
def test_a_shipped_configuration_reads_and_builds_its_network(path):
    config = TrainingConfig.from_yaml(path)
    network = UniADRS(config.model_config())
    assert network.config.name == config.model
    assert config.steps > 0 and config.validation_backgrounds
    # Each file's paths are taken from its own folder, bases included: all name shared/ data.
    for background in [*config.backgrounds, *config.validation_backgrounds]:
        assert Path(background).is_absolute() and "/shared/backgrounds/" in background
