"""Evaluation of a score raster against an anomaly-mask raster, in bounded memory.

:func:`evaluate_rasters` reads both rasters window by window and returns the exact pixel AUC
(the same value as scikit-learn's ``roc_auc_score`` on all valid pixels), the 3D-ROC family
and a ROC curve for plotting. Scores are compared at their own precision (float64 scores
from other tools are not rounded to float32, which would tie values that differ). Pixels
whose score is nodata or non-finite, and pixels whose mask value is the mask's nodata, are
left out. Mask values other than 0 mark anomalies. (A mask whose nodata value is 0, as GIS
tools often write binary masks, has no "unknown" pixels: its 0 pixels are background.)

How the AUC stays exact without holding the raster in memory: the AUC is the Mann–Whitney
statistic, a sum over (anomaly, background) pairs, so the pixels of the smaller class (usually
the anomalies) are kept sorted in memory and the larger class is streamed against them
(:func:`~uniadrs_engine.metrics.roc.count_pairs`). When the smaller class does not fit in the
memory budget it is taken in chunks, one extra pass over the rasters per chunk. The curve
returned for plotting comes from 4096-bin histograms of the two classes.
:func:`pooled_auc_rasters` ranks the pixels of several rasters together the same way.

Example:
    >>> result = evaluate_rasters("scores.tif", "mask.tif")  # doctest: +SKIP
    >>> result.auc, result.roc3d.snpr  # doctest: +SKIP
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.figures import agg_figure, save_png
from uniadrs_engine.metrics.roc import RocCurve, check_both_classes, count_pairs
from uniadrs_engine.metrics.roc3d import Roc3dResult, normalised_class_means
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import RasterSource, Window, open_raster
from uniadrs_engine.raster.same_grid import check_same_grid
from uniadrs_engine.raster.tiling import block_windows
from uniadrs_engine.raster.writer import check_not_an_input, check_output_folder

PathLike = Union[str, Path]

#: Bins of the class histograms behind the plotted ROC curve.
CURVE_BINS = 4096

#: Bytes per pixel held while streaming both rasters (two reads, float64 for exact float64
#: scores, masks and float64 copies).
_BYTES_PER_PIXEL = 40


@dataclass
class EvaluationResult:
    """The evaluation of one score raster.

    Attributes:
        score_path: The score raster.
        mask_path: The anomaly-mask raster.
        auc: Pixel AUC-ROC (anomalies positive), exact.
        roc3d: The 3D-ROC family on the min-max normalised map.
        n_pixels: Pixels evaluated (valid in both rasters).
        n_anomalies: Anomaly pixels among them.
        n_ignored: Pixels left out (nodata or non-finite score, or mask nodata).
        score_min: Smallest evaluated score.
        score_max: Largest evaluated score.
        curve: ROC curve for plotting (from histograms; its own area may differ slightly
            from ``auc``).
    """

    score_path: str
    mask_path: str
    auc: float
    roc3d: Roc3dResult
    n_pixels: int
    n_anomalies: int
    n_ignored: int
    score_min: float
    score_max: float
    curve: RocCurve = field(repr=False)

    def as_dict(self) -> Dict[str, Any]:
        """Returns a JSON-ready dict (non-finite numbers become None), without the curve."""
        values: Dict[str, Any] = {
            "score": self.score_path,
            "mask": self.mask_path,
            "auc": self.auc,
            **self.roc3d.as_dict(),
            "n_pixels": self.n_pixels,
            "n_anomalies": self.n_anomalies,
            "n_ignored": self.n_ignored,
            "score_min": self.score_min,
            "score_max": self.score_max,
        }
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in values.items()
        }


@dataclass
class _ClassSummary:
    """Counts, sums and range of the evaluated pixels (first pass)."""

    n_pixels: int = 0
    n_anomalies: int = 0
    n_ignored: int = 0
    sum_anomaly: float = 0.0
    sum_background: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    @property
    def n_background(self) -> int:
        return self.n_pixels - self.n_anomalies


class _PairStream:
    """Streams the evaluated pixels of one or more (score raster, mask raster) pairs.

    Each pass opens the rasters again and walks their memory-bounded strips in order.
    """

    def __init__(
        self,
        pairs: Sequence[Tuple[PathLike, PathLike]],
        memory_mb: float,
        score_band: int = 1,
        mask_band: int = 1,
    ) -> None:
        self.pairs = [(str(score), str(mask)) for score, mask in pairs]
        self.score_band = score_band
        self.mask_band = mask_band
        self.windows: List[List[Window]] = []
        for score_path, mask_path in self.pairs:
            with self._open(score_path, mask_path) as (scores, mask):
                check_same_grid(scores, mask)
                self.windows.append(
                    block_windows(scores.width, scores.height, _BYTES_PER_PIXEL, memory_mb)
                )

    @contextmanager
    def _open(self, score_path: str, mask_path: str) -> Iterator[Tuple[RasterSource, RasterSource]]:
        with (
            open_raster(score_path, bands=[self.score_band], exact=True) as scores,
            open_raster(mask_path, bands=[self.mask_band], exact=True, stored=True) as mask,
        ):
            yield scores, mask

    def __len__(self) -> int:
        return sum(len(windows) for windows in self.windows)

    def blocks(self) -> Iterator[Tuple[np.ndarray, np.ndarray, int]]:
        """Yields ``(scores float64 [n], is_anomaly bool [n], n_ignored)`` per strip."""
        for (score_path, mask_path), windows in zip(self.pairs, self.windows):
            with self._open(score_path, mask_path) as (scores, mask):
                # a mask whose nodata is 0 is a plain binary mask: 0 is background, not unknown
                mask_nodata_is_background = mask.nodata[0] == 0
                for window in windows:
                    score_block = scores.read_window(window)
                    mask_block = mask.read_window(window)
                    keep = score_block.valid
                    if not mask_nodata_is_background:
                        keep = keep & mask_block.valid
                    yield (
                        score_block.data[0][keep].astype(np.float64),
                        mask_block.data[0][keep] != 0,
                        int(keep.size - keep.sum()),
                    )


@dataclass
class _Ranking:
    """Everything the passes over the pixels produce."""

    summary: _ClassSummary
    auc: float
    anomaly_counts: np.ndarray
    background_counts: np.ndarray
    edges: np.ndarray


def _summarise(
    stream: _PairStream, reporter: ProgressReporter, anomaly_capacity: int
) -> Tuple[_ClassSummary, Optional[np.ndarray]]:
    """First pass: counts, sums, range; also keeps the anomaly scores if they fit."""
    summary = _ClassSummary()
    kept: Optional[List[np.ndarray]] = []
    n_kept = 0
    reporter.begin("reading scores and mask")
    for index, (values, is_anomaly, n_ignored) in enumerate(stream.blocks()):
        reporter.check_cancelled()
        summary.n_ignored += n_ignored
        if values.size:
            anomaly_values = values[is_anomaly]
            summary.n_pixels += values.size
            summary.n_anomalies += anomaly_values.size
            summary.sum_anomaly += float(anomaly_values.sum())
            summary.sum_background += float(values[~is_anomaly].sum())
            summary.minimum = min(summary.minimum, float(values.min()))
            summary.maximum = max(summary.maximum, float(values.max()))
            if kept is not None:
                n_kept += anomaly_values.size
                if n_kept <= anomaly_capacity:
                    kept.append(anomaly_values)
                else:
                    kept = None
        reporter.update((index + 1) / len(stream), "reading scores and mask")
    anomalies = None
    if kept is not None:
        anomalies = np.sort(np.concatenate(kept)) if kept else np.empty(0)
    return summary, anomalies


def _collect_chunk(
    stream: _PairStream,
    small_is_anomaly: bool,
    start: int,
    stop: int,
    reporter: ProgressReporter,
) -> np.ndarray:
    """Returns, sorted, the scores of the smaller class with ordinal in ``[start, stop)``."""
    collected = []
    seen = 0
    reporter.begin("collecting reference scores")
    for index, (values, is_anomaly, _) in enumerate(stream.blocks()):
        reporter.check_cancelled()
        class_values = values[is_anomaly] if small_is_anomaly else values[~is_anomaly]
        low, high = max(start - seen, 0), min(stop - seen, class_values.size)
        if high > low:
            collected.append(class_values[low:high])
        seen += class_values.size
        reporter.update((index + 1) / len(stream), "collecting reference scores")
        if seen >= stop:
            break
    return np.sort(np.concatenate(collected)) if collected else np.empty(0)


def _counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of evenly spaced ``edges`` (``np.linspace``).

    Given the number of bins and the range, numpy bins evenly spaced edges by arithmetic
    (the same edges, so the same counts); given the edges themselves it sorts every strip.
    """
    as_edges = np.asarray(values, dtype=edges.dtype)  # numpy bins in the values' type
    if not math.isfinite(float(edges[-1]) - float(edges[0])):  # wider than float64: halved
        return np.histogram(as_edges / 2, bins=len(edges) - 1, range=(edges[0] / 2, edges[-1] / 2))[
            0
        ]
    return np.histogram(as_edges, bins=len(edges) - 1, range=(edges[0], edges[-1]))[0]


