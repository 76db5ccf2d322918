"""Fixtures shared by every test: small generated rasters (no ../shared needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.raster_factory import anomaly_scene, write_raster

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def make_raster(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_raster(array, name="x.tif", nodata=None, ...)`` writes a GeoTIFF."""

    def factory(array: np.ndarray, name: str = "raster.tif", **kwargs: object) -> Path:
        return write_raster(tmp_path / name, array, **kwargs)

    return factory


@pytest.fixture
def scene_raster(tmp_path: Path) -> tuple[Path, Path]:
    """A 5-band 64x80 float32 scene with three small anomalies, and its uint8 mask raster."""
    image, mask = anomaly_scene()
    return (
        write_raster(tmp_path / "scene.tif", image),
        write_raster(tmp_path / "scene_mask.tif", mask),
    )
