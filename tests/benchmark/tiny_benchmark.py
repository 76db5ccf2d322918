"""Writes a tiny benchmark: two modalities, three scenes, and its manifest."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.metrics import roc_auc_score

from tests.raster_factory import anomaly_scene, write_raster
from uniadrs_engine.baselines.rx import global_rx

_PLAIN_GRID = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def write_tiny_manifest(root: Path) -> Path:
    """Writes ``root/manifest.json`` with hsi/a, hsi/b (5 bands) and ir/c (1 band), 40x48 px.

    Each scene's ``rx_auc`` is global RX's AUC computed on the arrays, rounded as in the
    shared manifest.
    """
    scenes = []
    for modality, name, bands, seed in (("hsi", "a", 5, 0), ("hsi", "b", 5, 1), ("ir", "c", 1, 2)):
        image, mask = anomaly_scene(rows=40, cols=48, bands=bands, seed=seed)
        folder = root / modality / name
        folder.mkdir(parents=True)
        write_raster(folder / "image.tif", image, epsg=None, geotransform=_PLAIN_GRID)
        write_raster(folder / "mask.tif", mask, epsg=None, geotransform=_PLAIN_GRID)
        rx_auc = roc_auc_score(mask.ravel(), global_rx(image).ravel())
        scenes.append(
            {
                "modality": modality,
                "scene": name,
                "image": f"{modality}/{name}/image.tif",
                "mask": f"{modality}/{name}/mask.tif",
                "rx_auc": round(float(rx_auc), 4),
            }
        )
    path = root / "manifest.json"
    path.write_text(json.dumps({"description": "tiny", "scenes": scenes}))
    return path
