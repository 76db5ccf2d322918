"""Fusion of several scales' score rasters by averaged ranks, in bounded memory.

Score maps at different input scales are not on the same footing (one scale may give
higher scores overall), so they are fused by rank: each map's scores go through that map's
empirical cumulative distribution (CDF) over the raster's valid pixels, and the fused score
is the mean of those CDF values (in ``[0, 1]``; higher = more anomalous).

The CDF comes from a fixed histogram (:class:`ScoreHistogram`, 65,536 bins) filled while
each scale is written, linearly interpolated inside a bin so that the order of scores is
kept. The bins are equal in the *logit* of the score (over ``[-16, 16]``), because sigmoid
scores of a trained network crowd near 0 and 1: the bins then resolve relative differences
of about 0.05% anywhere in ``[1e-7, 1 - 1e-7]``. Per-scale maps live in temporary GeoTIFFs
in the output's folder (:func:`temporary_raster_path`); :func:`fuse_score_rasters` reads
them back strip by strip.

Example:
    >>> import numpy as np
    >>> histogram = ScoreHistogram()
    >>> histogram.add(np.array([0.1, 0.2, 0.3, 0.4], dtype="float32"))
    >>> histogram.cdf(np.array([0.05, 0.25, 0.9])).round(2).tolist()
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.tiling import block_windows
from uniadrs_engine.raster.writer import ScoreRasterWriter

#: Histogram bins, equal in the logit of the score.
HISTOGRAM_BINS = 65536

#: The bins cover logits in ``[-LOGIT_RANGE, LOGIT_RANGE]``; scores beyond fall in the ends.
LOGIT_RANGE = 16.0

#: Called with each written block's values and validity (e.g. to summarise the output).
BlockObserver = Callable[[np.ndarray, np.ndarray], None]


class ScoreHistogram:
    """Counts of scores in ``[0, 1]``, giving an empirical CDF.

    Args:
        bins: Number of bins, equal in ``logit(score)`` over ``[-16, 16]``.
    """

    def __init__(self, bins: int = HISTOGRAM_BINS) -> None:
        self.bins = int(bins)
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self._cumulative: Optional[np.ndarray] = None

    @property
    def total(self) -> int:
        """Number of scores added."""
        return int(self.counts.sum())

    def _bin_positions(self, scores: np.ndarray) -> np.ndarray:
        """Fractional bin index of each score, in ``[0, bins]``."""
        values = np.asarray(scores, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            logits = np.log(values) - np.log1p(-values)
        logits = np.where(values <= 0, -LOGIT_RANGE, np.where(values >= 1, LOGIT_RANGE, logits))
        fractions = (np.clip(logits, -LOGIT_RANGE, LOGIT_RANGE) + LOGIT_RANGE) / (2 * LOGIT_RANGE)
        return fractions * self.bins

    def add(self, scores: np.ndarray) -> None:
        """Adds scores (any shape; values are clipped to ``[0, 1]``, non-finite ones skipped)."""
        values = np.asarray(scores).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        indices = np.minimum(self._bin_positions(values).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(indices, minlength=self.bins)
        self._cumulative = None

    def cdf(self, scores: np.ndarray) -> np.ndarray:
        """Fraction of added scores below each score (interpolated within a bin), float32.

        Raises:
            ValueError: If no score was added.
        """
        total = self.total
        if total == 0:
            raise ValueError("the histogram is empty")
        if self._cumulative is None:
            self._cumulative = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.float64)
        positions = self._bin_positions(scores)
        indices = np.minimum(positions.astype(np.int64), self.bins - 1)
        within = positions - indices
        below = self._cumulative[indices] + self.counts[indices] * within
        return (below / total).astype(np.float32)


def temporary_raster_path(output_path: Union[str, Path], label: str) -> Path:
    """A hidden, unique path in the output's folder for an intermediate raster."""
    output_path = Path(output_path)
    return output_path.parent / f".{output_path.stem}.{label}.{uuid.uuid4().hex[:8]}.tif"


def fuse_score_rasters(
    scale_paths: Sequence[Path],
    histograms: Sequence[ScoreHistogram],
    writer: ScoreRasterWriter,
    memory_mb: float = 256,
    reporter: Optional[ProgressReporter] = None,
    observer: Optional[BlockObserver] = None,
) -> None:
    """Writes the mean of each scale's CDF-transformed scores, strip by strip.

    Args:
        scale_paths: One score raster per scale, all on the writer's grid.
        histograms: The score histogram of each raster (same order).
        writer: Output writer (not committed here).
        memory_mb: Budget of one strip.
        reporter: Progress and cancellation.
        observer: Optional callable receiving every written block's values and validity.

    Raises:
        CancelledError: If the reporter asks to stop.
    """
    if len(scale_paths) != len(histograms) or not scale_paths:
        raise ValueError("one histogram per score raster is needed")
    reporter = reporter or ProgressReporter()
    sources = [open_raster(path) for path in scale_paths]
    try:
        # per map: the read (raw, float32, mask); per strip: the float64 temporaries of one
        # CDF (positions, logits, indices, interpolation), the fused sum and the written copy
        bytes_per_pixel = 12 * len(sources) + 96
        windows = block_windows(
            writer.width, writer.height, bytes_per_pixel, memory_mb, sources[0].block_size
        )
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            fused = np.zeros((window.ysize, window.xsize), dtype=np.float32)
            valid = np.ones((window.ysize, window.xsize), dtype=bool)
            for source, histogram in zip(sources, histograms):
                block = source.read_window(window)
                valid &= block.valid
                fused += histogram.cdf(block.data[0])
            fused /= len(sources)
            writer.write(window, fused, valid)
            if observer is not None:
                observer(fused, valid)
            reporter.update((index + 1) / len(windows), "fusing scales")
    finally:
        for source in sources:
            source.close()


def fuse_score_arrays(
    score_maps: List[np.ndarray], valid: Optional[np.ndarray] = None
) -> np.ndarray:
    """Fuses in-memory score maps of one image by averaged ranks (same rule as the rasters)."""
    use = np.ones(score_maps[0].shape, dtype=bool) if valid is None else valid
    fused = np.zeros(score_maps[0].shape, dtype=np.float32)
    for score_map in score_maps:
        histogram = ScoreHistogram()
        histogram.add(score_map[use])
        fused += histogram.cdf(score_map)
    return fused / len(score_maps)
