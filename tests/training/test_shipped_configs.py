"""Every training configuration shipped in configs/ reads and builds its network."""

from pathlib import Path

import pytest

from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.training.config import TrainingConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TRAINING_CONFIGS = sorted(
    path for path in CONFIGS.rglob("*.yaml") if path.name != "default_model_recipe.yaml"
)


def test_the_configurations_are_found():
    assert CONFIGS / "default_model.yaml" in TRAINING_CONFIGS
    assert len(TRAINING_CONFIGS) >= 2


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda path: path.stem)
def test_a_shipped_configuration_reads_and_builds_its_network(path):
    config = TrainingConfig.from_yaml(path)
    network = UniADRS(config.model_config())
    assert network.config.name == config.model
    assert config.steps > 0 and config.validation_backgrounds
    # Each file's paths are taken from its own folder, bases included: all name shared/ data.
    for background in [*config.backgrounds, *config.validation_backgrounds]:
        assert Path(background).is_absolute() and "/shared/backgrounds/" in background
