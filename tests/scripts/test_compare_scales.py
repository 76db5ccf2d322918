"""scripts/compare_scales.py: how a candidate's scales, tiling and fused parts are read."""

import argparse

import pytest

from tests.training.conftest import backgrounds, tiny_config, trained  # noqa: F401 (fixtures)


def test_a_scale_list_is_one_pass_per_scale_with_the_default_tiling(compare_scales):
    candidate = compare_scales.parse_scale_set("1,2")
    assert candidate.name == "1,2"
    assert candidate.passes == (
        compare_scales.Pass(1.0, None, None),
        compare_scales.Pass(2.0, None, None),
    )


def test_tiling_and_fused_parts(compare_scales):
    candidate = compare_scales.parse_scale_set("1,2+2.5@tile=48@halo=40")
    assert [tuple(item) for item in candidate.passes] == [
        (1.0, None, None, None, None),
        (2.0, None, None, None, None),
        (2.5, 48, 40, None, None),
    ]
    assert compare_scales.parse_scale_set("0.5@halo=8").passes == (
        compare_scales.Pass(0.5, None, 8),
    )


def test_a_normalisation_scope_is_part_of_the_pass(compare_scales):
    candidate = compare_scales.parse_scale_set("0.5,1@tile=64@halo=32@norm=tile")
    assert candidate.passes == (
        compare_scales.Pass(0.5, 64, 32, "tile"),
        compare_scales.Pass(1.0, 64, 32, "tile"),
    )
    # The same scale and tiling with another scope is another pass.
    assert len(compare_scales.parse_scale_set("1+1@norm=tile+1@norm=raster").passes) == 3


def test_views_are_part_of_the_pass(compare_scales):
    candidate = compare_scales.parse_scale_set("1,2@views=4")
    assert candidate.passes == (
        compare_scales.Pass(1.0, None, None, None, 4),
        compare_scales.Pass(2.0, None, None, None, 4),
    )
    assert len(compare_scales.parse_scale_set("1+1@views=2+1@views=8").passes) == 3


@pytest.mark.parametrize(
    "text",
    [
        "1@tile=",
        "1@tiles=48",
        "1@tile=-4",
        "1@tile=4.5",
        "1,2+2",
        "1+1",
        "1@norm=crop",
        "1@norm",
        "1@views=3",
        "1@views=",
    ],
)
def test_malformed_settings_and_repeated_passes_are_refused(compare_scales, text):
    with pytest.raises(argparse.ArgumentTypeError):
        compare_scales.parse_scale_set(text)


def test_scales_are_checked_as_the_detector_checks_them(compare_scales):
    with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
        compare_scales.parse_scale_set("0")
    with pytest.raises(argparse.ArgumentTypeError, match="could not convert"):
        compare_scales.parse_scale_set("1,x")
    # The same scale with another tiling is another pass.
    assert len(compare_scales.parse_scale_set("1+1@tile=64").passes) == 2


def test_the_preset_supplies_what_a_pass_does_not_name(compare_scales, tmp_path):
    from pathlib import Path

    import numpy as np
    import torch

    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import LoadedModel
    from uniadrs_engine.model.network import UniADRS
    from uniadrs_engine.simulation.sample import SimulatedSample

    torch.manual_seed(0)
    network = UniADRS(get_config("lite8")).eval()
    card = ModelCard(name="tiny", config=network.config, presets={"visible": {"rx_weight": 0.5}})
    model = LoadedModel(network=network, card=card, path=Path("tiny.safetensors"))
    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 40), dtype=np.float32)
    image[:, 10:16, 10:16] += 2.0
    labels = np.zeros((40, 40), dtype=np.uint8)
    labels[10:16, 10:16] = 1
    sample = SimulatedSample(image=image, labels=labels, kind="spatial", source="x")
    passes = compare_scales.parse_scale_set("1").passes
    maps = {
        preset: compare_scales.score_passes([sample], model, passes, tmp_path, preset)[passes[0]][0]
        for preset in ("auto", "visible")
    }
    # The card's visible preset fuses global RX's rank in; auto scores with the network alone.
    assert not np.allclose(maps["auto"], maps["visible"])
    assert np.isfinite(maps["visible"]).all()


def test_per_sample_aucs_are_written_for_each_set_and_candidate(
    compare_scales,
    tiny_config,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    import json
    import sys

    import numpy as np
    import yaml

    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config.to_dict()), encoding="utf-8")
    model = trained(tiny_config, 0, tmp_path)
    output = tmp_path / "per_sample.json"
    arguments = ["compare_scales", "--model", str(model), "--configs", str(config_path)]
    arguments += ["--scale-sets", "1", "0.5,1", "--samples", "3", "--min-bands", "1"]
    monkeypatch.setattr(sys, "argv", [*arguments, "--per-sample", str(output)])

    compare_scales.main()

    record = json.loads(output.read_text())
    assert record["model"] == str(model)
    aucs = record["sets"][str(config_path)]
    assert set(aucs) == {"1", "0.5,1"}
    assert all(len(values) == 3 for values in aucs.values())
    assert all(0.0 <= value <= 1.0 for value in np.concatenate(list(aucs.values())))
