"""Small generated background trees for the simulation tests (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.raster_factory import anomaly_scene, write_raster

HSI_BANDS = 20


def visible_tile(seed: int, rows: int = 96, cols: int = 96) -> np.ndarray:
    """A textured 3-band uint8 tile."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, size=(3, rows, cols)).cumsum(axis=1).cumsum(axis=2)
    base = (base - base.min()) / np.ptp(base)
    return np.round(40 + 180 * base).astype(np.uint8)


def object_mask(rows: int = 96, cols: int = 96) -> np.ndarray:
    """Instance ids: three rectangles and one small speck (below the bank's minimum area)."""
    ids = np.zeros((rows, cols), dtype=np.uint16)
    ids[10:30, 10:25] = 1
    ids[50:60, 40:80] = 2
    ids[70:90, 5:20] = 3
    ids[2:4, 90:92] = 4
    return ids


def build_background_tree(root: Path) -> Path:
    """Writes ``root/hsi/{a,b}.tif`` (b with an empty band and a constant band),
    ``root/visible/tiles`` (v1 with an object mask, v2 without, a text file) and
    ``root/visible/landslide`` (to exclude); returns ``root``."""
    (root / "hsi").mkdir()
    (root / "visible" / "tiles").mkdir(parents=True)
    (root / "visible" / "landslide").mkdir()

    image, _ = anomaly_scene(rows=64, cols=64, bands=HSI_BANDS, seed=1)
    write_raster(root / "hsi" / "a.tif", image)

    image, _ = anomaly_scene(rows=48, cols=56, bands=HSI_BANDS + 2, seed=2)
    image[3] = -32768.0  # an EnMAP-like empty band (no nodata value declared)
    image[7] = 0.5  # a constant band
    write_raster(root / "hsi" / "b.tif", image)

    write_raster(root / "visible" / "tiles" / "v1.tif", visible_tile(3))
    write_raster(root / "visible" / "tiles" / "v1_objects.tif", object_mask())
    write_raster(root / "visible" / "tiles" / "v2.tif", visible_tile(4, rows=80, cols=112))
    write_raster(root / "visible" / "landslide" / "slide.tif", visible_tile(5))
    (root / "visible" / "tiles" / "notes.txt").write_text("not a raster")
    return root


@pytest.fixture(scope="session")
def background_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree of :func:`build_background_tree`, written once per test session."""
    return build_background_tree(tmp_path_factory.mktemp("backgrounds"))
