"""Training configuration files: keys, paths and files that extend others (``base:``)."""

from pathlib import Path

import pytest
import yaml

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.training.config import TrainingConfig, read_config_mapping


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def family(tmp_path):
    """A base in one folder, a child in a subfolder and a grandchild beside the child."""
    base = write_yaml(
        tmp_path / "base.yaml",
        {
            "backgrounds": ["data/hsi", "data/visible"],
            "validation_backgrounds": ["data/held_out.tif"],
            "spectral_share": 0.6,
            "spectral_options": {"abundance_range": [0.5, 1.0], "spectrum_sources": {"permute": 1}},
            "steps": 100,
            "output_dir": "runs/base",
            "seed": 1,
        },
    )
    child = write_yaml(
        tmp_path / "experiments" / "child.yaml",
        {
            "base": "../base.yaml",
            "spectral_options": {"spectrum_sources": {"foreign": 1}},
            "output_dir": "runs/child",
            "seed": 2,
        },
    )
    grandchild = write_yaml(
        tmp_path / "experiments" / "grandchild.yaml",
        {"base": "child.yaml", "steps": 7, "backgrounds": "more/hsi"},
    )
    return {"root": tmp_path, "base": base, "child": child, "grandchild": grandchild}


def test_a_file_holds_only_what_it_changes_and_each_path_is_taken_from_its_own_file(family):
    root = family["root"]
    child = TrainingConfig.from_yaml(family["child"])
    assert child.backgrounds == [str(root / "data/hsi"), str(root / "data/visible")]
    assert child.validation_backgrounds == [str(root / "data/held_out.tif")]
    assert child.output_dir == str(root / "experiments" / "runs" / "child")
    assert (child.seed, child.steps, child.spectral_share) == (2, 100, 0.6)
    # A key replaces the base's whole value, mappings included.
    assert child.spectral_options == {"spectrum_sources": {"foreign": 1}}


def test_bases_chain_and_overrides_come_last(family):
    root = family["root"]
    grandchild = TrainingConfig.from_yaml(family["grandchild"], overrides={"seed": 9})
    assert grandchild.backgrounds == [str(root / "experiments" / "more" / "hsi")]
    assert grandchild.output_dir == str(root / "experiments" / "runs" / "child")
    assert (grandchild.steps, grandchild.seed, grandchild.spectral_share) == (7, 9, 0.6)
    assert "base" not in read_config_mapping(family["grandchild"])
    assert "base" not in grandchild.to_dict()


def test_a_file_without_a_base_reads_as_before(family):
    base = TrainingConfig.from_yaml(family["base"])
    assert base.output_dir == str(family["root"] / "runs" / "base") and base.seed == 1


@pytest.mark.parametrize(
    "base_value, message",
    [
        ("missing.yaml", "training configuration not found"),
        (["../base.yaml"], "must name one configuration file"),
        ("grandchild.yaml", "bases form a loop"),
    ],
)
def test_a_broken_base_is_a_clear_error(family, base_value, message):
    data = yaml.safe_load(family["child"].read_text())
    write_yaml(family["child"], {**data, "base": base_value})
    with pytest.raises(TrainingError, match=message):
        TrainingConfig.from_yaml(family["grandchild"])


def test_a_base_that_is_not_a_mapping_is_a_clear_error(family):
    family["base"].write_text("- a list\n", encoding="utf-8")
    with pytest.raises(TrainingError, match="must be a mapping of keys"):
        TrainingConfig.from_yaml(family["child"])


def test_a_file_and_bases_without_backgrounds_say_so(tmp_path):
    path = write_yaml(tmp_path / "empty.yaml", {"steps": 10})
    with pytest.raises(TrainingError, match="names no backgrounds"):
        TrainingConfig.from_yaml(write_yaml(tmp_path / "child.yaml", {"base": path.name}))
