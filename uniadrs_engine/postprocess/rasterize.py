"""Burns ground-truth polygons into a mask raster on the grid of a score raster.

Evaluating a score map against anomaly polygons needs a mask on the score raster's grid:
:func:`rasterize_polygons_like` writes a ``uint8`` GeoTIFF (1 inside a polygon, 0 outside)
with the size, geotransform and CRS of a reference raster. Polygons in another CRS are
reprojected on the fly. On a raster georeferenced by ground control points (or rational
polynomial coefficients) only, polygons are carried into pixel and line through them, as
:class:`~uniadrs_engine.raster.vector_frame.VectorFrame` carries traced ones out, and the
mask gets the same georeference. A pixel is inside when its centre is (or, with ``all_touched``,
when the polygon touches it at all). Curved polygons (as QGIS digitises them) are burnt as their
linear approximation; points and lines are refused.

Example:
    >>> rasterize_polygons_like("truth.gpkg", "scores.tif", "truth_mask.tif")  # doctest: +SKIP
    PosixPath('truth_mask.tif')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Tuple, Union

from osgeo import gdal, ogr, osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import is_gdal_name, open_raster, quiet_gdal_errors
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

#: Geometry types (flattened) that can be burnt: polygons, curved or not, single or multi.
POLYGON_TYPES = frozenset(
    (ogr.wkbPolygon, ogr.wkbMultiPolygon, ogr.wkbCurvePolygon, ogr.wkbMultiSurface)
)

LOGGER = logging.getLogger(__name__)


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
        vector_path: Any OGR-readable file with (multi)polygons, curved ones included.
        like_raster_path: The raster whose grid the mask takes (size, geotransform, CRS).
        out_path: Output GeoTIFF; it appears only when complete.
        layer_name: The layer to burn; None burns the first layer.
        all_touched: Burn every pixel a polygon touches, not only those whose centre is in.

    Returns:
        ``out_path``.

    Raises:
        InputError: If the vector file is missing or cannot be read, the layer is missing, has
            no CRS (when the raster has one) or holds other geometries than polygons, or the
            output cannot be written.
    """
    if not is_gdal_name(str(vector_path)) and not Path(vector_path).exists():
        raise InputError(f"vector file not found: {vector_path}")
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
    if frame.srs is not None and _layer_srs(layer) is None:
        raise InputError(f"{vector_path} has no coordinate reference system")
    _check_polygon_type(layer.GetGeomType(), vector_path, layer)
    out_path = check_geotiff_path(out_path)
    check_not_an_input(out_path, like_raster_path, vector_path)
    # Every path burns a linear copy of the polygons. A raster with a geotransform: GDAL
    # reprojects the copy itself; any other raster: it is carried into pixels here and burnt
    # with no geotransform set.
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
        burnt, n_features = _linear_copy(layer, frame, vector_path, in_pixels=in_pixels)
        if not in_pixels:
            set_georeference(dataset, like)
        dataset.GetRasterBand(1).SetDescription("ground truth (1 anomaly, 0 background)")
        options = ["ALL_TOUCHED=TRUE"] if all_touched else []
        with quiet_gdal_errors():
            status = gdal.RasterizeLayer(
                dataset,
                [1],
                burnt.GetLayer(0),
                burn_values=[1],
                options=options,
            )
        if status != 0:
            raise InputError(f"cannot rasterize {vector_path}: {gdal.GetLastErrorMsg()}")
        burnt = None
        if n_features and dataset.GetRasterBand(1).ComputeRasterMinMax(False)[1] == 0:
            LOGGER.warning(
                "none of the %d features of %s lies on %s: the mask has no anomaly pixel",
                n_features,
                vector_path,
                like_raster_path,
            )
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


def _layer_srs(layer: ogr.Layer) -> Optional[osr.SpatialReference]:
    """The layer's CRS; None when it has none.

    A GeoPackage layer "without CRS" (``srs_id`` 0 or -1) comes back from GDAL as an
    "Undefined geographic SRS" (or "Undefined Cartesian SRS"): that is no CRS either.
    """
    srs = layer.GetSpatialRef()
    if srs is None or (srs.GetName() or "").startswith("Undefined"):
        return None
    return srs


def _check_polygon_type(geometry_type: int, vector_path: PathLike, layer: ogr.Layer) -> None:
    """Raises :class:`InputError` unless ``geometry_type`` is polygonal (or unknown).

    Args:
        geometry_type: A layer's declared geometry type or a feature geometry's type.
        vector_path: The vector file, for the message.
        layer: The layer, for the message.
    """
    flat = ogr.GT_Flatten(geometry_type)
    if flat == ogr.wkbUnknown or flat in POLYGON_TYPES:
        return
    raise InputError(
        f"layer {layer.GetName()!r} of {vector_path} holds "
        f"{ogr.GeometryTypeToName(flat)} geometries: ground truth must be polygons"
    )


def _linear_copy(
    layer: ogr.Layer, frame: VectorFrame, vector_path: PathLike, *, in_pixels: bool
) -> Tuple[gdal.Dataset, int]:
    """An in-memory copy of ``layer`` with linear (multi)polygons, as GDAL can burn them.

    GDAL's rasterizer (3.6) burns nothing of curved geometries (a curve polygon, a
    multi-surface, even one holding plain polygons): each geometry is made linear here.

    Args:
        layer: The polygons.
        frame: The raster's frame.
        vector_path: The vector file, for messages.
        in_pixels: Carry geometries into the raster's pixel and line (reprojecting them to
            the frame's CRS first when the layer has another one); otherwise they keep their
            coordinates and the copy the layer's CRS, for GDAL to reproject.

    Returns:
        The in-memory data source (its one layer is the copy) and its number of features.

    Raises:
        InputError: If a feature's geometry is not a polygon or cannot be reprojected.
    """
    layer_srs = _layer_srs(layer)
    to_frame_crs = None
    if (
        in_pixels
        and layer_srs is not None
        and frame.srs is not None
        and not layer_srs.IsSame(frame.srs)
    ):
        source = spatial_reference(layer_srs.ExportToWkt())
        to_frame_crs = osr.CoordinateTransformation(source, frame.srs)
    store = ogr.GetDriverByName("Memory").CreateDataSource("burnt")
    copy = store.CreateLayer(
        "burnt", srs=None if in_pixels else layer_srs, geom_type=ogr.wkbMultiPolygon
    )
    definition = copy.GetLayerDefn()
    n_features = 0
    layer.ResetReading()
    for source_feature in layer:
        geometry = source_feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            continue
        _check_polygon_type(geometry.GetGeometryType(), vector_path, layer)
        geometry = ogr.ForceToMultiPolygon(geometry.GetLinearGeometry())
        if to_frame_crs is not None and geometry.Transform(to_frame_crs) != 0:
            raise InputError("a polygon could not be reprojected to the raster's CRS")
        feature = ogr.Feature(definition)
        feature.SetGeometry(frame.to_pixels(geometry) if in_pixels else geometry)
        copy.CreateFeature(feature)
        n_features += 1
    return store, n_features
