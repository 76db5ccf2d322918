"""Writes small georeferenced rasters for tests (no file from ../shared is needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

#: Geotransform used by default: UTM-like metres, 10 m pixels.
DEFAULT_GEOTRANSFORM = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)
DEFAULT_EPSG = 32633

_GDAL_TYPES = {
    np.dtype("uint8"): gdal.GDT_Byte,
    np.dtype("uint16"): gdal.GDT_UInt16,
    np.dtype("int16"): gdal.GDT_Int16,
    np.dtype("int32"): gdal.GDT_Int32,
    np.dtype("float32"): gdal.GDT_Float32,
    np.dtype("float64"): gdal.GDT_Float64,
}


def write_raster(
    path: Path,
    array: np.ndarray,
    *,
    nodata: Optional[float] = None,
    geotransform: Sequence[float] = DEFAULT_GEOTRANSFORM,
    epsg: Optional[int] = DEFAULT_EPSG,
    driver: str = "GTiff",
) -> Path:
    """Writes ``array`` ([bands, rows, cols] or [rows, cols]) as a raster and returns its path."""
    data = array[None] if array.ndim == 2 else array
    bands, rows, cols = data.shape
    dataset = gdal.GetDriverByName(driver).Create(
        str(path), cols, rows, bands, _GDAL_TYPES[data.dtype]
    )
    dataset.SetGeoTransform(tuple(geotransform))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        dataset.SetProjection(srs.ExportToWkt())
    for index in range(bands):
        band = dataset.GetRasterBand(index + 1)
        if nodata is not None:
            band.SetNoDataValue(float(nodata))
        band.WriteArray(data[index])
    dataset.FlushCache()
    dataset = None
    return Path(path)


def anomaly_scene(
    rows: int = 64, cols: int = 80, bands: int = 5, seed: int = 0, dtype: str = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """Returns a smooth random background with a few small spectral anomalies, and their mask."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, size=(bands, rows, cols)).cumsum(axis=1).cumsum(axis=2)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    background = 0.3 + 0.4 * base + rng.normal(0.0, 0.02, size=base.shape)
    mask = np.zeros((rows, cols), dtype=np.uint8)
    for _ in range(3):
        r, c = rng.integers(4, rows - 8), rng.integers(4, cols - 8)
        size = int(rng.integers(2, 5))
        mask[r : r + size, c : c + size] = 1
    anomaly_spectrum = rng.uniform(0.0, 1.0, size=(bands, 1))
    background[:, mask == 1] = anomaly_spectrum
    if np.dtype(dtype).kind in "iu":
        background = np.round(background * 1000).astype(dtype)
    else:
        background = background.astype(dtype)
    return background, mask
