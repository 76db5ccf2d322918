"""Fixtures of the plugin tests: real headless QGIS (pytest-qgis), the provider, a tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsApplication, QgsProcessingProvider, QgsRasterLayer

from tests.raster_factory import anomaly_scene, write_raster


@pytest.fixture(scope="session")
def provider(qgis_app: QgsApplication, qgis_processing: None) -> Iterator[QgsProcessingProvider]:
    """The UniADRS provider, registered once for the session."""
    from qgis_plugin.provider import PROVIDER_ID, UniadrsProvider

    registry = QgsApplication.processingRegistry()
    registered = registry.providerById(PROVIDER_ID)
    if registered is None:
        registered = UniadrsProvider()
        assert registry.addProvider(registered)
    yield registered


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ``lite8`` model file (fast on CPU)."""
    import torch

    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import save_model
    from uniadrs_engine.model.network import UniADRS

    torch.manual_seed(0)
    card = ModelCard(name="plugin-test-lite8", config=get_config("lite8"))
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(path, UniADRS(card.config), card)
    return path


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A 5-band 40x48 float32 scene with a CRS (EPSG:32633) and small anomalies."""
    image, _ = anomaly_scene(rows=40, cols=48, bands=5, seed=1)
    return write_raster(tmp_path / "scene.tif", image)


@pytest.fixture
def scene_with_truth(tmp_path: Path) -> tuple[Path, Path]:
    """A 3-band scene and its anomaly mask raster."""
    image, mask = anomaly_scene(rows=40, cols=48, bands=3, seed=2)
    return (
        write_raster(tmp_path / "scene3.tif", image),
        write_raster(tmp_path / "truth.tif", mask),
    )


def read_band(path: str | Path, band: int = 1) -> np.ndarray:
    """Band ``band`` of a raster file as an array."""
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(band).ReadAsArray()


def assert_on_grid_of(output: str | Path, reference: str | Path) -> QgsRasterLayer:
    """Loads ``output`` as a QGIS layer and checks it has ``reference``'s extent and CRS."""
    layer = QgsRasterLayer(str(output), "output")
    expected = QgsRasterLayer(str(reference), "reference")
    assert layer.isValid(), output
    assert layer.crs() == expected.crs()
    assert layer.crs().authid() == "EPSG:32633"
    assert layer.extent() == expected.extent()
    assert (layer.width(), layer.height()) == (expected.width(), expected.height())
    return layer
