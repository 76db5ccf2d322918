"""Tests of ``uniadrs info``: a model file's card in readable form or as JSON."""

import json
import os
import sys

from uniadrs_engine.cli.main import EXIT_BROKEN_PIPE, main
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import read_weight_storage, save_ensemble, save_model
from uniadrs_engine.model.network import UniADRS


def _model(tmp_path, storage):
    card = ModelCard(
        name="probe",
        config=get_config("lite8"),
        model_version="2.5",
        description="a model for the info test",
        presets={
            "sar": {"scales": [0.25, 0.5], "tile": 256, "rx_weight": 0.3},
            "visible": {"scales": [1.0], "networks": [1]},
            "lowlight": {"scales": [0.5], "normalisation_scope": "tile", "views": 4},
            "infrared": {"scales": [2.0], "normalisation_scope": "raster", "views": 1},
        },
        training={"steps": 120, "wall_seconds": 90, "retrain_commands": ["uniadrs train x.yaml"]},
        data_sources=[{"name": "generated", "sets": ["noise"], "license": "CC0"}],
        validation={
            "auc": 0.91234,
            "spectral_auc": 0.95,
            "samples": 8,
            "networks": {"spectral": [1], "spatial": None},
        },
    )
    path = tmp_path / f"{storage}.safetensors"
    save_model(path, UniADRS(card.config), card, weight_storage=storage)
    return path


def test_info_prints_the_card(tmp_path, capsys):
    path = _model(tmp_path, "int8")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path} (" in out and "weights stored as int8" in out
    assert "UniADRS model 'probe' v2.5" in out
    assert "description: a model for the info test" in out
    assert "sar            scales 0.25, 0.5, tile 256, global RX weight 0.3" in out
    assert "visible        scales 1, networks 1" in out
    assert "lowlight       scales 0.5, statistics per tile, 4 views" in out
    assert "infrared       scales 2\n" in out
    assert "networks (" not in out  # a single network lists none
    assert "8 samples): auc 0.9123, spectral 0.9500" in out
    assert "\n  spectral samples scored by networks 1\n" in out
    assert "\n  spatial samples scored by every network\n" in out
    assert "training: 120 steps, 1.5 min" in out and "  uniadrs train x.yaml" in out
    assert "  generated (noise): CC0" in out


def test_info_json_is_the_whole_card(tmp_path, capsys):
    path = _model(tmp_path, "float16")
    assert main(["info", str(path), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == "probe" and card["presets"]["sar"]["tile"] == 256


def test_weight_storage_is_read_from_the_header(tmp_path):
    for storage in ("float32", "float16", "int8"):
        assert read_weight_storage(_model(tmp_path, storage)) == storage


def test_info_on_the_default_model_and_on_a_missing_file(tmp_path, capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "uniadrs_default.safetensors" in out and "retrain with:" in out
    # The shipped ensemble lists its networks, numbered as detect --networks takes them.
    assert "networks (detect --networks LIST" in out
    assert "\n  1: uniadrs-" in out and "seed " in out
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def _network_file(tmp_path, name, **options):
    card = ModelCard(name=name, config=get_config("lite8", **options), model_version="1")
    path = tmp_path / f"{name}.safetensors"
    save_model(path, UniADRS(card.config), card)
    return path


def test_info_lists_each_networks_options_and_size(tmp_path, capsys):
    narrow = _network_file(tmp_path, "narrow")
    wide = _network_file(tmp_path, "wide", stem_width=16, magnitude_input=True)
    save_ensemble([narrow, wide], tmp_path / "mixed.safetensors", "mixed")
    assert main(["info", str(tmp_path / "mixed.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "their options change how long each takes" in out and "same time" not in out
    narrow_line, wide_line = [line for line in out.splitlines() if line.startswith("  1: ")] + [
        line for line in out.splitlines() if line.startswith("  2: ")
    ]
    assert "stem_width" not in narrow_line and "magnitude_input, stem_width 16" in wide_line
    sizes = [
        float(line.split(" M parameters")[0].rsplit(", ", 1)[1])
        for line in (narrow_line, wide_line)
    ]
    assert 0 < sizes[0] < sizes[1]

    save_ensemble([narrow, narrow], tmp_path / "alike.safetensors", "alike")
    assert main(["info", str(tmp_path / "alike.safetensors")]) == 0
    assert "each takes the same time" in capsys.readouterr().out


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, monkeypatch):
    # ``uniadrs info | head -1``: the pipe's reader is gone when the card is written
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed_pipe)
    try:
        assert main(["info", str(_model(tmp_path, "float16"))]) == EXIT_BROKEN_PIPE
    finally:
        closed_pipe.close()  # its descriptor now points at os.devnull: closes quietly


def test_a_card_preset_that_detection_refuses_is_named_unusable(tmp_path, capsys):
    """A card written before training checked its presets: info describes the rest."""
    import pytest

    from uniadrs_engine.errors import InputError
    from uniadrs_engine.inference.presets import get_preset

    card = ModelCard(
        name="old",
        config=get_config("lite8"),
        presets={"visible": {"scales": ["abc"]}, "sar": {"scales": [0.5]}},
    )
    path = tmp_path / "old.safetensors"
    save_model(path, UniADRS(card.config), card)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "visible        unusable: preset 'visible': scales ['abc'] is not a list" in out
    assert "sar            scales 0.5" in out
    with pytest.raises(InputError, match="tile 'banana' is not a whole number"):
        get_preset("visible", {"visible": {"tile": "banana"}})