def _histogram_curve(
    anomaly_counts: np.ndarray, background_counts: np.ndarray, edges: np.ndarray, auc: float
) -> RocCurve:
    """Builds a ROC curve from class histograms (thresholds at the bins' lower edges)."""
    detected = np.cumsum(anomaly_counts[::-1])
    false_alarms = np.cumsum(background_counts[::-1])
    tpr = np.concatenate([[0.0], detected / max(detected[-1], 1)])
    fpr = np.concatenate([[0.0], false_alarms / max(false_alarms[-1], 1)])
    thresholds = np.concatenate([[np.inf], edges[:-1][::-1]])
    return RocCurve(false_positive_rate=fpr, true_positive_rate=tpr, thresholds=thresholds, auc=auc)


def _rank(stream: _PairStream, memory_mb: float, reporter: ProgressReporter, what: str) -> _Ranking:
    """Runs the passes: summary, then exact pair counts (chunked if needed) and histograms."""
    # a quarter of the budget for the reference scores (float64, searchsorted temporaries);
    # the strips read take at most half of it
    capacity = max(1, int(memory_mb * 2**20 / 4 / 8))
    summary, anomalies = _summarise(stream, reporter.sub(0.0, 0.3), anomaly_capacity=capacity)
    check_both_classes(summary.n_anomalies, summary.n_pixels, what)
    small_is_anomaly = summary.n_anomalies <= summary.n_background
    n_small = summary.n_anomalies if small_is_anomaly else summary.n_background
    n_chunks = max(1, math.ceil(n_small / capacity))
    if math.isfinite(summary.maximum - summary.minimum):
        edges = np.linspace(summary.minimum, summary.maximum, CURVE_BINS + 1)
    else:  # scores spanning more than float64 holds (a fill of ±1e308 beside them)
        steps = np.linspace(0.0, 1.0, CURVE_BINS + 1)
        edges = summary.minimum * (1.0 - steps) + summary.maximum * steps
    if summary.maximum <= summary.minimum:
        edges = np.linspace(summary.minimum - 0.5, summary.minimum + 0.5, CURVE_BINS + 1)
    anomaly_counts = np.zeros(CURVE_BINS, dtype=np.int64)
    background_counts = np.zeros(CURVE_BINS, dtype=np.int64)
    twice_wins = 0  # 2 * (anomaly > background pairs) + (tied pairs): an exact integer
    for chunk in range(n_chunks):
        chunk_reporter = reporter.sub(
            0.3 + 0.7 * chunk / n_chunks, 0.3 + 0.7 * (chunk + 1) / n_chunks
        )
        start, stop = chunk * capacity, min((chunk + 1) * capacity, n_small)
        reused = n_chunks == 1 and small_is_anomaly and anomalies is not None
        if reused:
            reference = anomalies
        else:
            reference = _collect_chunk(
                stream, small_is_anomaly, start, stop, chunk_reporter.sub(0.0, 0.5)
            )
        count_reporter = chunk_reporter.sub(0.0 if reused else 0.5, 1.0)
        reference_counts = _counts(reference, edges)
        if small_is_anomaly:
            anomaly_counts += reference_counts
        else:
            background_counts += reference_counts
        count_reporter.begin("ranking scores")
        for index, (values, is_anomaly, _) in enumerate(stream.blocks()):
            reporter.check_cancelled()
            large = values[~is_anomaly] if small_is_anomaly else values[is_anomaly]
            greater, equal = count_pairs(reference, large)
            if small_is_anomaly:
                twice_wins += 2 * greater + equal
            else:
                less = reference.size * large.size - greater - equal
                twice_wins += 2 * less + equal
            if chunk == 0:
                large_counts = _counts(large, edges)
                if small_is_anomaly:
                    background_counts += large_counts
                else:
                    anomaly_counts += large_counts
            count_reporter.update((index + 1) / len(stream), "ranking scores")
    auc = twice_wins / (2.0 * summary.n_anomalies * summary.n_background)
    return _Ranking(summary, float(auc), anomaly_counts, background_counts, edges)


