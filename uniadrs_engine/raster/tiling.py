"""Grids of windows over a raster: memory-bounded row strips and halo'd tiles.

* :func:`block_windows` cuts a raster into full-width row strips whose pixels fit a memory
  budget (aligned to the file's block height), for streaming passes such as statistics.
* :class:`TileGrid` cuts a raster into core tiles that cover every pixel exactly once; each
  tile also has a ``read`` window (the core grown by a halo of context, clipped to the raster)
  and a ``pad`` (the part of the halo beyond the raster's edge, to be filled by
  :func:`pad_tile` with mirror padding, or edge replication when the data is too small).

Example:
    >>> grid = TileGrid(width=7, height=3, tile=4, halo=2)
    >>> [tile.core for tile in grid]
    [Window(xoff=0, yoff=0, xsize=4, ysize=3), Window(xoff=4, yoff=0, xsize=3, ysize=3)]
    >>> grid_tile = next(iter(grid))
    >>> grid_tile.read, grid_tile.pad
    (Window(xoff=0, yoff=0, xsize=6, ysize=3), (2, 2, 0, 2))
"""

from __future__ import annotations

import math
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from uniadrs_engine.raster.reader import Window

#: A size given once for both axes, or as ``(x, y)``.
SizeXY = Union[int, Sequence[int]]


class Tile(NamedTuple):
    """One tile of a :class:`TileGrid`.

    Attributes:
        core: The pixels this tile is responsible for (the cores partition the raster).
        read: The window to read: the core grown by the halo, clipped to the raster.
        pad: ``(left, top, right, bottom)`` pixels missing beyond the raster's edge.
    """

    core: Window
    read: Window
    pad: Tuple[int, int, int, int]

    @property
    def padded_shape(self) -> Tuple[int, int]:
        """``(rows, cols)`` of the read window once padded."""
        left, top, right, bottom = self.pad
        return (self.read.ysize + top + bottom, self.read.xsize + left + right)

    @property
    def core_offset(self) -> Tuple[int, int]:
        """``(x, y)`` of the core's first pixel inside the padded read array."""
        left, top, _, _ = self.pad
        return (self.core.xoff - self.read.xoff + left, self.core.yoff - self.read.yoff + top)

    def crop_core(self, padded: np.ndarray) -> np.ndarray:
        """Returns the core of an array shaped like the padded read window (``[..., H, W]``)."""
        x, y = self.core_offset
        return padded[..., y : y + self.core.ysize, x : x + self.core.xsize]


def _pair(value: SizeXY, name: str) -> Tuple[int, int]:
    """Turns ``n`` or ``(x, y)`` into ``(x, y)`` integers."""
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        values = [int(item) for item in value]
        if len(values) != 2:
            raise ValueError(f"{name} must be one integer or (x, y), got {value!r}")
        pair = (values[0], values[1])
    return pair


def _axis_spans(
    size: int, tile: int, halo: int, uniform: bool
) -> List[Tuple[int, int, int, int, int, int]]:
    """Splits one axis into ``(core_start, core_stop, read_start, read_stop, pad_lo, pad_hi)``."""
    spans = []
    for core_start in range(0, size, tile):
        core_stop = min(core_start + tile, size)
        lo, hi = core_start - halo, core_stop + halo
        if uniform and core_stop - core_start < tile and size >= tile:
            # a partial last tile: shift its input back so every input has the same extent
            lo, hi = core_stop + halo - (tile + 2 * halo), core_stop + halo
        read_start, read_stop = max(lo, 0), min(hi, size)
        spans.append(
            (core_start, core_stop, read_start, read_stop, read_start - lo, hi - read_stop)
        )
    return spans


