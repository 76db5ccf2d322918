"""A raster layer's settings in QGIS that the file behind it does not hold: no data, CRS.

The plugin reads the file behind a layer, so it passes on what the layer's user set in QGIS
and the file does not say:

* No data (Layer Properties > Transparency). QGIS keeps two settings per band: whether the
  file's own nodata value counts ("No data value", on by default) and additional no data
  values or ranges. :func:`layer_nodata` turns them into the engine's terms
  (:class:`uniadrs_engine.raster.nodata.NodataRule`). The engine's rule holds for every band
  it reads. QGIS's dialog sets the same values for every band of a layer; should the bands
  used differ (set through the API), their additional values are all taken, and the file's
  nodata is set aside only when every band used sets it aside.
* The CRS (Layer Properties > Source, or Set Layer CRS): :func:`layer_crs` gives it when it
  is not the file's, so that map units are measured in it and the outputs carry it.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer, QgsRasterRange


def _bound(value: float, unbounded: float) -> float:
    """A range end: QGIS's NaN means no bound there."""
    return unbounded if math.isnan(value) else float(value)


def layer_bands(layer: QgsRasterLayer, bands: Optional[Sequence[int]]) -> List[int]:
    """The layer's bands that the chosen ``bands`` read (all for None).

    A one-band paletted layer is read as the three bands of its colours: its band 1 holds
    the settings of all three.
    """
    count = layer.bandCount()
    chosen = [band for band in (bands or range(1, count + 1)) if 1 <= band <= count]
    return chosen or [1]


def layer_nodata(
    layer: QgsRasterLayer, bands: Optional[Sequence[int]], nodata: Any
) -> Tuple[Tuple[Any, ...], bool]:
    """The layer's additional no data ranges and whether its file's nodata counts.

    Args:
        layer: A GDAL raster layer.
        bands: The 1-based bands the algorithm reads (None: all).
        nodata: The engine's :mod:`uniadrs_engine.raster.nodata` module.

    Returns:
        ``(ranges, use_file_nodata)``: the engine's ``NodataRange`` of every additional no
        data value or range of those bands (repeats dropped), and False only when every one
        of them has a nodata value in its file and sets it aside.
    """
    provider = layer.dataProvider()
    ranges: List[Any] = []
    use_file_nodata = False
    for band in layer_bands(layer, bands):
        # QGIS says a band without a nodata value does not use it: that sets nothing aside
        sets_aside = provider.sourceHasNoDataValue(band) and not provider.useSourceNoDataValue(band)
        use_file_nodata |= not sets_aside
        for value_range in provider.userNoDataValues(band):
            if value_range.min() > value_range.max():
                continue  # holds no value (QGIS's API allows it; QGIS matches nothing)
            bounds = value_range.bounds()
            converted = nodata.NodataRange(
                _bound(value_range.min(), -math.inf),
                _bound(value_range.max(), math.inf),
                include_low=bounds in (QgsRasterRange.IncludeMinAndMax, QgsRasterRange.IncludeMin),
                include_high=bounds in (QgsRasterRange.IncludeMinAndMax, QgsRasterRange.IncludeMax),
            )
            if converted not in ranges and not converted.is_empty:  # 5 with 5 excluded
                ranges.append(converted)
    return tuple(ranges), use_file_nodata


def layer_crs(layer: QgsRasterLayer) -> Optional[str]:
    """The layer's CRS as WKT when it is not its file's (its user set it), else None."""
    crs = layer.crs()
    if not crs.isValid() or crs == layer.dataProvider().crs():
        return None
    return str(crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED_GDAL))