def evaluate_rasters(
    score_path: PathLike,
    mask_path: PathLike,
    memory_mb: float = 256,
    progress: Optional[ProgressReporter] = None,
    *,
    score_band: int = 1,
    mask_band: int = 1,
) -> EvaluationResult:
    """Evaluates a score raster against an anomaly mask on the same grid.

    Args:
        score_path: Score raster (higher = more anomalous); its nodata pixels are left out.
        mask_path: Anomaly mask (non-zero = anomaly; its nodata pixels are left out unless
            the nodata value is 0).
        memory_mb: Memory budget for the strips read and the scores kept for exact ranking.
        progress: Optional progress/cancel reporter.
        score_band: Band of the score raster to evaluate (1-based).
        mask_band: Band of the mask raster (1-based).

    Returns:
        The AUC, 3D-ROC family, pixel counts and a ROC curve.

    Raises:
        InputError: If a raster cannot be read, the grids differ, or the evaluated pixels hold
            only anomalies or only background.
        CancelledError: If ``progress`` asks to stop.
    """
    reporter = progress or ProgressReporter()
    stream = _PairStream([(score_path, mask_path)], memory_mb / 2, score_band, mask_band)
    ranking = _rank(stream, memory_mb, reporter, f"mask {mask_path}")
    summary = ranking.summary
    auc_dt, auc_ft = _class_means(ranking)
    return EvaluationResult(
        score_path=str(score_path),
        mask_path=str(mask_path),
        auc=ranking.auc,
        roc3d=Roc3dResult.from_areas(ranking.auc, auc_dt, auc_ft),
        n_pixels=summary.n_pixels,
        n_anomalies=summary.n_anomalies,
        n_ignored=summary.n_ignored,
        score_min=summary.minimum,
        score_max=summary.maximum,
        curve=_histogram_curve(
            ranking.anomaly_counts, ranking.background_counts, ranking.edges, ranking.auc
        ),
    )


