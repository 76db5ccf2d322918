"""Whole-raster per-band statistics (count, min, max, mean, covariance) in one streaming pass.

:func:`compute_band_statistics` reads a :class:`~uniadrs_engine.raster.reader.RasterSource`
in memory-bounded row strips and accumulates, over the valid pixels only (optionally only
those of a background mask), the per-band minimum, maximum and mean and, on request, the
band covariance (``ddof=1``). Every strip is reduced around its own mean in ``float64`` and
merged with Chan et al.'s pairwise update, so the result does not suffer from the
cancellation of raw sums of squares (large offsets such as 16-bit radiances are harmless).
:class:`StatisticsAccumulator` is the same merge for pixel arrays already in memory.

Example:
    >>> with open_raster("scene.tif") as source:  # doctest: +SKIP
    ...     statistics = compute_band_statistics(source, covariance=True)
    >>> statistics.mean.shape, statistics.covariance.shape  # doctest: +SKIP
    ((5,), (5, 5))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from uniadrs_engine.errors import EmptyBandsError, InputError
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import (
    RasterBlock,
    RasterSource,
    Window,
    describe_bands,
    open_raster,
)
from uniadrs_engine.raster.tiling import block_windows

#: A background/selection mask: a raster path (non-zero = selected) or a callable that
#: returns ``bool [rows, cols]`` for a window.
PixelMask = Union[str, Path, Callable[[Window], np.ndarray]]

T = TypeVar("T")

#: Pixels per band from which a band covariance is estimated well enough (Reed, Mallett and
#: Brennan's rule: with twice as many pixels as bands an estimated covariance loses about
#: 3 dB of detection power). Global RX and the spectral whitening warn below it.
MIN_PIXELS_PER_BAND = 2


@dataclass
class BandStatistics:
    """Per-band statistics of the selected pixels of a raster.

    Attributes:
        count: Number of pixels used.
        minimum: ``float64 [C]``.
        maximum: ``float64 [C]``.
        mean: ``float64 [C]``.
        covariance: ``float64 [C, C]`` with ``ddof=1``, or None when not requested.
        valid_window: The smallest window holding every valid pixel of the raster (the
            raster less a nodata collar), from :func:`compute_band_statistics`; None when not
            known.
    """

    count: int
    minimum: np.ndarray
    maximum: np.ndarray
    mean: np.ndarray
    covariance: Optional[np.ndarray] = None
    valid_window: Optional[Window] = None


class StatisticsAccumulator:
    """Merges per-band statistics of pixel batches (Chan et al.'s parallel update).

    Args:
        band_count: Number of bands ``C``.
        covariance: Also accumulate the ``C x C`` scatter matrix.
    """

    def __init__(self, band_count: int, covariance: bool = False) -> None:
        self.band_count = int(band_count)
        self.count = 0
        self.mean = np.zeros(self.band_count)
        self.minimum = np.full(self.band_count, np.inf)
        self.maximum = np.full(self.band_count, -np.inf)
        self.scatter: Optional[np.ndarray] = (
            np.zeros((self.band_count, self.band_count)) if covariance else None
        )

    def add(self, pixels: np.ndarray) -> None:
        """Adds a batch of pixels shaped ``[C, n]`` (any float or integer type)."""
        batch = np.asarray(pixels, dtype=np.float64)
        batch_count = batch.shape[1]
        if batch_count == 0:
            return
        batch_mean = batch.mean(axis=1)
        self.minimum = np.minimum(self.minimum, batch.min(axis=1))
        self.maximum = np.maximum(self.maximum, batch.max(axis=1))
        total = self.count + batch_count
        delta = batch_mean - self.mean
        if self.scatter is not None:
            centred = batch - batch_mean[:, None]
            self.scatter += centred @ centred.T
            self.scatter += np.outer(delta, delta) * (self.count * batch_count / total)
        self.mean = self.mean + delta * (batch_count / total)
        self.count = total

    def result(self, what: str = "the raster") -> BandStatistics:
        """Returns the statistics so far.

        Raises:
            InputError: If no pixel was added, or a covariance was asked with one pixel.
        """
        if self.count == 0:
            raise InputError(f"{what} has no valid pixel")
        covariance = None
        if self.scatter is not None:
            if self.count < 2:
                raise InputError(f"{what} has a single valid pixel: no covariance")
            covariance = self.scatter / (self.count - 1)
            covariance = 0.5 * (covariance + covariance.T)
        return BandStatistics(
            count=self.count,
            minimum=self.minimum.copy(),
            maximum=self.maximum.copy(),
            mean=self.mean.copy(),
            covariance=covariance,
        )


class _MaskReader:
    """Reads a selection mask window by window from a raster path or a callable."""

    def __init__(self, mask: PixelMask, width: int, height: int) -> None:
        self._source: Optional[RasterSource] = None
        self._callable: Optional[Callable[[Window], np.ndarray]] = None
        if callable(mask):
            self._callable = mask
        else:
            self._source = open_raster(mask, bands=[1], exact=True, stored=True)
            if (self._source.width, self._source.height) != (width, height):
                size = f"{self._source.width}x{self._source.height}"
                self._source.close()
                raise InputError(
                    f"mask {mask} ({size}) is not on the raster's grid ({width}x{height})"
                )

    def read(self, window: Window) -> np.ndarray:
        if self._callable is not None:
            selected = np.asarray(self._callable(window), dtype=bool)
            if selected.shape != (window.ysize, window.xsize):
                raise InputError(f"mask callable returned {selected.shape} for window {window}")
            return selected
        assert self._source is not None
        block = self._source.read_window(window)
        return block.valid & (block.data[0] != 0)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


def _selected_pixels(
    block: RasterBlock, window: Window, mask_reader: Optional[_MaskReader] = None
) -> np.ndarray:
    """Returns the ``[C, n]`` pixels of a block that are valid (and selected)."""
    use = block.valid
    if mask_reader is not None:
        use = use & mask_reader.read(window)
    return block.data[:, use]


def _empty_bands_error(source: RasterSource, band_counts: np.ndarray) -> Optional[EmptyBandsError]:
    """The error for a raster whose bands hold values but some hold none; else None."""
    holds = band_counts > 0
    if holds.all() or not holds.any():
        return None
    empty = [band for band, held in zip(source.band_indices, holds) if not held]
    kept = [band for band, held in zip(source.band_indices, holds) if held]
    return EmptyBandsError(
        f"{source.path}: {describe_bands(sorted(set(empty)))} hold no valid value (nodata or "
        "not finite everywhere), so no pixel holds a value in every band; select the other "
        "bands",
        empty,
        kept,
    )


def describe_bands_left_out(empty: Sequence[int], bad: Sequence[int] = ()) -> str:
    """Says which bands were left out and why, or ``""`` for none.

    Args:
        empty: Bands :func:`without_empty_bands` left out (they hold no value).
        bad: Bands an ENVI bad band list left out
            (:func:`~uniadrs_engine.raster.reader.select_bands`).

    Example:
        >>> describe_bands_left_out([130, 131, 132])
        'bands 130-132 left out: they hold no value'
        >>> describe_bands_left_out([7], bad=[1, 2])
        'bands 1-2 left out: the bad band list marks them; band 7 left out: it holds no value'
    """
    parts = []
    if bad:
        named = sorted(set(bad))
        them = "it" if len(named) == 1 else "them"
        parts.append(f"{describe_bands(named)} left out: the bad band list marks {them}")
    if empty:
        named = sorted(set(empty))
        verb = "it holds" if len(named) == 1 else "they hold"
        parts.append(f"{describe_bands(named)} left out: {verb} no value")
    return "; ".join(parts)


def without_empty_bands(
    run: Callable[[Optional[Sequence[int]], Tuple[int, ...]], T],
    bands: Optional[Sequence[int]] = None,
) -> T:
    """Runs ``run(bands, ())``, and once more without the bands that hold no value at all.

    A band that holds nodata (or non-finite values) everywhere leaves no pixel valid, since
    a pixel is valid when every band holds a value there: the EnMAP tiles of the project's
    backgrounds hold -32768 in bands 130-135 over the whole scene, so with -32768 declared
    as their nodata value no pixel would be valid. When :func:`compute_band_statistics`
    inside ``run`` finds such bands (and others that hold values), ``run`` is called again
    with the others and the empty ones: ``run(kept, empty)``. Call it before any output is
    written, as the statistics pass comes first.

    Args:
        run: ``run(bands, left_out) -> result``: ``bands`` as ``open_raster`` takes them
            (None: all), ``left_out`` the 1-based bands left out for holding no value.
        bands: The selection asked for (None: all bands).

    Returns:
        What ``run`` returns.
    """
    try:
        return run(bands, ())
    except EmptyBandsError as error:
        return run(list(error.kept_bands), error.empty_bands)


def check_varies(statistics: BandStatistics, path: str) -> None:
    """Refuses a raster whose every band holds one value over all its valid pixels.

    Nothing can stand out in such a raster (a blank tile, a scene of zeros without a nodata
    value); its scores would only show the edges of the tiles.

    Raises:
        InputError: In that case, naming the values.
    """
    if statistics.count > 0 and np.array_equal(statistics.minimum, statistics.maximum):
        values = ", ".join(f"{value:g}" for value in statistics.minimum[:3])
        more = ", ..." if len(statistics.minimum) > 3 else ""
        raise InputError(
            f"{path}: every band holds a single value ({values}{more}) over its "
            f"{statistics.count} valid pixels: nothing stands out, so there is nothing to score"
        )


def compute_band_statistics(
    source: RasterSource,
    memory_mb: float = 256,
    reporter: Optional[ProgressReporter] = None,
    covariance: bool = False,
    mask: Optional[PixelMask] = None,
) -> BandStatistics:
    """Computes per-band statistics of a raster's valid pixels in one streaming pass.

    Args:
        source: An open raster (its band selection is used).
        memory_mb: Memory budget of one strip.
        reporter: Optional progress/cancel reporter.
        covariance: Also compute the band covariance (``ddof=1``).
        mask: Optional selection: a raster on the same grid whose non-zero (and non-nodata)
            pixels are used, or a callable ``window -> bool [rows, cols]``.

    Returns:
        The statistics of the valid (and selected) pixels.

    Raises:
        InputError: If no pixel is valid and selected, or the mask is not on the grid.
        CancelledError: If the reporter asks to stop.
    """
    reporter = reporter or ProgressReporter()
    band_count = source.band_count
    value_bytes = source.value_dtype.itemsize  # 8 for a source opened exact (float64)
    bytes_per_pixel = value_bytes * band_count + 16 * band_count + 8
    windows = block_windows(
        source.width, source.height, bytes_per_pixel, memory_mb, source.block_size
    )
    mask_reader = None if mask is None else _MaskReader(mask, source.width, source.height)
    accumulator = StatisticsAccumulator(band_count, covariance=covariance)
    band_counts = np.zeros(band_count, dtype=np.int64)
    extent = _ValidExtent()
    reporter.begin("computing band statistics")
    try:
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            block = source.read_window(window)
            band_counts += block.band_counts
            extent.add(window, block.valid)
            accumulator.add(_selected_pixels(block, window, mask_reader))
            reporter.update((index + 1) / len(windows), "computing band statistics")
    finally:
        if mask_reader is not None:
            mask_reader.close()
    if accumulator.count == 0:
        error = _empty_bands_error(source, band_counts)
        if error is not None:
            raise error
    what = f"{source.path}" if mask is None else f"{source.path} (within the mask)"
    statistics = accumulator.result(what)
    statistics.valid_window = extent.window()
    return statistics


class _ValidExtent:
    """The bounding window of the valid pixels seen, block by block."""

    def __init__(self) -> None:
        self.x0 = self.y0 = math.inf
        self.x1 = self.y1 = -math.inf

    def add(self, window: Window, valid: np.ndarray) -> None:
        rows = np.flatnonzero(valid.any(axis=1))
        if rows.size == 0:
            return
        cols = np.flatnonzero(valid.any(axis=0))
        self.y0 = min(self.y0, window.yoff + int(rows[0]))
        self.y1 = max(self.y1, window.yoff + int(rows[-1]) + 1)
        self.x0 = min(self.x0, window.xoff + int(cols[0]))
        self.x1 = max(self.x1, window.xoff + int(cols[-1]) + 1)

    def window(self) -> Optional[Window]:
        if self.x1 < 0:
            return None
        x0, y0, x1, y1 = int(self.x0), int(self.y0), int(self.x1), int(self.y1)
        return Window(x0, y0, x1 - x0, y1 - y0)
