"""Tiny generated backgrounds and a fast training configuration."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.raster_factory import write_raster
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.members import member_config
from uniadrs_engine.training.trainer import train_from_config


@pytest.fixture
def backgrounds(tmp_path: Path) -> dict:
    """A hyperspectral scene, and two RGB tiles (one with an object mask)."""
    rng = np.random.default_rng(5)
    root = tmp_path / "backgrounds"
    (root / "hsi").mkdir(parents=True)
    (root / "rgb").mkdir()
    (root / "held_out").mkdir()
    spectra = rng.uniform(100, 1000, size=(24, 1, 1))
    hsi = spectra * rng.uniform(0.8, 1.2, size=(1, 48, 48))
    write_raster(root / "hsi" / "scene.tif", hsi.astype("float32"), epsg=None)
    for name in ("a", "b"):
        rgb = rng.integers(40, 200, size=(3, 64, 64)).astype("uint8")
        write_raster(root / "rgb" / f"{name}.tif", rgb, epsg=None)
    objects = np.zeros((64, 64), dtype="uint16")
    objects[10:20, 10:24] = 1
    objects[40:50, 30:36] = 2
    write_raster(root / "rgb" / "a_objects.tif", objects, epsg=None)
    write_raster(
        root / "held_out" / "other.tif",
        (spectra * rng.uniform(0.5, 1.5, size=(1, 40, 40))).astype("float32"),
        epsg=None,
    )
    write_raster(
        root / "held_out" / "rgb.tif",
        rng.integers(0, 255, size=(3, 48, 48)).astype("uint8"),
        epsg=None,
    )
    return {"root": root, "held_out": root / "held_out"}


@pytest.fixture
def tiny_config(backgrounds: dict, tmp_path: Path) -> TrainingConfig:
    return TrainingConfig(
        backgrounds=[str(backgrounds["root"])],
        validation_backgrounds=[str(backgrounds["held_out"])],
        model="lite8",
        validation_samples=2,
        crop_size=32,
        steps=4,
        batch_size=2,
        warmup_steps=1,
        checkpoint_every=2,
        validate_every=2,
        threads=1,
        device="cpu",
        seed=3,
        output_dir=str(tmp_path / "run"),
    )


def trained(config: TrainingConfig, index: int, folder: Path) -> Path:
    """Member ``index`` of ``config`` trained into its own folder under ``folder``."""
    member = dataclasses.replace(
        member_config(config, index), output_dir=str(folder / f"m{config.seed}_{index}")
    )
    return train_from_config(member).model_path