def _class_means(ranking: _Ranking) -> Tuple[float, float]:
    """AUC(D,tau) and AUC(F,tau): each class's mean score, normalised to the map's range.

    From the class sums; when the scores span more than float64 holds (an undeclared fill of
    ±1e308 beside them), the sums or the span overflow, and the means come from the
    histogram's bins instead (within half a bin, 1/8192 of the range).
    """
    summary = ranking.summary
    exact = (summary.sum_anomaly, summary.sum_background, summary.maximum - summary.minimum)
    if all(math.isfinite(value) for value in exact):
        return normalised_class_means(
            summary.sum_anomaly,
            summary.n_anomalies,
            summary.sum_background,
            summary.n_background,
            summary.minimum,
            summary.maximum,
        )
    centres = (np.arange(len(ranking.anomaly_counts)) + 0.5) / len(ranking.anomaly_counts)
    return (
        float(ranking.anomaly_counts @ centres) / summary.n_anomalies,
        float(ranking.background_counts @ centres) / summary.n_background,
    )


def pooled_auc_rasters(
    pairs: Sequence[Tuple[PathLike, PathLike]],
    memory_mb: float = 256,
    progress: Optional[ProgressReporter] = None,
) -> float:
    """Returns one exact AUC over the pixels of several score rasters taken together.

    The raster counterpart of :func:`~uniadrs_engine.metrics.roc.pooled_auc` (METHOD.md
    §8's "pooled per modality"): every evaluated pixel of every pair is ranked against every
    other, in bounded memory.

    Args:
        pairs: ``(score raster, mask raster)`` per image; each pair on one grid.
        memory_mb: Memory budget.
        progress: Optional progress/cancel reporter.

    Raises:
        InputError: If no pair is given, a pair's grids differ, or the pooled pixels hold one
            class only.
    """
    if not pairs:
        raise InputError("no score raster to pool")
    stream = _PairStream(pairs, memory_mb / 2)
    return _rank(stream, memory_mb, progress or ProgressReporter(), "the pooled masks").auc


