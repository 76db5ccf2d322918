"""The run's simulators: their options are checked at the start, in one line each."""

from __future__ import annotations

import dataclasses

import pytest

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.training import simulators
from uniadrs_engine.training.simulators import build_simulation
from uniadrs_engine.training.trainer import train_from_config


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"spatial_options": {"anomaly_area": [0.5, 0.1]}},
            r"invalid spatial_options: anomaly_area must be two numbers \[low, high\] with "
            r"0 <= low <= high <= 1, not \[0.5, 0.1\]",
        ),
        ({"spatial_options": {"anomaly_area": 0.05}}, "invalid spatial_options: anomaly_area"),
        ({"spatial_options": {"anomaly_area": [0.01]}}, "invalid spatial_options: anomaly_area"),
        ({"spatial_options": {"normal_count": "abc"}}, "invalid spatial_options: normal_count"),
        ({"spatial_options": {"crop_scale": [2, 1]}}, "invalid spatial_options: crop_scale"),
        (
            {"spectral_options": {"abundance_range": 5}},
            "invalid spectral_options: abundance_range must be two numbers",
        ),
        (
            {"spectral_options": {"warp": {"scale_range": [0, 1]}}},
            "invalid spectral_options: warp scale_range",
        ),
    ],
)
def test_bad_option_values_are_one_line_training_errors(tiny_config, options, message):
    with pytest.raises(TrainingError, match=message):
        build_simulation(dataclasses.replace(tiny_config, **options))


def test_misspelt_options_of_a_simulator_not_built_are_refused(tiny_config, backgrounds):
    visible_only = dataclasses.replace(
        tiny_config,
        backgrounds=[str(backgrounds["root"] / "rgb")],
        validation_backgrounds=[str(backgrounds["held_out"] / "rgb.tif")],
        spectral_options={"abundance_rnage": [0.5, 1.0]},
    )
    with pytest.raises(
        TrainingError, match=r"invalid spectral_options: unknown option\(s\) \['abundance_rnage'\]"
    ):
        build_simulation(visible_only)
    spectral_only = dataclasses.replace(
        tiny_config, spectral_share=1.0, spatial_options={"normal_cuont": 3}
    )
    with pytest.raises(
        TrainingError, match=r"invalid spatial_options: unknown option\(s\) \['normal_cuont'\]"
    ):
        build_simulation(spectral_only)
    with pytest.raises(TrainingError, match="the options are patch_size, normal_count"):
        build_simulation(dataclasses.replace(tiny_config, spectral_options={"size": 64}))


def test_an_unforeseen_failure_of_an_option_value_is_one_line(tiny_config, monkeypatch):
    def failing(*args, **kwargs):
        raise ValueError("high - low < 0")

    monkeypatch.setattr(simulators, "SpatialSimulator", failing)
    with pytest.raises(TrainingError, match="invalid spatial_options: high - low < 0"):
        build_simulation(tiny_config)


def test_a_bad_option_stops_training_before_its_folder_is_made(tiny_config, tmp_path):
    config = dataclasses.replace(
        tiny_config,
        spatial_options={"crop_scale": [2, 1]},
        output_dir=str(tmp_path / "never"),
    )
    with pytest.raises(TrainingError, match="invalid spatial_options: crop_scale"):
        train_from_config(config)
    assert not (tmp_path / "never").exists()
