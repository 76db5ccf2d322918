"""Fusion of several score rasters by averaged ranks, in bounded memory.

Score maps at different input scales, or of different detectors (the network and global RX),
are not on the same footing (one scale may give higher scores overall, RX gives squared
Mahalanobis distances), so they are fused by rank: each map's scores go through that map's
empirical cumulative distribution (CDF) over the raster's valid pixels, and the fused score
is the (weighted) mean of those CDF values (in ``[0, 1]``; higher = more anomalous). A
*fusion power* ``p`` above 1 takes their weighted power mean ``(sum w_i c_i^p)^(1/p)``
instead (:class:`PowerMean`): 1 is the plain mean (a pixel must rank high at every scale),
larger powers come nearer to the maximum (a pixel that ranks high at any one scale is kept
high), which suits objects whose size fits only some of the scales.
Unbounded scores (``>= 0``, such as RX distances) are mapped to ``[0, 1)`` by
``s / (1 + s)`` first (:func:`to_unit_interval`), which keeps their order.

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

import math
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.tiling import block_windows
from uniadrs_engine.raster.writer import ScoreRasterWriter, temporary_sibling

#: Histogram bins, equal in the logit of the score.
HISTOGRAM_BINS = 65536

#: The bins cover logits in ``[-LOGIT_RANGE, LOGIT_RANGE]``; scores beyond fall in the ends.
LOGIT_RANGE = 16.0

#: Largest fusion power: there the power mean of two equally weighted ranks is within 1.1 %
#: of their maximum (at least ``0.5 ** (1 / 64)`` of it).
MAX_FUSION_POWER = 64.0

#: Called with each written block's values and validity (e.g. to summarise the output).
BlockObserver = Callable[[np.ndarray, np.ndarray], None]


def to_unit_interval(scores: np.ndarray) -> np.ndarray:
    """Maps non-negative unbounded scores to ``[0, 1)`` by ``s / (1 + s)`` (order kept).

    Negative scores count as 0. In the histogram's logit bins this is ``log(s)``: scores from
    about 1e-7 to 9e6 fall in distinct bins.
    """
    values = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(values), 1.0, values / (1.0 + values))


class ScoreHistogram:
    """Counts of scores in ``[0, 1]`` (or of unbounded ones), giving an empirical CDF.

    Args:
        bins: Number of bins, equal in ``logit(score)`` over ``[-16, 16]``.
        unbounded: The scores are non-negative and unbounded (e.g. RX distances): they go
            through :func:`to_unit_interval` in :meth:`add` and :meth:`cdf`.
    """

    def __init__(self, bins: int = HISTOGRAM_BINS, unbounded: bool = False) -> None:
        self.bins = int(bins)
        self.unbounded = bool(unbounded)
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self._cumulative: Optional[np.ndarray] = None

    @property
    def total(self) -> int:
        """Number of scores added."""
        return int(self.counts.sum())

    def _bin_positions(self, scores: np.ndarray) -> np.ndarray:
        """Fractional bin index of each score, in ``[0, bins]``."""
        values = np.asarray(scores, dtype=np.float64)
        if self.unbounded:
            values = to_unit_interval(values)
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
    return temporary_sibling(output_path, ".tif", label)


def fusion_weights(scale_count: int, rx_weight: float = 0.0) -> List[float]:
    """Weights of the fused maps: the scales share ``1 - rx_weight``, global RX (last) the rest.

    Args:
        scale_count: Number of the network's score maps (input scales), at least 1.
        rx_weight: Weight of global RX's rank, in ``[0, 1)``; 0 adds no RX map.

    Returns:
        One weight per scale, then ``rx_weight`` if it is not 0; they sum to 1.

    Raises:
        InputError: If ``rx_weight`` is out of range.
        ValueError: If there is no scale.

    Example:
        >>> fusion_weights(2, 0.5)
        [0.25, 0.25, 0.5]
    """
    check_rx_weight(rx_weight)
    if scale_count < 1:
        raise ValueError("at least one score map of the network is needed")
    weights = [(1.0 - rx_weight) / scale_count] * scale_count
    return weights + ([float(rx_weight)] if rx_weight > 0 else [])


def check_fusion_power(power: float) -> float:
    """Returns ``power`` if it lies in ``[1, MAX_FUSION_POWER]``.

    Raises:
        InputError: Otherwise.
    """
    value = float(power)
    if not 1.0 <= value <= MAX_FUSION_POWER:
        raise InputError(
            f"the fusion power must be at least 1 and at most {MAX_FUSION_POWER:g}, got {power}"
        )
    return value


class PowerMean:
    """Running weighted power mean ``(sum w_i c_i^p)^(1/p)`` of maps in ``[0, 1]``.

    Args:
        shape: Shape of the maps.
        power: Fusion power ``p`` (1: the weighted mean), checked by :func:`check_fusion_power`.

    Example:
        >>> import numpy as np
        >>> total = PowerMean((1,), power=2.0)
        >>> total.add(np.array([0.0]), 0.5); total.add(np.array([1.0]), 0.5)
        >>> [round(float(value), 3) for value in total.result()]
        [0.707]
    """

    def __init__(self, shape: Sequence[int], power: float = 1.0) -> None:
        self.power = check_fusion_power(power)
        shape = tuple(shape)
        self.total = np.zeros(shape, dtype=np.float64 if self.power != 1.0 else np.float32)
        # For p > 1 the sum is kept relative to the largest value so far,
        # sum w_i (c_i / largest)^p, which neither underflows nor loses small ranks.
        self.largest = np.zeros(shape, dtype=np.float64) if self.power != 1.0 else None

    def add(self, values: np.ndarray, weight: float) -> None:
        """Adds one map (values in ``[0, 1]``) with its weight."""
        if self.largest is None:
            self.total += np.float32(weight) * np.asarray(values, dtype=np.float32)
            return
        values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
        largest = np.maximum(self.largest, values)
        with np.errstate(divide="ignore", invalid="ignore"):
            kept = np.where(largest > 0, self.largest / largest, 0.0) ** self.power
            added = np.where(largest > 0, values / largest, 0.0) ** self.power
        self.total = self.total * kept + weight * added
        self.largest = largest

    def result(self) -> np.ndarray:
        """The power mean of the maps added, float32 in ``[0, 1]``."""
        if self.largest is None:
            return self.total
        fused = self.largest * np.clip(self.total, 0.0, 1.0) ** (1.0 / self.power)
        return fused.astype(np.float32)


def check_rx_weight(rx_weight: float) -> float:
    """Returns ``rx_weight`` if it lies in ``[0, 1)``.

    Raises:
        InputError: Otherwise (1 would leave the network out: run RX alone instead).
    """
    value = float(rx_weight)
    if not 0.0 <= value < 1.0:
        raise InputError(f"the weight of global RX must be at least 0 and below 1, got {rx_weight}")
    return value


def fuse_score_rasters(
    score_paths: Sequence[Path],
    histograms: Sequence[ScoreHistogram],
    writer: ScoreRasterWriter,
    memory_mb: float = 256,
    reporter: Optional[ProgressReporter] = None,
    observer: Optional[BlockObserver] = None,
    weights: Optional[Sequence[float]] = None,
    power: float = 1.0,
) -> None:
    """Writes the weighted (power) mean of each map's CDF-transformed scores, strip by strip.

    A pixel is valid in the output only where it is valid in every map.

    Args:
        score_paths: One score raster per map (scale, or global RX), all on the writer's grid.
        histograms: The score histogram of each raster (same order).
        writer: Output writer (not committed here).
        memory_mb: Budget of one strip.
        reporter: Progress and cancellation.
        observer: Optional callable receiving every written block's values and validity.
        weights: Weight of each map (summing to 1), or None for equal weights.
        power: Fusion power (1: the weighted mean; see :class:`PowerMean`).

    Raises:
        CancelledError: If the reporter asks to stop.
        InputError: If the power is out of range.
    """
    weights = _checked_weights(len(score_paths), len(histograms), weights)
    check_fusion_power(power)
    reporter = reporter or ProgressReporter()
    sources = [open_raster(path) for path in score_paths]
    try:
        # per map: the read (raw, float32, mask); per strip: the float64 temporaries of one
        # CDF (positions, logits, indices, interpolation), the fused sum and the written copy;
        # a power above 1 adds PowerMean's float64 sum and largest value, both kept while
        # their successors are made, and three float64 temporaries
        bytes_per_pixel = 12 * len(sources) + 96 + (56 if power != 1.0 else 0)
        windows = block_windows(
            writer.width, writer.height, bytes_per_pixel, memory_mb, sources[0].block_size
        )
        reporter.begin("fusing score maps")
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            total = PowerMean((window.ysize, window.xsize), power)
            valid = np.ones((window.ysize, window.xsize), dtype=bool)
            for source, histogram, weight in zip(sources, histograms, weights):
                block = source.read_window(window)
                valid &= block.valid
                total.add(histogram.cdf(block.data[0]), weight)
            fused = total.result()
            writer.write(window, fused, valid)
            if observer is not None:
                observer(fused, valid)
            reporter.update((index + 1) / len(windows), "fusing score maps")
    finally:
        for source in sources:
            source.close()


def _checked_weights(
    map_count: int, histogram_count: int, weights: Optional[Sequence[float]]
) -> List[float]:
    """Equal weights by default; else the given ones, checked."""
    if map_count != histogram_count or map_count == 0:
        raise ValueError("one histogram per score raster is needed")
    if weights is None:
        return [1.0 / map_count] * map_count
    values = [float(weight) for weight in weights]
    if len(values) != map_count or min(values) < 0 or not math.isclose(sum(values), 1.0):
        raise ValueError(f"need {map_count} non-negative weights summing to 1, got {values}")
    return values


def fuse_score_arrays(
    score_maps: List[np.ndarray],
    valid: Optional[np.ndarray] = None,
    weights: Optional[Sequence[float]] = None,
    unbounded: Optional[Sequence[bool]] = None,
    power: float = 1.0,
) -> np.ndarray:
    """Fuses in-memory score maps of one image by averaged ranks (same rule as the rasters).

    Args:
        score_maps: Score maps of one image (same shape).
        valid: Pixels whose scores make up each map's CDF (all by default).
        weights: Weight of each map (summing to 1), or None for equal weights.
        unbounded: Per map, whether its scores are unbounded (see :class:`ScoreHistogram`);
            all bounded by default.
        power: Fusion power (1: the weighted mean of the ranks; see :class:`PowerMean`).
    """
    weights = _checked_weights(len(score_maps), len(score_maps), weights)
    kinds = [False] * len(score_maps) if unbounded is None else list(unbounded)
    use = np.ones(score_maps[0].shape, dtype=bool) if valid is None else valid
    total = PowerMean(score_maps[0].shape, power)
    for score_map, weight, kind in zip(score_maps, weights, kinds):
        histogram = ScoreHistogram(unbounded=kind)
        histogram.add(score_map[use])
        total.add(histogram.cdf(score_map), weight)
    return total.result()