def check_roc_png_path(path: PathLike, *inputs: Optional[PathLike]) -> Path:
    """Refuses a ROC figure path: not ending in ``.png``, an unfit folder, or an input.

    Args:
        path: The figure's path.
        *inputs: Files it must not overwrite (the score raster and the mask).

    Raises:
        InputError: In those cases, with a one-line reason.
    """
    path = check_output_folder(path)
    check_not_an_input(path, *inputs)
    if path.suffix.lower() != ".png":
        raise InputError(f"the ROC figure {path.name} must end in .png: it is drawn as a PNG")
    return path


def save_roc_png(
    result: Union[EvaluationResult, RocCurve], path: PathLike, title: Optional[str] = None
) -> Path:
    """Draws the ROC curve and the detection/false-alarm rates against tau to a PNG.

    Left panel: ``P_D`` against ``P_F`` (the ROC, with its AUC). Right panel: ``P_D(tau)`` and
    ``P_F(tau)`` over the normalised threshold ``tau`` (two projections of the 3D ROC).

    Args:
        result: An :class:`EvaluationResult` or a :class:`~uniadrs_engine.metrics.roc.RocCurve`.
        path: Output PNG; written under a temporary name, then renamed.
        title: Optional figure title.

    Returns:
        The PNG's path.

    Raises:
        InputError: If :func:`check_roc_png_path` refuses the path.
    """
    curve = result.curve if isinstance(result, EvaluationResult) else result
    path = check_roc_png_path(path)
    figure = agg_figure(9.0, 4.0)
    roc_axes, tau_axes = figure.subplots(1, 2)
    roc_axes.plot(
        curve.false_positive_rate, curve.true_positive_rate, lw=1.5, label=f"AUC = {curve.auc:.4f}"
    )
    roc_axes.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    roc_axes.set(
        xlabel="false-alarm rate P_F",
        ylabel="detection rate P_D",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="ROC (D, F)",
    )
    roc_axes.legend(loc="lower right")
    finite = np.isfinite(curve.thresholds)
    if finite.sum() >= 2:
        thresholds = curve.thresholds[finite]
        span = thresholds.max() - thresholds.min()
        tau = (thresholds - thresholds.min()) / span if span > 0 else np.zeros_like(thresholds)
        tau_axes.plot(tau, curve.true_positive_rate[finite], label="P_D(tau)")
        tau_axes.plot(tau, curve.false_positive_rate[finite], label="P_F(tau)")
        tau_axes.legend(loc="upper right")
    tau_axes.set(
        xlabel="normalised threshold tau",
        ylabel="rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="3D-ROC projections",
    )
    if title:
        figure.suptitle(title)
    return save_png(figure, path)
