"""Scoring within a raster's valid extent: the raster less a nodata collar.

A nodata collar holds nothing to score, and reading and scoring it would cost time and memory;
beyond the valid pixels' edge the network then sees their mirror image instead of filled
pixels. Detection therefore scores only the smallest window holding every valid pixel
(:attr:`~uniadrs_engine.raster.statistics.BandStatistics.valid_window`): tiles are planned,
read and mirror-padded as if that window were the whole raster (:class:`ExtentView`), their
scores are written back in place (:class:`ExtentWriter`), and the collar is never written:
GDAL's GeoTIFF driver fills the blocks (and the parts of blocks) nothing was written to with
the band's nodata value. A raster without a collar is scored as before.

Example:
    >>> class Raster:
    ...     width, height = 10, 8
    >>> valid_extent(Raster(), Window(0, 0, 10, 8)) is None  # no collar: scored whole
    True
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from uniadrs_engine.raster.reader import RasterBlock, RasterSource, Window
from uniadrs_engine.raster.writer import ScoreRasterWriter


class ExtentView:
    """A raster's window, read as if it were the whole raster.

    Args:
        source: The open raster.
        extent: The window (inside the raster) to expose.
    """

    def __init__(self, source: RasterSource, extent: Window) -> None:
        self._source = source
        self.extent = extent
        self.width = int(extent.xsize)
        self.height = int(extent.ysize)
        self.band_count = source.band_count
        self.path = source.path

    def read_window(self, window: Window) -> RasterBlock:
        """Reads ``window``, given in the extent's own pixels."""
        return self._source.read_window(_shifted(window, self.extent))


class ExtentWriter:
    """Writes windows given in an extent's own pixels to a writer of the whole raster."""

    def __init__(self, writer: ScoreRasterWriter, extent: Window) -> None:
        self._writer = writer
        self.extent = extent

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Writes ``values`` at ``window`` of the extent."""
        self._writer.write(_shifted(window, self.extent), values, valid)


def valid_extent(source: Any, window: Optional[Window]) -> Optional[Window]:
    """The window to score when it is smaller than the raster, else None (score it all)."""
    if window is None or tuple(window) == (0, 0, source.width, source.height):
        return None
    return window


def _shifted(window: Window, origin: Window) -> Window:
    """``window`` of a part, in the pixels of the raster the part starts in at ``origin``."""
    return Window(origin.xoff + window.xoff, origin.yoff + window.yoff, window.xsize, window.ysize)
