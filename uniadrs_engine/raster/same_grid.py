"""Whether two rasters lie on the same grid: size, and georeference of the same kind, alike.

Scores and their ground-truth mask, an image and its background mask must cover the same
pixels. Two rasters are on the same grid when their sizes agree and, if both are
georeferenced, they are so in the same way and alike: their geotransforms (and coordinate
systems, when both have one), their ground control points or their rational polynomial
coefficients. A raster without any georeferencing matches any grid of its size.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
from osgeo import osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import NO_GEOTRANSFORM, RasterSource


def _is_georeferenced(source: RasterSource) -> bool:
    return bool(source.projection) or tuple(source.geotransform) != NO_GEOTRANSFORM


def _georeference_kind(source: RasterSource) -> Optional[str]:
    """How a raster is georeferenced, in words, or None when it is not."""
    if tuple(source.geotransform) != NO_GEOTRANSFORM:
        return "a geotransform"
    if getattr(source, "gcps", ()):
        return "ground control points"
    if getattr(source, "rpc", None):
        return "rational polynomial coefficients"
    return None


def _numbers(text: str) -> List[float]:
    """The numbers of a metadata value (``"1 -2.5e-3 0"``); ``[]`` when it holds none."""
    try:
        return [float(item) for item in str(text).replace(",", " ").split()]
    except ValueError:
        return []


def _same_points(first: RasterSource, second: RasterSource) -> bool:
    """Whether two rasters' ground control points (and their CRSs) are the same."""
    if len(first.gcps) != len(second.gcps):
        return False
    corners = [[(p.GCPPixel, p.GCPLine, p.GCPX, p.GCPY) for p in r.gcps] for r in (first, second)]
    if not np.allclose(corners[0], corners[1], rtol=1e-9, atol=1e-9):
        return False
    if first.gcp_projection and second.gcp_projection:
        return bool(
            osr.SpatialReference(wkt=first.gcp_projection).IsSame(
                osr.SpatialReference(wkt=second.gcp_projection)
            )
        )
    return True


def _same_coefficients(first: RasterSource, second: RasterSource) -> bool:
    """Whether two rasters' rational polynomial coefficients are the same."""
    if set(first.rpc) != set(second.rpc):
        return False
    for key, value in first.rpc.items():
        mine, theirs = _numbers(value), _numbers(second.rpc[key])
        if len(mine) != len(theirs) or not np.allclose(mine, theirs, rtol=1e-9, atol=0):
            return False
    return True


def check_same_grid(first: RasterSource, second: RasterSource) -> None:
    """Raises :class:`InputError` unless two rasters share size and (if any) georeference.

    When both are georeferenced, they must be so in the same way, and alike: their
    geotransforms (and coordinate systems, when both have one), their ground control points
    or their rational polynomial coefficients.
    """
    if (first.width, first.height) != (second.width, second.height):
        raise InputError(
            f"{first.path} ({first.width}x{first.height}) and {second.path} "
            f"({second.width}x{second.height}) are not on the same grid: sizes differ"
        )
    kinds = _georeference_kind(first), _georeference_kind(second)
    not_same = f"{first.path} and {second.path} are not on the same grid"
    if None not in kinds and kinds[0] != kinds[1]:
        raise InputError(f"{not_same}: one is georeferenced by {kinds[0]}, the other by {kinds[1]}")
    if kinds == ("ground control points",) * 2 and not _same_points(first, second):
        raise InputError(f"{not_same}: their ground control points differ")
    if kinds == ("rational polynomial coefficients",) * 2 and not _same_coefficients(first, second):
        raise InputError(f"{not_same}: their rational polynomial coefficients differ")
    if _is_georeferenced(first) and _is_georeferenced(second):
        pixel = max(abs(first.geotransform[1]), abs(first.geotransform[5]), 1e-12)
        if not np.allclose(first.geotransform, second.geotransform, rtol=0, atol=1e-3 * pixel):
            raise InputError(f"{not_same}: their geotransforms differ")
        if first.projection and second.projection:
            first_srs = osr.SpatialReference(wkt=first.projection)
            second_srs = osr.SpatialReference(wkt=second.projection)
            if not first_srs.IsSame(second_srs):
                raise InputError(f"{not_same}: their coordinate systems differ")
