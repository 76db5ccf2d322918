"""Scoring within a raster's valid extent: the raster less a nodata collar.

The network normalises every input over all of it, so the pixels of a nodata collar (filled
with the band means) would weigh on the scores of the valid pixels beside them. Detection
therefore scores only the smallest window holding every valid pixel
(:attr:`~uniadrs_engine.raster.statistics.BandStatistics.valid_window`): tiles are planned,
read and mirror-padded as if that window were the whole raster (:class:`ExtentView`), their
scores are written back in place (:class:`ExtentWriter`), and the collar is written as
nodata (:func:`write_nodata_outside`). A raster without a collar is scored as before.

Example:
    >>> [tuple(part) for part in collar_windows(10, 10, Window(2, 3, 5, 4))]
    [(0, 0, 10, 3), (0, 7, 10, 3), (0, 3, 2, 4), (7, 3, 3, 4)]
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from uniadrs_engine.raster.reader import RasterBlock, RasterSource, Window
from uniadrs_engine.raster.tiling import block_windows
from uniadrs_engine.raster.writer import ScoreRasterWriter

#: Bytes per pixel while writing the collar's nodata (values and validity).
_COLLAR_BYTES_PER_PIXEL = 5


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


def collar_windows(width: int, height: int, extent: Window) -> List[Window]:
    """The parts of a ``width`` x ``height`` raster outside ``extent``: above, below, beside."""
    x0, y0, x1, y1 = (
        extent.xoff,
        extent.yoff,
        extent.xoff + extent.xsize,
        extent.yoff + extent.ysize,
    )
    parts = [
        Window(0, 0, width, y0),
        Window(0, y1, width, height - y1),
        Window(0, y0, x0, y1 - y0),
        Window(x1, y0, width - x1, y1 - y0),
    ]
    return [part for part in parts if part.xsize > 0 and part.ysize > 0]


def write_nodata_outside(
    writer: ScoreRasterWriter, width: int, height: int, extent: Window, memory_mb: float
) -> None:
    """Writes nodata over the raster outside ``extent``, in strips within ``memory_mb``."""
    for part in collar_windows(width, height, extent):
        for strip in block_windows(part.xsize, part.ysize, _COLLAR_BYTES_PER_PIXEL, memory_mb):
            shape = (strip.ysize, strip.xsize)
            writer.write(
                _shifted(strip, part),
                np.zeros(shape, dtype=np.float32),
                np.zeros(shape, dtype=bool),
            )


def _shifted(window: Window, origin: Window) -> Window:
    """``window`` of a part, in the pixels of the raster the part starts in at ``origin``."""
    return Window(origin.xoff + window.xoff, origin.yoff + window.yoff, window.xsize, window.ysize)
