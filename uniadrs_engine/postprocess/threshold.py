"""Turns an anomaly-score raster into a binary mask raster and anomaly polygons.

Three ways of choosing the score cut ``t`` (see :class:`ThresholdRule`):

* ``"value"``: a fixed score; a pixel is an anomaly when ``score >= t``.
* ``"top_percent"``: the ``k`` percent of valid pixels with the highest scores. With ``n``
  valid pixels, ``t`` is the ``ceil(k / 100 * n)``-th highest score and a pixel is an anomaly
  when ``score >= t``: at least ``k`` percent of the pixels are flagged (more when scores tie
  at ``t``).
* ``"false_alarm_rate"``: the highest-scoring fraction ``r`` of the *background* is allowed
  to be flagged. The background is every valid pixel, or only the pixels of an optional
  background mask raster (non-zero = background, e.g. the non-anomalous pixels of a ground
  truth). With ``m`` background pixels, ``t`` is the ``(floor(r * m) + 1)``-th highest
  background score and a pixel is an anomaly when ``score > t``, so at most ``r * m``
  background pixels are flagged (the realised false-alarm rate never exceeds ``r``). Without
  a background mask this is "the top fraction ``r``", counted from below instead of above.

Order statistics are exact, yet the raster is never loaded whole: a radix selection counts
16-bit digits of order-preserving keys in 65,536-bin histograms, one memory-bounded strip at
a time, one digit per pass: two passes for float32 scores; float64 scores (from other tools)
are ranked at their own precision, with 64-bit keys in four passes.

Objects are the 8-connected groups of anomaly pixels (``gdal.Polygonize``, traced into a
GeoPackage work file: their outlines are not held in memory, only a few numbers per object,
:data:`OBJECT_TABLE_BYTES`, within half the budget or else in files of the work folder).
Each
gets its area (squared CRS units; square metres on a geographic CRS; pixels on a raster
without georeferencing, :meth:`~uniadrs_engine.raster.vector_frame.VectorFrame.area`), its
pixel count and the min/mean/max score of its pixels; objects outside
``[min_object_area, max_object_area]`` are dropped from both the polygons and the mask.
Each object is one valid multipolygon feature (pixels that touch at a corner only are split
there, :func:`valid_multipolygon`), in any OGR format that stores polygons and fields;
another format is refused. Polygons are in the score raster's CRS; those of a raster
georeferenced by ground control points (such as Sentinel-1 GRD) or rational polynomial
coefficients only are carried through them into map coordinates, where QGIS draws the
raster (:class:`~uniadrs_engine.raster.vector_frame.VectorFrame`). The mask raster is
``uint8`` on the score raster's grid: 1 anomaly, 0 not, 255 (nodata) where the score is
nodata.

Example:
    >>> report = threshold_raster(  # doctest: +SKIP
    ...     "scores.tif", ThresholdRule("top_percent", 0.5),
    ...     mask_path="mask.tif", polygons_path="anomalies.gpkg", min_object_area=200.0)
    >>> report.threshold, report.object_count  # doctest: +SKIP
    (0.8731, 12)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
from osgeo import gdal, ogr

from uniadrs_engine.errors import InputError
from uniadrs_engine.progress import CancelCheck, ProgressCallback, ProgressReporter
from uniadrs_engine.raster.reader import (
    RasterSource,
    Window,
    open_raster,
    quiet_gdal_errors,
)
from uniadrs_engine.raster.same_grid import check_same_grid
from uniadrs_engine.raster.tiling import block_windows
from uniadrs_engine.raster.vector_frame import VectorFrame
from uniadrs_engine.raster.writer import (
    MASK_OVERVIEWS,
    ScoreRasterWriter,
    check_not_an_input,
    check_output_folder,
    delete_leftover,
    gdal_write_errors,
    release_frames,
    temporary_sibling,
    work_folder,
)

PathLike = Union[str, Path]

#: The ways of choosing the score cut, in the order user interfaces list them.
THRESHOLD_METHODS: Tuple[str, ...] = ("value", "top_percent", "false_alarm_rate")

#: Values of the mask raster.
MASK_ANOMALY = 1
MASK_BACKGROUND = 0
MASK_NODATA = 255
MASK_BAND_DESCRIPTION = "anomaly mask (1 anomaly, 0 background, 255 no score)"

#: Attribute fields of the polygon output, in order.
POLYGON_FIELDS: Tuple[str, ...] = (
    "object_id",
    "pixels",
    "area",
    "score_min",
    "score_mean",
    "score_max",
)

#: Memory one pixel takes in a streaming pass (score, keys, masks, ids and copies).
_BYTES_PER_PIXEL = 40

#: Preferred OGR driver when several can write an extension.
_PREFERRED_VECTOR_DRIVERS = ("GPKG", "ESRI Shapefile", "GeoJSON", "FlatGeobuf", "SQLite")

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThresholdRule:
    """How the score cut is chosen.

    Attributes:
        method: One of :data:`THRESHOLD_METHODS`.
        value: The score (``"value"``), a percentage in ``[0, 100]`` (``"top_percent"``) or
            a fraction in ``[0, 1]`` (``"false_alarm_rate"``).
    """

    method: str
    value: float

    def __post_init__(self) -> None:
        if self.method not in THRESHOLD_METHODS:
            known = ", ".join(THRESHOLD_METHODS)
            raise InputError(f"unknown threshold method {self.method!r}; use one of {known}")
        if not math.isfinite(float(self.value)):
            raise InputError(f"the {self.method} threshold must be a finite number")
        if self.method == "top_percent" and not 0.0 <= self.value <= 100.0:
            raise InputError(f"top percent must lie in [0, 100], got {self.value}")
        if self.method == "false_alarm_rate" and not 0.0 <= self.value <= 1.0:
            raise InputError(f"false-alarm rate must lie in [0, 1], got {self.value}")


@dataclass(frozen=True)
class ScoreCut:
    """A resolved score cut.

    Attributes:
        threshold: The score ``t`` (``inf`` flags nothing, ``-inf`` every valid pixel).
        inclusive: True when a pixel is an anomaly at ``score >= t``, False at ``score > t``.
        reference_pixels: Pixels the rule was computed on (valid, or background, pixels).
    """

    threshold: float
    inclusive: bool
    reference_pixels: int

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """Returns ``bool`` anomaly flags for ``scores`` (validity is the caller's business).

        The comparison is exact, as if the scores were widened to float64: a float32 score of
        0.5 is below a cut of 0.50000001 (NumPy would round the cut to float32, 0.5, first).
        """
        if scores.dtype == np.float32:
            cut = _float32_cut(self.threshold, self.inclusive)
        elif scores.dtype == np.float64:
            cut = np.float64(self.threshold)
        else:
            scores, cut = scores.astype(np.float64), np.float64(self.threshold)
        if self.inclusive:
            return scores >= cut
        return scores > cut


def _float32_cut(threshold: float, inclusive: bool) -> np.float32:
    """The float32 cut that flags float32 scores as ``threshold`` does in float64.

    ``score >= t`` holds for the same float32 scores as ``score >= c``, ``c`` the least
    float32 not below ``t``; ``score > t`` as ``score > f``, ``f`` the greatest float32 not
    above ``t``.

    Example:
        >>> float(_float32_cut(0.50000001, True)) > 0.5, float(_float32_cut(0.50000001, False))
        (True, 0.5)
    """
    with np.errstate(over="ignore"):  # a cut beyond float32's range: an infinite cut
        cut = np.float32(threshold)
        if inclusive and float(cut) < threshold:
            cut = np.nextafter(cut, np.float32(np.inf))
        elif not inclusive and float(cut) > threshold:
            cut = np.nextafter(cut, np.float32(-np.inf))
    return cut


@dataclass
class ThresholdReport:
    """What :func:`threshold_raster` did.

    Attributes:
        threshold: The score cut used.
        inclusive: True for ``score >= threshold``, False for ``score > threshold``.
        valid_pixels: Pixels with a valid score.
        anomaly_pixels: Pixels flagged in the output (after the area filter).
        object_count: Objects kept (after the area filter).
        objects_removed: Objects dropped by the area filter.
        mask_path: The mask raster written, or None.
        polygons_path: The polygon file written, or None.
    """

    threshold: float
    inclusive: bool
    valid_pixels: int
    anomaly_pixels: int
    object_count: int
    objects_removed: int
    mask_path: Optional[Path]
    polygons_path: Optional[Path]


#: Bytes each traced object takes in the figures kept while thresholding: its area, pixel
#: count, score sum, minimum and maximum (8 bytes each) and whether it is kept (1).
OBJECT_TABLE_BYTES = 41

#: Objects whose figures are filtered at a time.
_OBJECT_CHUNK = 1 << 20

#: Objects written between two looks at progress and cancellation.
_POLYGON_CHECK_EVERY = 1000


@dataclass
class _ObjectTable:
    """Per-object figures, indexed by object id (index 0 is unused).

    Held in memory, or in files of the work folder (``numpy.memmap``) when that would take
    more than the memory budget: a noisy score map can trace millions of objects.
    """

    area: np.ndarray
    pixels: np.ndarray
    score_sum: np.ndarray
    score_min: np.ndarray
    score_max: np.ndarray
    keep: np.ndarray

    @classmethod
    def empty(cls, areas: np.ndarray, folder: Optional[Path] = None) -> _ObjectTable:
        """A table for objects of these areas; in files of ``folder`` when given."""
        size = len(areas)

        def array(name: str, dtype: Any, fill: Any) -> np.ndarray:
            if folder is None:
                return np.full(size, fill, dtype=dtype)
            stored = np.lib.format.open_memmap(
                folder / f"{name}.npy", mode="w+", dtype=dtype, shape=(size,)
            )
            stored[:] = fill
            return stored

        return cls(
            area=areas,
            pixels=array("pixels", np.int64, 0),
            score_sum=array("score_sum", np.float64, 0.0),
            score_min=array("score_min", np.float64, np.inf),
            score_max=array("score_max", np.float64, -np.inf),
            keep=array("keep", bool, True),
        )

    def add(self, object_ids: np.ndarray, scores: np.ndarray) -> None:
        """Accumulates the scores of object pixels (``object_ids > 0``; may be none).

        Costs the pixels' count, not the objects': only the objects present are touched.
        """
        if object_ids.size == 0:
            return
        order = np.argsort(object_ids, kind="stable")
        sorted_ids, sorted_scores = object_ids[order], scores[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        unique_ids = sorted_ids[starts]  # each once: plain indexing accumulates correctly
        self.pixels[unique_ids] += np.diff(np.r_[starts, sorted_ids.size])
        self.score_sum[unique_ids] += np.add.reduceat(sorted_scores, starts)
        self.score_min[unique_ids] = np.minimum(
            self.score_min[unique_ids], np.minimum.reduceat(sorted_scores, starts)
        )
        self.score_max[unique_ids] = np.maximum(
            self.score_max[unique_ids], np.maximum.reduceat(sorted_scores, starts)
        )


def threshold_raster(
    score_path: PathLike,
    rule: ThresholdRule,
    *,
    mask_path: Optional[PathLike] = None,
    polygons_path: Optional[PathLike] = None,
    min_object_area: float = 0.0,
    max_object_area: Optional[float] = None,
    background_mask_path: Optional[PathLike] = None,
    memory_mb: float = 256.0,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
) -> ThresholdReport:
    """Thresholds a score raster into a mask raster and/or anomaly polygons.

    Args:
        score_path: Single-band score raster (higher = more anomalous; band 1 is used).
        rule: How the score cut is chosen.
        mask_path: Output ``uint8`` GeoTIFF (1 anomaly, 0 not, 255 nodata), or None.
        polygons_path: Output vector file (any OGR format known by its extension, e.g.
            ``.gpkg``, ``.shp``, ``.geojson``), or None.
        min_object_area: Objects smaller than this are dropped (in the unit of their area).
        max_object_area: Objects larger than this are dropped; None for no limit.
        background_mask_path: Only for ``"false_alarm_rate"``: a raster on the same grid whose
            non-zero valid pixels are the background the rate is counted on.
        memory_mb: Memory budget of the data in flight: one streaming strip, or, once objects
            are traced, a strip and the per-object figures together (half each; the figures
            go to files of the work folder beyond their half).
        progress: ``progress(fraction, message)``.
        is_cancelled: Returns True to stop; nothing is left behind then.

    Returns:
        A :class:`ThresholdReport`.

    Raises:
        InputError: On unreadable inputs, a score raster without valid pixels, bad area limits
            or an unknown output format.
        CancelledError: If cancelled.
    """
    if mask_path is None and polygons_path is None:
        raise InputError("give a mask raster path, a polygon file path, or both")
    if not (
        math.isfinite(min_object_area)
        and min_object_area >= 0
        and (max_object_area is None or max_object_area >= min_object_area)
    ):
        raise InputError(
            f"object area limits must satisfy 0 <= minimum <= maximum, got "
            f"[{min_object_area}, {max_object_area}]"
        )
    for output in (mask_path, polygons_path):
        if output is not None:
            check_not_an_input(output, score_path, background_mask_path)
    if polygons_path is not None:
        check_only_polygons_are_replaced(polygons_path)
    if background_mask_path is not None and rule.method != "false_alarm_rate":
        raise InputError("a background mask is only used with the false-alarm-rate method")
    reporter = ProgressReporter(progress, is_cancelled)
    filtering = min_object_area > 0 or max_object_area is not None
    with open_raster(score_path, bands=[1], exact=True) as scores:
        # float64 scores (read exact) and their 64-bit keys take twice the bytes
        bytes_per_pixel = _BYTES_PER_PIXEL * scores.value_dtype.itemsize // 4
        windows = block_windows(
            scores.width, scores.height, bytes_per_pixel, memory_mb, scores.block_size
        )
        cut, valid_pixels = resolve_score_cut(
            scores, rule, windows, background_mask_path, reporter.sub(0.0, 0.4)
        )
        if polygons_path is None and not filtering:
            anomaly_pixels = _write_mask(
                scores,
                windows,
                cut,
                Path(mask_path),
                reporter.sub(0.4, 1.0),  # type: ignore[arg-type]
            )
            reporter.update(1.0, "mask written")
            return ThresholdReport(
                threshold=cut.threshold,
                inclusive=cut.inclusive,
                valid_pixels=valid_pixels,
                anomaly_pixels=anomaly_pixels,
                object_count=0,
                objects_removed=0,
                mask_path=Path(mask_path),  # type: ignore[arg-type]
                polygons_path=None,
            )
        output_folder = _output_folder(mask_path, polygons_path)
        # the object passes share the budget: half for a strip, half for the object table
        object_windows = block_windows(
            scores.width, scores.height, bytes_per_pixel, memory_mb / 2, scores.block_size
        )
        with work_folder(output_folder, "threshold") as work:
            try:
                return _threshold_with_objects(
                    scores,
                    object_windows,
                    cut,
                    valid_pixels,
                    work,
                    mask_path=None if mask_path is None else Path(mask_path),
                    polygons_path=None if polygons_path is None else Path(polygons_path),
                    area_range=(min_object_area, max_object_area),
                    memory_mb=memory_mb,
                    reporter=reporter,
                )
            except BaseException as error:
                release_frames(error)  # the work files close here, whatever their state
                raise


def resolve_score_cut(
    scores: RasterSource,
    rule: ThresholdRule,
    windows: List[Window],
    background_mask_path: Optional[PathLike] = None,
    reporter: Optional[ProgressReporter] = None,
) -> Tuple[ScoreCut, int]:
    """Turns a rule into a score cut, streaming over ``windows`` of the score raster.

    Returns:
        The cut and the number of valid score pixels.

    Raises:
        InputError: If the raster has no valid pixel (or no background pixel).
    """
    reporter = reporter or ProgressReporter()
    background = None
    if background_mask_path is not None:
        background = open_raster(background_mask_path, bands=[1], exact=True, stored=True)
        try:
            check_same_grid(scores, background)
        except InputError:
            background.close()
            raise
    key_bits = 8 * scores.value_dtype.itemsize  # 32 or 64: keys of float32 or float64
    try:
        high_counts = np.zeros(1 << 16, dtype=np.int64)
        valid_pixels = 0
        reporter.begin("counting scores")
        for index, (values, _, valid_count) in enumerate(
            _region_values(scores, windows, background)
        ):
            reporter.check_cancelled()
            valid_pixels += valid_count
            if rule.method != "value":
                high_counts += _digit_counts(_order_keys(values), key_bits, 0)
            reporter.update(0.5 * (index + 1) / len(windows), "counting scores")
        if valid_pixels == 0:
            raise InputError(f"{scores.path} has no valid score pixel")
        if rule.method == "value":
            return ScoreCut(float(rule.value), True, valid_pixels), valid_pixels
        reference = int(high_counts.sum())
        if reference == 0:
            raise InputError(f"the background mask selects no valid pixel of {scores.path}")
        if rule.method == "top_percent":
            rank = math.ceil(rule.value / 100.0 * reference - 1e-9)
            if rank <= 0:
                return ScoreCut(math.inf, True, reference), valid_pixels
            inclusive = True
        else:
            rank = math.floor(rule.value * reference + 1e-9) + 1
            if rank > reference:
                return ScoreCut(-math.inf, False, reference), valid_pixels
            inclusive = False
        value = _kth_largest(
            scores, windows, background, high_counts, rank, key_bits, reporter.sub(0.5, 1.0)
        )
        return ScoreCut(value, inclusive, reference), valid_pixels
    finally:
        if background is not None:
            background.close()


def _region_values(
    scores: RasterSource, windows: List[Window], background: Optional[RasterSource]
) -> Iterator[Tuple[np.ndarray, np.ndarray, int]]:
    """Yields per window: the reference-region scores (1-D), its mask and the valid count."""
    for window in windows:
        block = scores.read_window(window)
        region = block.valid
        if background is not None:
            mask_block = background.read_window(window)
            region = region & mask_block.valid & (mask_block.data[0] != 0)
        yield block.data[0][region], region, int(block.valid.sum())


def _order_keys(values: np.ndarray) -> np.ndarray:
    """Maps float32 (float64) values to uint32 (uint64) keys of the same order (no NaN)."""
    if values.dtype == np.float64:
        unsigned, top = np.uint64, np.uint64(1 << 63)
    else:
        values, unsigned, top = values.astype(np.float32, copy=False), np.uint32, np.uint32(1 << 31)
    bits = np.ascontiguousarray(values).view(unsigned)
    negative = (bits & top) != 0
    return np.where(negative, ~bits, bits | top)


def _value_of_key(key: int, key_bits: int = 32) -> float:
    """Inverse of :func:`_order_keys` for one key of ``key_bits`` bits."""
    top, full = 1 << (key_bits - 1), (1 << key_bits) - 1
    bits = key ^ top if key & top else (~key) & full
    unsigned, value = (np.uint64, np.float64) if key_bits == 64 else (np.uint32, np.float32)
    return float(np.array([bits], dtype=unsigned).view(value)[0])


def _digit_counts(keys: np.ndarray, key_bits: int, digit: int) -> np.ndarray:
    """Counts of the ``digit``-th 16-bit digit of ``keys`` (0: the most significant)."""
    shift = key_bits - 16 * (digit + 1)
    digits = (keys >> keys.dtype.type(shift)) & keys.dtype.type(0xFFFF)
    return np.bincount(digits.astype(np.int64), minlength=1 << 16)


def _rank_bin(counts: np.ndarray, rank: int) -> Tuple[int, int]:
    """Finds the bin holding the ``rank``-th largest item; returns it and the count above it."""
    from_top = np.cumsum(counts[::-1])
    position = int(np.searchsorted(from_top, rank))
    bin_index = len(counts) - 1 - position
    return bin_index, int(from_top[position] - counts[bin_index])


def _kth_largest(
    scores: RasterSource,
    windows: List[Window],
    background: Optional[RasterSource],
    high_counts: np.ndarray,
    rank: int,
    key_bits: int,
    reporter: ProgressReporter,
) -> float:
    """The exact ``rank``-th largest region score, from the top-digit key histogram.

    Each further pass over the raster counts the next 16-bit digit of the keys that share
    the digits found so far: one pass for float32 scores, three for float64 ones.
    """
    prefix, above = _rank_bin(high_counts, rank)
    passes = key_bits // 16 - 1
    for digit in range(1, passes + 1):
        counts = np.zeros(1 << 16, dtype=np.int64)
        shift = key_bits - 16 * digit
        for index, (values, _, _) in enumerate(_region_values(scores, windows, background)):
            reporter.check_cancelled()
            keys = _order_keys(values)
            in_prefix = keys[(keys >> keys.dtype.type(shift)) == prefix]
            counts += _digit_counts(in_prefix, key_bits, digit)
            done = (digit - 1 + (index + 1) / len(windows)) / passes
            reporter.update(done, "locating the score cut")
        value, above_here = _rank_bin(counts, rank - above)
        above += above_here
        prefix = (prefix << 16) | value
    return _value_of_key(prefix, key_bits)


def _write_mask(
    scores: RasterSource,
    windows: List[Window],
    cut: ScoreCut,
    mask_path: Path,
    reporter: ProgressReporter,
) -> int:
    """Writes the final mask (no objects involved); returns the anomaly pixel count."""
    anomaly_pixels = 0
    with _mask_writer(mask_path, scores) as writer:
        reporter.begin("writing the mask")
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            block = scores.read_window(window)
            flagged = cut.flags(block.data[0]) & block.valid
            anomaly_pixels += int(flagged.sum())
            writer.write(window, flagged.astype(np.uint8), block.valid)
            reporter.update((index + 1) / len(windows), "writing the mask")
    return anomaly_pixels


def _mask_writer(mask_path: Path, scores: RasterSource) -> ScoreRasterWriter:
    """Opens the ``uint8`` mask raster on the score raster's grid."""
    return ScoreRasterWriter(
        mask_path,
        scores,
        dtype=np.uint8,
        nodata=MASK_NODATA,
        band_descriptions=[MASK_BAND_DESCRIPTION],
        overviews=MASK_OVERVIEWS,
    )


def _threshold_with_objects(
    scores: RasterSource,
    windows: List[Window],
    cut: ScoreCut,
    valid_pixels: int,
    work_folder: Path,
    *,
    mask_path: Optional[Path],
    polygons_path: Optional[Path],
    area_range: Tuple[float, Optional[float]],
    memory_mb: float,
    reporter: ProgressReporter,
) -> ThresholdReport:
    """Raw mask, then objects, then per-object figures, filtered mask and polygons.

    A failed write of a work file is reported as one of the output the user asked for.
    """
    reported = polygons_path if polygons_path is not None else mask_path
    raw_mask_path = work_folder / "raw_mask.tif"
    with ScoreRasterWriter(
        raw_mask_path, scores, dtype=np.uint8, nodata=None, reported_as=reported
    ) as raw_writer:
        for window in windows:
            reporter.check_cancelled()
            block = scores.read_window(window)
            raw_writer.write(window, (cut.flags(block.data[0]) & block.valid).astype(np.uint8))
    reporter.update(0.5, "tracing anomaly objects")
    frame = VectorFrame.of(scores)
    if frame.warning:
        LOGGER.warning("%s: %s", scores.path, frame.warning)
    objects_path = work_folder / "objects.gpkg"
    objects_store, objects = _object_layer(objects_path, reported)
    raw_dataset = gdal.Open(str(raw_mask_path), gdal.GA_Update)
    if frame.geotransform != tuple(scores.geotransform):
        with quiet_gdal_errors():  # polygons traced in the frame (where QGIS draws them)
            raw_dataset.SetGeoTransform(frame.geotransform)
    raw_band = raw_dataset.GetRasterBand(1)
    with gdal_write_errors(reported):
        objects.StartTransaction()
        gdal.Polygonize(raw_band, raw_band, objects, 0, ["8CONNECTED=8"])
        objects.CommitTransaction()
    raw_band = raw_dataset = None
    reporter.check_cancelled()
    count = objects.GetFeatureCount()
    # the table goes to files of the work folder when it would take more than its half of
    # the budget (the strips take the other half)
    table_bytes = (count + 1) * OBJECT_TABLE_BYTES
    table_folder = work_folder if table_bytes > memory_mb * 2**20 / 2 else None
    areas = _object_areas(objects, count, frame, reporter.check_cancelled, table_folder)
    table = _ObjectTable.empty(areas, table_folder)
    ids_path = work_folder / "object_ids.tif"
    ids_dataset = gdal.GetDriverByName("GTiff").Create(
        str(ids_path),
        scores.width,
        scores.height,
        1,
        gdal.GDT_UInt32,
        options=["TILED=YES", "COMPRESS=DEFLATE", "SPARSE_OK=TRUE"],
    )
    ids_dataset.SetGeoTransform(frame.geotransform)
    with gdal_write_errors(reported):
        if len(table.area) > 1:
            numbered = objects_store.ExecuteSQL("SELECT fid + 0 AS object_id, geom FROM objects")
            if numbered is None:
                raise RuntimeError(gdal.GetLastErrorMsg() or "the traced objects cannot be read")
            try:
                gdal.RasterizeLayer(ids_dataset, [1], numbered, options=["ATTRIBUTE=object_id"])
            finally:
                objects_store.ReleaseResultSet(numbered)
        ids_dataset.FlushCache()
    reporter.update(0.6, "measuring anomaly objects")
    minimum, maximum = area_range
    keep = table.keep
    for start in range(0, len(keep), _OBJECT_CHUNK):  # a chunk at a time: no full-size copies
        chunk = slice(start, start + _OBJECT_CHUNK)
        if minimum > 0:
            keep[chunk] &= table.area[chunk] >= minimum
        if maximum is not None:
            keep[chunk] &= table.area[chunk] <= maximum
    keep[0] = False
    ids_band = ids_dataset.GetRasterBand(1)
    mask_writer = None if mask_path is None else _mask_writer(mask_path, scores)
    try:
        anomaly_pixels = 0
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            block = scores.read_window(window)
            object_ids = ids_band.ReadAsArray(*window).astype(np.int64)
            inside = object_ids > 0
            table.add(object_ids[inside], block.data[0][inside].astype(np.float64))
            kept = keep[object_ids] & block.valid
            anomaly_pixels += int(kept.sum())
            if mask_writer is not None:
                mask_writer.write(window, kept.astype(np.uint8), block.valid)
            reporter.update(0.6 + 0.3 * (index + 1) / len(windows), "measuring anomaly objects")
        ids_band = None
        ids_dataset = None
        if polygons_path is not None:
            _write_polygons(objects, table, keep, frame, polygons_path, reporter.sub(0.9, 1.0))
        if mask_writer is not None:
            mask_writer.commit()
    except BaseException:
        if mask_writer is not None:
            mask_writer.abort()
        raise
    reporter.update(1.0, "done")
    object_count = int(keep.sum())
    return ThresholdReport(
        threshold=cut.threshold,
        inclusive=cut.inclusive,
        valid_pixels=valid_pixels,
        anomaly_pixels=anomaly_pixels,
        object_count=object_count,
        objects_removed=len(table.area) - 1 - object_count,
        mask_path=mask_path,
        polygons_path=polygons_path,
    )


def _object_layer(path: Path, reported: Optional[Path]) -> Tuple[gdal.Dataset, ogr.Layer]:
    """A GeoPackage work layer for traced objects (on disk: the outlines are not in memory).

    Its features' ids number the objects from 1 (0 is no object). A failure to create it is
    reported as one of ``reported``, the output the user asked for.
    """
    with gdal_write_errors(reported if reported is not None else path):
        store = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        layer = (
            None
            if store is None
            else store.CreateLayer(
                "objects", geom_type=ogr.wkbPolygon, options=["SPATIAL_INDEX=NO", "FID=fid"]
            )
        )
        if layer is None:
            raise RuntimeError(gdal.GetLastErrorMsg() or "GDAL error")
        layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    return store, layer


def _object_areas(
    objects: ogr.Layer,
    count: int,
    frame: VectorFrame,
    check_cancelled: Callable[[], None],
    folder: Optional[Path] = None,
) -> np.ndarray:
    """Each object's area in map coordinates (index = object id; index 0 is no object).

    ``count`` is the layer's feature count; the areas are kept in a file of ``folder`` when
    given (see :class:`_ObjectTable`).
    """
    if folder is None:
        areas = np.zeros(count + 1, dtype=np.float64)
    else:
        areas = np.lib.format.open_memmap(
            folder / "area.npy", mode="w+", dtype=np.float64, shape=(count + 1,)
        )
    objects.ResetReading()
    for index, feature in enumerate(objects):
        if index % 10_000 == 0:
            check_cancelled()
        object_id = feature.GetFID()
        if object_id >= len(areas):
            areas = np.pad(areas, (0, object_id + 1 - len(areas)))
        areas[object_id] = frame.area(frame.to_map(feature.GetGeometryRef()))
    return areas


#: Tables of an OGR or SpatiaLite database that describe its layers (lower case prefixes).
_SQLITE_METADATA = (
    "sqlite_",
    "geometry_columns",
    "spatial_ref_sys",
    "idx_",
    "spatialindex",
    "views_geometry_columns",
    "virts_geometry_columns",
    "spatialite_history",
    "sql_statements_log",
    "elementarygeometries",
    "knn",
    "data_licenses",
)


def check_only_polygons_are_replaced(path: PathLike) -> None:
    """Refuses a polygon file that already holds more than one layer of polygons.

    The polygons replace the whole file. A file of a single-layer format holding one layer,
    whatever its name (a GeoJSON file names it after what it was converted from, the GML
    driver after its own rules), is replaced. A GeoPackage or SQLite file is replaced only
    when it holds the polygons' own layer (named after the file, as they write it): one that
    holds other layers, tables or rasters, a project's roads or orthophoto, would lose them,
    and is refused; the layer's QGIS styles (``layer_styles``, "Save as Default") go with it,
    as they always have.

    Raises:
        InputError: Naming what the file holds.
    """
    path = Path(path)
    if not path.is_file():
        return
    with quiet_gdal_errors():
        try:
            dataset = gdal.OpenEx(str(path), gdal.OF_VECTOR | gdal.OF_RASTER)
        except RuntimeError:
            dataset = None
        if dataset is None:
            return  # not a dataset GDAL reads: nothing in it to lose
        if dataset.GetDriver().ShortName == "SQLite":  # its plain tables too
            dataset = gdal.OpenEx(str(path), gdal.OF_VECTOR, open_options=["LIST_ALL_TABLES=YES"])
        layers = {dataset.GetLayer(index).GetName() for index in range(dataset.GetLayerCount())}
        if dataset.GetDriver().ShortName == "SQLite":
            layers = {name for name in layers if not name.lower().startswith(_SQLITE_METADATA)}
        containers = dataset.GetDriver().ShortName in ("GPKG", "SQLite")  # of several layers
        others = set()  # what is not a vector layer: raster tiles, bands
        if dataset.GetDriver().ShortName == "GPKG":  # raster tiles and attribute tables too
            try:
                contents = dataset.ExecuteSQL("SELECT table_name FROM gpkg_contents")
            except RuntimeError:
                contents = None
            if contents is not None:
                others |= {feature.GetField(0) for feature in contents} - layers
                dataset.ReleaseResultSet(contents)
        if dataset.RasterCount and dataset.GetDriver().ShortName != "GPKG":
            others.add("(raster bands)")
        contents = dataset = None  # closed before anything is raised
    layers.discard("layer_styles")
    others.discard("layer_styles")
    if not others and (not layers or (len(layers) == 1 and not containers)):
        return
    if not others and containers and layers == {path.stem}:  # the polygons' own layer
        return
    held = layers | others
    shown_names = sorted(held - {path.stem}) or sorted(held)
    shown = ", ".join(shown_names[:5])
    if len(shown_names) > 5:
        shown += f" and {len(shown_names) - 5} more"
    raise InputError(
        f"{path} already holds {shown}: the polygons would replace the whole file; "
        "give them a file of their own"
    )


def vector_driver_for(path: PathLike) -> gdal.Driver:
    """The OGR driver that writes files with ``path``'s extension.

    Raises:
        InputError: If no driver can create such files.
    """
    extension = Path(path).suffix.lower().lstrip(".")
    if not extension:
        raise InputError(f"{path}: give the polygon file an extension (e.g. .gpkg)")
    candidates = []
    for index in range(gdal.GetDriverCount()):
        driver = gdal.GetDriver(index)
        metadata = driver.GetMetadata() or {}
        if metadata.get("DCAP_VECTOR") != "YES" or metadata.get("DCAP_CREATE") != "YES":
            continue
        extensions = metadata.get("DMD_EXTENSIONS") or metadata.get("DMD_EXTENSION") or ""
        if extension in extensions.lower().split():
            candidates.append(driver)
    if not candidates:
        raise InputError(f"{path}: no vector format writes .{extension} files")
    candidates.sort(
        key=lambda driver: (
            _PREFERRED_VECTOR_DRIVERS.index(driver.ShortName)
            if driver.ShortName in _PREFERRED_VECTOR_DRIVERS
            else len(_PREFERRED_VECTOR_DRIVERS)
        )
    )
    return candidates[0]


def _store(path: Path, driver: gdal.Driver, what: str, method: Any, *arguments: Any) -> None:
    """Calls an OGR writing method; its failure becomes an :class:`InputError` naming ``what``.

    GDAL may report the failure as a return code or, once exceptions are enabled in the
    process, as a ``RuntimeError``; both are handled.
    """
    with quiet_gdal_errors():
        try:
            code, message = int(method(*arguments)), gdal.GetLastErrorMsg()
        except RuntimeError as error:
            code, message = 1, str(error)
    if code != 0:
        raise InputError(
            f"{path}: the {driver.ShortName} format cannot store {what}: {message or 'GDAL error'}"
        )


def valid_multipolygon(geometry: ogr.Geometry) -> ogr.Geometry:
    """An object's outline as a valid (OGC) multipolygon of the same area.

    Pixels that touch only at a corner belong to one object (8-connectivity), and
    ``gdal.Polygonize`` traces them as one ring that passes twice through that corner, which
    GIS validity checks (and formats such as KML) reject. Such a ring is split at the corner.
    """
    with quiet_gdal_errors():
        if not geometry.IsValid():
            geometry = geometry.MakeValid()
    return ogr.ForceToMultiPolygon(geometry)


def _write_polygons(
    objects: ogr.Layer,
    table: _ObjectTable,
    keep: np.ndarray,
    frame: VectorFrame,
    path: Path,
    reporter: Optional[ProgressReporter] = None,
) -> None:
    """Writes the kept objects with their figures, under a temporary name, then renames.

    Every :data:`_POLYGON_CHECK_EVERY` objects ``reporter`` is told the progress, and a
    cancel asked for stops the writing; the temporary file is deleted then.
    """
    reporter = reporter or ProgressReporter()
    total = max(len(table.area) - 1, 1)
    driver = vector_driver_for(path)
    check_output_folder(path)
    # GDAL names a Shapefile's files in lower case whatever the case of the name it is given
    # (".partial.SHP" is written as ".partial.shp"): the temporary's suffix is lower case, and
    # the files take the case asked for when renamed (_replace_vector)
    temp_path = temporary_sibling(path, path.suffix.lower())
    dataset = layer = None
    try:
        with quiet_gdal_errors():
            dataset = driver.Create(str(temp_path), 0, 0, 0, gdal.GDT_Unknown)
        if dataset is None:
            raise InputError(f"cannot create {path}: {gdal.GetLastErrorMsg() or 'GDAL error'}")
        with quiet_gdal_errors():
            layer = dataset.CreateLayer(path.stem, srs=frame.srs, geom_type=ogr.wkbMultiPolygon)
        if layer is None or layer.GetLayerDefn().GetGeomFieldCount() == 0:
            raise InputError(f"{path}: the {driver.ShortName} format stores no polygons")
        field_types = (
            ogr.OFTInteger,
            ogr.OFTInteger64,
            ogr.OFTReal,
            ogr.OFTReal,
            ogr.OFTReal,
            ogr.OFTReal,
        )
        for name, field_type in zip(POLYGON_FIELDS, field_types):
            _store(
                path,
                driver,
                f"the field {name}",
                layer.CreateField,
                ogr.FieldDefn(name, field_type),
            )
        definition = layer.GetLayerDefn()
        layer.StartTransaction()
        objects.ResetReading()
        for index, source in enumerate(objects):
            if index % _POLYGON_CHECK_EVERY == 0:
                reporter.check_cancelled()
                reporter.update(index / total, "writing anomaly polygons")
            object_id = source.GetFID()
            if not keep[object_id]:
                continue
            pixels = int(table.pixels[object_id])
            feature = ogr.Feature(definition)
            feature.SetGeometry(valid_multipolygon(frame.to_map(source.GetGeometryRef())))
            feature.SetField("object_id", int(object_id))
            feature.SetField("pixels", pixels)
            feature.SetField("area", float(table.area[object_id]))
            feature.SetField("score_min", float(table.score_min[object_id]))
            feature.SetField("score_mean", float(table.score_sum[object_id] / max(pixels, 1)))
            feature.SetField("score_max", float(table.score_max[object_id]))
            _store(path, driver, f"object {object_id}", layer.CreateFeature, feature)
        reporter.check_cancelled()
        with gdal_write_errors(path):
            layer.CommitTransaction()
            layer = None
            dataset = None  # closes the file, writing what is left
        _replace_vector(driver, temp_path, path)
    except BaseException as error:
        layer = dataset = None  # closed before its files are deleted
        release_frames(error)
        _delete_vector(driver, temp_path)
        raise


def _replace_vector(driver: gdal.Driver, temp_path: Path, path: Path) -> None:
    """Renames a finished vector dataset (all its files) to its final name.

    The main file takes ``path``'s name as given; the others (a Shapefile's ``.dbf``,
    ``.shx``, ``.prj``) its stem, and an upper-case extension when ``path``'s is upper case
    (``OUT.SHP``, ``OUT.DBF``, ...), as GDAL reads them.
    """
    upper = path.suffix.upper() == path.suffix != path.suffix.lower()
    with quiet_gdal_errors():
        dataset = gdal.OpenEx(str(temp_path), gdal.OF_VECTOR)
        files = [Path(name) for name in (dataset.GetFileList() or [])] if dataset else []
        dataset = None
    # and the files GDAL leaves out of the list (a GML file's .xsd schema): the temporary's
    # stem is unique, whatever is named after it is its own
    listed = {file.name for file in files}
    files += [
        file
        for file in temp_path.parent.iterdir()
        if file.name.startswith(temp_path.stem + ".") and file.name not in listed
    ]
    files = files or [temp_path]
    if path.exists():
        _delete_vector(driver, path, keep_going=False)  # an old file left would mix in
    for file in files:
        if file.name == temp_path.name:
            os.replace(file, path)
        elif file.name.startswith(temp_path.stem):
            ending = file.name[len(temp_path.stem) :]
            os.replace(file, path.parent / (path.stem + (ending.upper() if upper else ending)))


#: The files beside a vector dataset's main file that belong to it, per OGR driver.
_FORMAT_SIDECARS = {
    "ESRI Shapefile": (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx"),
    "GML": (".xsd", ".gfs"),
}


def _delete_vector(driver: gdal.Driver, path: Path, keep_going: bool = True) -> None:
    """Deletes a vector dataset with all its files, if it exists.

    ``keep_going``: a temporary, on the way out of an error: every file named after its
    (unique) stem is deleted, and one that cannot be deleted is logged. Otherwise, an older
    output about to be replaced: its sidecars are deleted (a leftover ``.dbf`` would lend its
    attributes to the new file's shapes, a GML file's ``.xsd`` its schema) and an error is
    raised.
    """
    with quiet_gdal_errors(), contextlib.suppress(RuntimeError):
        driver.Delete(str(path))
    # the format's own files only: a user's roads.shp keeps its .dbf when roads.gpkg goes
    sidecars = {path.suffix.lower(), *_FORMAT_SIDECARS.get(driver.ShortName, ())}
    if not path.parent.is_dir():
        return
    for leftover in path.parent.iterdir():
        if keep_going:
            if leftover.name.startswith(path.stem + "."):
                delete_leftover(leftover)
        elif leftover.stem == path.stem and leftover.suffix.lower() in sidecars:
            leftover.unlink(missing_ok=True)


def _output_folder(*paths: Optional[PathLike]) -> str:
    """The folder of the first output path given (work files go next to the outputs)."""
    for path in paths:
        if path is not None:
            return str(check_output_folder(path).parent)
    return tempfile.gettempdir()
