"""Burns ground-truth polygons into a mask raster on the grid of a score raster.

Evaluating a score map against anomaly polygons needs a mask on the score raster's grid:
:func:`rasterize_polygons_like` writes a ``uint8`` GeoTIFF (1 inside a polygon, 0 outside)
with the size, geotransform and CRS of a reference raster. Polygons in another CRS are
reprojected on the fly. On a raster georeferenced by ground control points (or rational
polynomial coefficients) only, polygons are carried into pixel and line through them, as
:class:`~uniadrs_engine.raster.vector_frame.VectorFrame` carries traced ones out, and the
mask gets the same georeference. A pixel is inside when its centre is (or, with ``all_touched``,
when the polygon touches it at all).

Example:
    >>> rasterize_polygons_like("truth.gpkg", "scores.tif", "truth_mask.tif")  # doctest: +SKIP
    PosixPath('truth_mask.tif')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from osgeo import gdal, ogr, osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import open_raster, quiet_gdal_errors
from uniadrs_engine.raster.vector_frame import VectorFrame, spatial_reference
from uniadrs_engine.raster.writer import (
    check_geotiff_path,
    check_not_an_input,
    delete_leftover,
    gdal_write_errors,
    release_frames,
    remove_stale_sidecar,
    set_georeference,
    temporary_sibling,
)

PathLike = Union[str, Path]


def rasterize_polygons_like(
    vector_path: PathLike,
    like_raster_path: PathLike,
    out_path: PathLike,
    *,
    layer_name: Optional[str] = None,
    all_touched: bool = False,
) -> Path:
    """Writes a 0/1 ``uint8`` mask of the polygons on ``like_raster_path``'s grid.

    Args:
        vector_path: Any OGR-readable file with (multi)polygons.
        like_raster_path: The raster whose grid the mask takes (size, geotransform, CRS).
        out_path: Output GeoTIFF; it appears only when complete.
        layer_name: The layer to burn; None burns the first layer.
        all_touched: Burn every pixel a polygon touches, not only those whose centre is in.

    Returns:
        ``out_path``.

    Raises:
        InputError: If the vector file or layer cannot be read, or the output not written.
    """
    with open_raster(like_raster_path, bands=[1]) as like:
        width, height = like.width, like.height
        frame = VectorFrame.of(like)
    with quiet_gdal_errors():
        try:
            vector = ogr.Open(str(vector_path))
        except RuntimeError:
            vector = None
    if vector is None:
        raise InputError(f"{vector_path} is not a vector file GDAL can read")
    layer = vector.GetLayer(0) if layer_name is None else vector.GetLayerByName(layer_name)
    if layer is None:
        which = "no layer" if layer_name is None else f"no layer named {layer_name!r}"
        raise InputError(f"{vector_path} has {which}")
    if frame.srs is not None and layer.GetSpatialRef() is None:
        raise InputError(f"{vector_path} has no coordinate reference system")
    out_path = check_geotiff_path(out_path)
    check_not_an_input(out_path, like_raster_path, vector_path)
    # A raster with a geotransform: GDAL burns the polygons itself (reprojecting them); any
    # other raster: they are carried into pixels here and burnt with no geotransform set.
    in_pixels = frame.warps or frame.geotransform != tuple(like.geotransform)
    temp_path = temporary_sibling(out_path, ".tif")
    try:
        dataset = gdal.GetDriverByName("GTiff").Create(
            str(temp_path),
            width,
            height,
            1,
            gdal.GDT_Byte,
            options=["TILED=YES", "COMPRESS=DEFLATE"],
        )
        burnt = _layer_in_pixels(layer, frame) if in_pixels else None
        if not in_pixels:
            set_georeference(dataset, like)
        dataset.GetRasterBand(1).SetDescription("ground truth (1 anomaly, 0 background)")
        options = ["ALL_TOUCHED=TRUE"] if all_touched else []
        with quiet_gdal_errors():
            status = gdal.RasterizeLayer(
                dataset,
                [1],
                layer if burnt is None else burnt.GetLayer(0),
                burn_values=[1],
                options=options,
            )
        if status != 0:
            raise InputError(f"cannot rasterize {vector_path}: {gdal.GetLastErrorMsg()}")
        if in_pixels:  # set after burning, so that GDAL burns in pixel and line
            set_georeference(dataset, like)
        with gdal_write_errors(out_path):
            dataset.FlushCache()
            dataset = None  # closes the file, writing what is left
        remove_stale_sidecar(out_path)  # GDAL's statistics of an older mask of that name
        os.replace(temp_path, out_path)
    except BaseException as error:
        dataset = None
        release_frames(error)
        delete_leftover(temp_path)
        raise
    return out_path


def _layer_in_pixels(layer: ogr.Layer, frame: VectorFrame) -> gdal.Dataset:
    """An in-memory copy of ``layer`` whose geometries are in the raster's pixel and line.

    Geometries are reprojected to the frame's CRS first when the layer has another one.
    """
    to_frame_crs = None
    layer_srs = layer.GetSpatialRef()
    if layer_srs is not None and frame.srs is not None and not layer_srs.IsSame(frame.srs):
        source = spatial_reference(layer_srs.ExportToWkt())
        to_frame_crs = osr.CoordinateTransformation(source, frame.srs)
    store = ogr.GetDriverByName("Memory").CreateDataSource("burnt")
    copy = store.CreateLayer("burnt", geom_type=ogr.wkbUnknown)
    definition = copy.GetLayerDefn()
    layer.ResetReading()
    for source_feature in layer:
        geometry = source_feature.GetGeometryRef()
        if geometry is None:
            continue
        geometry = geometry.Clone()
        if to_frame_crs is not None and geometry.Transform(to_frame_crs) != 0:
            raise InputError("a polygon could not be reprojected to the raster's CRS")
        feature = ogr.Feature(definition)
        feature.SetGeometry(frame.to_pixels(geometry))
        copy.CreateFeature(feature)
    return store
