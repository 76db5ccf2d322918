"""Training configuration files: keys, paths and files that extend others (``base:``)."""

from pathlib import Path

import pytest
import yaml

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.training.config import TrainingConfig, parse_override, read_config_mapping


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


def test_numbers_in_exponent_notation_are_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "backgrounds: [bg]\nlearning_rate: 3e-3\nmin_learning_rate: 1E-5\n"
        "spatial_options: {anomaly_area: [5e-3, 6e-2]}\nmodel_version: 2\n",
        encoding="utf-8",
    )
    config = TrainingConfig.from_yaml(path, overrides=dict([parse_override("weight_decay=1e-6")]))
    assert (config.learning_rate, config.min_learning_rate, config.weight_decay) == (
        0.003,
        1e-05,
        1e-06,
    )
    assert config.spatial_options == {"anomaly_area": [0.005, 0.06]}
    assert config.model_version == 2  # kept as YAML reads it, as recorded configurations are
    assert TrainingConfig(backgrounds=["a"], steps=1e4).steps == 10000
    assert TrainingConfig(backgrounds=["a"], steps=3000.0).steps == 3000


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("steps", "ten", "steps must be a whole number, got 'ten'"),
        ("steps", 2.5, "steps must be a whole number"),
        ("learning_rate", "fast", "learning_rate must be a number"),
        ("learning_rate", -0.01, "learning_rate must be positive"),
        ("validate_every", 0, "validate_every must be positive"),
        ("checkpoint_every", 0, "checkpoint_every must be positive"),
        ("validation_samples", 0, "validation_samples must be positive"),
        ("warmup_steps", -3, "warmup_steps must not be negative"),
        ("threads", -1, "threads must not be negative"),
        ("backgrounds", 5, "backgrounds must be a list of paths"),
        ("faithful_loss", "yes", "faithful_loss must be true or false"),
        ("spatial_options", [1], "spatial_options must be a mapping"),
        ("output_dir", ["a"], "output_dir must be a text"),
        ("model_name", None, "model_name must be a text"),
    ],
)
def test_a_key_of_the_wrong_kind_is_named(key, value, message):
    with pytest.raises(TrainingError, match=message):
        TrainingConfig(**{"backgrounds": ["a"], key: value})


def test_a_path_key_of_the_wrong_kind_is_named_from_a_file(tmp_path):
    for text, message in (
        ("backgrounds: 5\n", "backgrounds must be a list of paths or names, got 5"),
        ("backgrounds: [bg]\noutput_dir: [a, b]\n", "output_dir must be a text"),
    ):
        path = tmp_path / "run.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(TrainingError, match=message):
            TrainingConfig.from_yaml(path)


def test_an_output_folder_named_like_a_date_is_a_folder(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("backgrounds: [bg]\noutput_dir: 2024-05-01\n", encoding="utf-8")
    assert TrainingConfig.from_yaml(path).output_dir == str(tmp_path / "2024-05-01")


def test_tuples_from_the_python_api_are_kept_as_lists():
    config = TrainingConfig(backgrounds=["a"], spatial_options={"crop_scale": (0.5, 2.0)})
    assert config.spatial_options == {"crop_scale": [0.5, 2.0]}


@pytest.mark.parametrize(
    "presets", [{"visible": {"tile": float("inf")}}, {"visible": {"networks": [float("inf")]}}]
)
def test_infinite_preset_values_are_a_one_line_error(presets):
    with pytest.raises(TrainingError, match="presets: preset 'visible'"):
        TrainingConfig(backgrounds=["a"], presets=presets)


def test_faithful_loss_goes_with_the_margin_loss_only():
    with pytest.raises(TrainingError, match="faithful_loss applies to pixel_loss margin"):
        TrainingConfig(backgrounds=["a"], pixel_loss="balanced_bce", faithful_loss=True)
    TrainingConfig(backgrounds=["a"], pixel_loss="margin", faithful_loss=True)


def test_the_backgrounds_nodata_rule_is_checked_with_the_configuration():
    assert TrainingConfig(backgrounds=["a"]).nodata_rule() is None
    rule = TrainingConfig(backgrounds=["a"], nodata="0, 255").nodata_rule()
    assert rule is not None and rule.describe() == "0, 255"
    with pytest.raises(TrainingError, match="nodata: .*'x' is not a number"):
        TrainingConfig(backgrounds=["a"], nodata="0, x")


def test_a_nodata_number_is_its_text_and_equal_rules_read_alike(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("backgrounds: [a]\nnodata: 0\n")
    config = TrainingConfig.from_yaml(path)
    assert config.nodata == "0" and config.nodata_rule().describe() == "0"
    key, value = parse_override("nodata=-9999")
    assert TrainingConfig(backgrounds=["a"], **{key: value}).nodata == "-9999"
    assert TrainingConfig(backgrounds=["a"], nodata="0.0, 0").nodata == "0"
    with pytest.raises(TrainingError, match="nodata must be a text"):
        TrainingConfig(backgrounds=["a"], nodata=[0])