class TileGrid:
    """Core tiles covering a raster exactly once, each with a halo of context.

    Tiles run row by row, left to right. The last tile of a row or column is smaller when
    the size is not a multiple of ``tile``; with ``uniform=True`` its read window is shifted
    back into the raster instead so that every padded tile has the same shape
    ``(min(tile, size) + 2 * halo)`` per axis, as batching needs.

    Args:
        width: Raster columns (at least 1).
        height: Raster rows (at least 1).
        tile: Core size in pixels, one integer or ``(x, y)``.
        halo: Context added on each side, one integer or ``(x, y)``; may exceed the raster.
        uniform: Give every tile's padded read the same shape (see above).
    """

    def __init__(
        self, width: int, height: int, tile: SizeXY, halo: SizeXY = 0, uniform: bool = False
    ) -> None:
        self.width, self.height = int(width), int(height)
        self.tile_x, self.tile_y = _pair(tile, "tile")
        self.halo_x, self.halo_y = _pair(halo, "halo")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"raster size must be positive, got {width}x{height}")
        if self.tile_x < 1 or self.tile_y < 1:
            raise ValueError(f"tile size must be positive, got {tile!r}")
        if self.halo_x < 0 or self.halo_y < 0:
            raise ValueError(f"halo must not be negative, got {halo!r}")
        self.uniform = uniform
        self._x_spans = _axis_spans(self.width, self.tile_x, self.halo_x, uniform)
        self._y_spans = _axis_spans(self.height, self.tile_y, self.halo_y, uniform)

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, cols)`` of tiles."""
        return (len(self._y_spans), len(self._x_spans))

    def __len__(self) -> int:
        return len(self._x_spans) * len(self._y_spans)

    def __iter__(self) -> Iterator[Tile]:
        for y0, y1, ry0, ry1, pad_top, pad_bottom in self._y_spans:
            for x0, x1, rx0, rx1, pad_left, pad_right in self._x_spans:
                yield Tile(
                    core=Window(x0, y0, x1 - x0, y1 - y0),
                    read=Window(rx0, ry0, rx1 - rx0, ry1 - ry0),
                    pad=(pad_left, pad_top, pad_right, pad_bottom),
                )

    def __repr__(self) -> str:
        return (
            f"TileGrid({self.width}x{self.height}, tile=({self.tile_x}, {self.tile_y}), "
            f"halo=({self.halo_x}, {self.halo_y}), {len(self)} tiles)"
        )


def pad_tile(array: np.ndarray, pad: Sequence[int]) -> np.ndarray:
    """Pads the last two axes of ``array`` by ``(left, top, right, bottom)``.

    Mirror (``reflect``: ``d c b | a b c d``) padding is used along an axis when that axis is
    longer than both of its pads; otherwise (e.g. a one-pixel-wide raster) the edge pixels are
    replicated.
    """
    left, top, right, bottom = (int(value) for value in pad)
    if not (left or top or right or bottom):
        return array
    rows, cols = array.shape[-2:]
    widths = [(0, 0)] * (array.ndim - 2)
    padded = array
    row_mode = "reflect" if rows > max(top, bottom) else "edge"
    col_mode = "reflect" if cols > max(left, right) else "edge"
    if top or bottom:
        padded = np.pad(padded, [*widths, (top, bottom), (0, 0)], mode=row_mode)
    if left or right:
        padded = np.pad(padded, [*widths, (0, 0), (left, right)], mode=col_mode)
    return padded


def block_windows(
    width: int,
    height: int,
    bytes_per_pixel: float,
    memory_mb: float,
    block_size: Optional[Tuple[int, int]] = None,
) -> List[Window]:
    """Cuts a raster into full-width row strips whose data fits ``memory_mb``.

    Args:
        width: Raster columns.
        height: Raster rows.
        bytes_per_pixel: Memory one pixel takes while a strip is processed (all bands and
            working copies included).
        memory_mb: Budget for one strip, in MiB.
        block_size: The file's natural block ``(x, y)``; strips then hold whole blocks rows
            when the budget allows.

    Returns:
        Windows from top to bottom; each has at least one row.
    """
    if width < 1 or height < 1:
        raise ValueError(f"raster size must be positive, got {width}x{height}")
    row_bytes = max(1.0, float(width) * float(bytes_per_pixel))
    rows = max(1, int(math.floor(float(memory_mb) * 1024 * 1024 / row_bytes)))
    if block_size is not None:
        block_rows = int(block_size[1])
        if 1 < block_rows <= rows:
            rows = rows // block_rows * block_rows
    rows = min(rows, height)
    return [Window(0, y, width, min(rows, height - y)) for y in range(0, height, rows)]
