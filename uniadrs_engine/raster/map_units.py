"""Lengths in a raster's map units: the pixel size, and when such lengths make sense.

A length in map units (an object size, an RX window) is turned into pixels with the
raster's pixel size. That needs a geotransform and a projected CRS: a geographic CRS
measures in degrees, in which no one gives the size of a ship or a window.
"""

from __future__ import annotations

import math
from typing import Sequence

from osgeo import osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import NO_GEOTRANSFORM

#: Metres in one degree of latitude, to say how tall a pixel of a geographic raster is.
METRES_PER_DEGREE_OF_LATITUDE = 111_320.0


def pixel_size_of(geotransform: Sequence[float]) -> float:
    """Mean side of a pixel in map units (geometric mean of its two sides).

    Raises:
        InputError: If the geotransform gives no usable pixel size.
    """
    width = math.hypot(geotransform[1], geotransform[4])
    height = math.hypot(geotransform[2], geotransform[5])
    size = math.sqrt(width * height)
    if not math.isfinite(size) or size <= 0:
        raise InputError("the raster has no usable pixel size (no geotransform)")
    return size


def check_map_unit_lengths(geotransform: Sequence[float], crs_wkt: str, what: str) -> None:
    """Refuses lengths in map units on a raster where they cannot be turned into pixels.

    Args:
        geotransform: The raster's geotransform.
        crs_wkt: The raster's CRS as WKT (empty: unknown, the units are taken as given).
        what: What is measured, for the message (``"the object size"``, ``"the windows"``).

    Raises:
        InputError: If the raster is not georeferenced, or its CRS is geographic (degrees);
            the message gives the pixel's height in metres there.
    """
    if tuple(float(value) for value in geotransform) == NO_GEOTRANSFORM:
        raise InputError(f"the raster is not georeferenced: give {what} in pixels")
    if not crs_wkt:
        return
    reference = osr.SpatialReference()
    if reference.ImportFromWkt(crs_wkt) == 0 and reference.IsGeographic():
        metres = abs(float(geotransform[5])) * METRES_PER_DEGREE_OF_LATITUDE
        raise InputError(
            f"the raster's CRS ({reference.GetName()}) is geographic, so its map units "
            f"are degrees: give {what} in pixels (a pixel is about {metres:.3g} m tall "
            "here), or reproject the raster to a projected CRS"
        )
