"""Writes small georeferenced rasters for tests (no file from ../shared is needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from osgeo import gdal, ogr, osr

gdal.UseExceptions()

#: Geotransform used by default: UTM-like metres, 10 m pixels.
DEFAULT_GEOTRANSFORM = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)
DEFAULT_EPSG = 32633

_GDAL_TYPES = {
    np.dtype("uint8"): gdal.GDT_Byte,
    np.dtype("uint16"): gdal.GDT_UInt16,
    np.dtype("int16"): gdal.GDT_Int16,
    np.dtype("int32"): gdal.GDT_Int32,
    np.dtype("uint32"): gdal.GDT_UInt32,
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


def affine_rpc(
    longitude: float = 7.0, latitude: float = 45.0, degrees_per_pixel: float = 0.001
) -> dict:
    """Rational polynomial coefficients (GDAL's ``RPC`` metadata) of a north-up image.

    Pixel ``(50, 50)`` looks at ``(longitude, latitude)`` (GDAL's RPC convention puts pixel
    centres at half pixels), columns going east and lines south by ``degrees_per_pixel``.
    """
    zeros = [0.0] * 20
    line_numerator, sample_numerator, denominator = list(zeros), list(zeros), list(zeros)
    line_numerator[2] = -1.0  # the normalised latitude (RPC00B terms: 1, L, P, H, ...)
    sample_numerator[1] = 1.0  # the normalised longitude
    denominator[0] = 1.0
    scale = 100 * degrees_per_pixel

    def text(values: list) -> str:
        return " ".join(f"{value:g}" for value in values)

    return {
        "LINE_OFF": "50",
        "SAMP_OFF": "50",
        "LAT_OFF": f"{latitude:.12g}",
        "LONG_OFF": f"{longitude:.12g}",
        "HEIGHT_OFF": "100",
        "LINE_SCALE": "100",
        "SAMP_SCALE": "100",
        "LAT_SCALE": f"{scale:.12g}",
        "LONG_SCALE": f"{scale:.12g}",
        "HEIGHT_SCALE": "500",
        "LINE_NUM_COEFF": text(line_numerator),
        "LINE_DEN_COEFF": text(denominator),
        "SAMP_NUM_COEFF": text(sample_numerator),
        "SAMP_DEN_COEFF": text(denominator),
    }


def write_netcdf(path: Path, variables: dict) -> Path:
    """Writes a NetCDF container of float32 ``[rows, cols]`` variables, ``{name: array}``.

    GDAL opens such a file with no band of its own: each variable is a subdataset.
    """
    dataset = gdal.GetDriverByName("netCDF").CreateMultiDimensional(str(path))
    group = dataset.GetRootGroup()
    rows, cols = next(iter(variables.values())).shape
    axes = [
        group.CreateDimension(name, None, None, size) for name, size in (("y", rows), ("x", cols))
    ]
    for name, values in variables.items():
        variable = group.CreateMDArray(name, axes, gdal.ExtendedDataType.Create(gdal.GDT_Float32))
        variable.Write(np.ascontiguousarray(values, dtype=np.float32))
    dataset = None
    return path


def set_ground_points(path: Path, corners: Sequence[tuple], epsg: Optional[int] = 4326) -> Path:
    """Georeferences a raster by ground control points ``(pixel, line, x, y)`` only."""
    dataset = gdal.Open(str(path), gdal.GA_Update)
    wkt = ""
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        wkt = srs.ExportToWkt()
    dataset.SetGCPs([gdal.GCP(x, y, 0, pixel, line) for pixel, line, x, y in corners], wkt)
    dataset = None
    return path


def write_polygons(
    path: Path, wkts: Sequence[str], epsg: Optional[int] = 32633, geom_type: int = ogr.wkbPolygon
) -> Path:
    """Writes geometries given as WKT into a GeoPackage layer ``truth`` and returns its path."""
    driver = ogr.GetDriverByName("GPKG")
    dataset = driver.CreateDataSource(str(path))
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer = dataset.CreateLayer("truth", srs=srs, geom_type=geom_type)
    for wkt in wkts:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    dataset = None
    return path


def write_paletted(path: Path, indices: np.ndarray, nodata: Optional[int] = None) -> Path:
    """Writes one band of palette indices 0-3 with a colour table and returns its path."""
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), indices.shape[1], indices.shape[0], 1, gdal.GDT_Byte
    )
    table = gdal.ColorTable()
    for entry in range(4):
        table.SetColorEntry(entry, (entry * 60, 255 - entry * 60, entry * 10, 255))
    band = dataset.GetRasterBand(1)
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.WriteArray(indices)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    dataset = None
    return path
