"""RX anomaly detectors (Reed–Xiaoli): global and local dual-window, on arrays and rasters.

**Global RX** scores each pixel ``x`` by its squared Mahalanobis distance to the mean ``m`` of
the image under the image covariance ``S`` (``ddof=1``), with the pseudo-inverse as ENVI
does: ``(x - m)^T pinv(S) (x - m)`` (singular values below ``PINV_RCOND = 1e-12`` of the
largest count as zero). A background mask restricts the pixels ``m`` and ``S``
are estimated from; every valid pixel is scored. Estimated from fewer than two pixels per
band, ``S`` is poor and RX warns; from at most one pixel more than bands, the pseudo-inverse
would give every pixel the same score, and RX measures in fewer principal components
(:func:`rx_inverse`).

**Local RX** (dual window) estimates ``m`` and ``S`` per pixel from the pixels of an
``outer x outer`` window centred on it, minus the ``inner x inner`` guard window (both odd),
so that the target itself does not contaminate its background. Windows are clipped at the
image edge (no padding); only valid (and background) pixels enter the estimates.
How it is computed, and regularised:

1. The image is whitened once with the global statistics: ``z = P (x - m)``, where ``P``
   projects on the leading principal components (at most ``max_components``, 20 by default;
   components with a variance below ``1e-10`` of the largest are dropped) and scales them to
   unit variance. With few bands this keeps every band (RX is affine-invariant, so the
   whitening alone does not change the scores); with hundreds of bands it reduces a
   hyperspectral cube to a dimension that a ring of a few hundred pixels can estimate
   (about ten samples per dimension for a 15/5 window). An anomaly whose spectrum lies
   mostly outside the leading components of the whole image is weakened by this cut.
2. Window sums of ``1``, ``z`` and ``z z^T`` (``1 + k + k(k+1)/2`` maps) come from separable
   cumulative sums, so the cost does not depend on the window size; the local covariance is
   ``(S2 - n m m^T) / (n - 1)``.
3. The local covariance (maximum likelihood, ``ddof=0``) is shrunk towards a scaled identity,
   which after whitening has the shape of the global covariance:
   ``(1 - rho) S + rho (trace(S) / k) I + 1e-6 I``. By default ``rho`` is chosen per pixel
   by the Oracle Approximating Shrinkage rule (Chen, Wiesel, Eldar and Hero, IEEE TSP 2010;
   the same formula as ``sklearn.covariance.OAS``), which shrinks strongly where the ring
   holds few pixels per dimension (image corners, many bands) and hardly at all otherwise;
   ``shrinkage=`` fixes ``rho`` instead. The ``1e-6`` floor (a millionth of the global
   variance) keeps flat windows (constant 8-bit sea) invertible. Pixels with fewer than two
   background pixels in their ring get no score (NaN / nodata).
4. The ``k x k`` systems are solved in batches of pixels.

On rasters (:func:`rx_raster`), global RX is a statistics pass plus a scoring pass over
memory-bounded strips; local RX runs over tiles with a halo of ``outer // 2`` and gives the
same scores as :func:`local_rx` on the whole image.

Example:
    >>> import numpy as np
    >>> image = np.random.default_rng(0).normal(size=(3, 32, 32))
    >>> image[:, 10, 10] += 8
    >>> int(np.nanargmax(global_rx(image))) == 10 * 32 + 10
    True
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.progress import (
    CancelCheck,
    ProgressCallback,
    ProgressReporter,
    never_backwards,
)
from uniadrs_engine.raster.map_units import check_map_unit_lengths, pixel_size_of
from uniadrs_engine.raster.nodata import NodataRule, nodata_provenance
from uniadrs_engine.raster.reader import (
    RasterSource,
    describe_bands,
    open_raster,
    select_bands,
)
from uniadrs_engine.raster.statistics import (
    MIN_PIXELS_PER_BAND,
    BandStatistics,
    StatisticsAccumulator,
    check_varies,
    compute_band_statistics,
    describe_bands_left_out,
    without_empty_bands,
)
from uniadrs_engine.raster.tiling import TileGrid, block_windows
from uniadrs_engine.raster.writer import (
    SCORE_OVERVIEWS,
    ScoreRasterWriter,
    check_geotiff_path,
    check_not_an_input,
    provenance,
)

PathLike = Union[str, Path]

LOGGER = logging.getLogger(__name__)

RX_MODES = ("global", "local")

#: The descriptions of RX's score bands (QGIS shows them instead of "Band 1").
GLOBAL_RX_DESCRIPTION = "global RX anomaly score (squared Mahalanobis distance)"
LOCAL_RX_DESCRIPTION = "local RX anomaly score (squared Mahalanobis distance)"

#: Default dual-window sizes in pixels when none is given (generic, not modality-specific).
DEFAULT_INNER = 7
DEFAULT_OUTER = 21

#: Local RX: at most this many whitened principal components.
DEFAULT_MAX_COMPONENTS = 20

#: Local RX: absolute variance floor added to the diagonal, in units of the global variance.
VARIANCE_FLOOR = 1e-6

#: Global RX: singular values of the covariance below this fraction of the largest count as
#: zero in the pseudo-inverse. numpy's default (1e-15) sits at the level of rounding noise, so
#: exactly repeated bands (a grey image stored as RGB) gave noise-driven scores; on the
#: benchmark scenes the smallest genuine ratio is 1.2e-9, so 1e-12 changes nothing there.
PINV_RCOND = 1e-12

#: Relative eigenvalue below which a principal component is dropped as degenerate.
_EIGENVALUE_TOLERANCE = 1e-10

#: Bytes of float64 work per pixel and solve, to size batches of pixel solves.
_SOLVE_BATCH_BYTES = 16 * 2**20


@dataclass
class RxReport:
    """What :func:`rx_raster` did.

    Attributes:
        output_path: The score raster written.
        seconds: Wall-clock time.
        mode: ``"global"`` or ``"local"``.
        bands: The 1-based bands used.
        width: Raster columns.
        height: Raster rows.
        background_pixels: Pixels the global statistics were estimated from.
        inner: Guard window (local mode), else None.
        outer: Outer window (local mode), else None.
        components: Whitened components used (local mode), else None.
        bands_left_out: 1-based bands of the selection left out because they hold no value
            anywhere (see :func:`~uniadrs_engine.raster.statistics.without_empty_bands`).
        bad_bands: 1-based bands left out of the default selection because the file's ENVI
            bad band list marks them (:func:`~uniadrs_engine.raster.reader.select_bands`).
    """

    output_path: str
    seconds: float
    mode: str
    bands: List[int]
    width: int
    height: int
    background_pixels: int
    inner: Optional[int] = None
    outer: Optional[int] = None
    components: Optional[int] = None
    bands_left_out: Tuple[int, ...] = ()
    bad_bands: Tuple[int, ...] = ()

    def describe_bands_left_out(self) -> str:
        """``"bands 130-135 left out: they hold no value"``, or ``""`` when none was."""
        return describe_bands_left_out(self.bands_left_out, self.bad_bands)

    def summary_line(self) -> str:
        """One line for logs: mode, windows, bands (as ranges), size, background and time.

        Example:
            >>> RxReport("rx.tif", 1.25, "global", [1, 2, 3, 7], 40, 30, 1200).summary_line()
            'global RX on bands 1-3, 7: 40x30 px, statistics from 1200 px, 1.25 s'
        """
        windows = f", windows {self.inner}/{self.outer} px" if self.mode == "local" else ""
        return (
            f"{self.mode} RX{windows} on {describe_bands(self.bands)}: {self.width}x"
            f"{self.height} px, statistics from {self.background_pixels} px, {self.seconds:.2f} s"
        )


# --------------------------------------------------------------------------- global RX


def rx_scores(pixels: np.ndarray, mean: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Returns ``(x - mean)^T inverse (x - mean)`` for pixels shaped ``[C, n]`` (float64)."""
    band_count, count = pixels.shape
    scores = np.empty(count, dtype=np.float64)
    batch = max(1024, _SOLVE_BATCH_BYTES // (16 * max(band_count, 1)))
    for start in range(0, count, batch):
        centred = pixels[:, start : start + batch].astype(np.float64) - mean[:, None]
        scores[start : start + batch] = np.einsum("ij,ij->j", centred, inverse @ centred)
    return scores


def rx_inverse(covariance: np.ndarray, pixel_count: int) -> np.ndarray:
    """The matrix global RX measures distances with: ``pinv(S)``, or fewer components.

    ``pixel_count`` pixels of ``C`` bands span at most ``pixel_count - 1`` dimensions, and
    when that is ``C`` or fewer every one of them lies at the same Mahalanobis distance from
    their mean: RX would give one constant score. Then the distances are measured in the
    leading ``(pixel_count - 1) // 2`` principal components (two pixels per component, see
    :data:`~uniadrs_engine.raster.statistics.MIN_PIXELS_PER_BAND`), with a warning. Between
    that and two pixels per band the pseudo-inverse is kept, with a warning that the estimate
    is poor.

    Args:
        covariance: ``[C, C]`` band covariance.
        pixel_count: Pixels it was estimated from.
    """
    bands = covariance.shape[0]
    if pixel_count >= MIN_PIXELS_PER_BAND * bands:
        return _unit_free_pinv(covariance)
    advice = "select fewer bands, or give RX more pixels"
    if pixel_count > bands + 1:
        LOGGER.warning(
            "RX estimates the covariance of %d bands from %d pixels, fewer than %d per band: "
            "its scores are unreliable; %s",
            bands,
            pixel_count,
            MIN_PIXELS_PER_BAND,
            advice,
        )
        return _unit_free_pinv(covariance)
    components = max(1, (pixel_count - 1) // MIN_PIXELS_PER_BAND)
    LOGGER.warning(
        "RX estimates the covariance of %d bands from only %d pixels, so every pixel would "
        "get the same score: it measures in the %d leading principal components instead; %s",
        bands,
        pixel_count,
        components,
        advice,
    )
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:components]
    kept_values, kept_vectors = eigenvalues[order], eigenvectors[:, order]
    positive = kept_values > _EIGENVALUE_TOLERANCE * max(float(eigenvalues.max()), 0.0)
    kept_values, kept_vectors = kept_values[positive], kept_vectors[:, positive]
    return (kept_vectors / kept_values) @ kept_vectors.T


def _band_scales(covariance: np.ndarray) -> np.ndarray:
    """Each band's standard deviation (1 where it has none), to measure bands unit-free."""
    deviations = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return np.where(deviations > 0, deviations, 1.0)


def _unit_free_pinv(covariance: np.ndarray) -> np.ndarray:
    """``pinv(S)``, with its cut-off measured on the bands' correlations when it must be.

    RX does not depend on the bands' units, but ``pinv``'s relative cut-off does: a band
    whose values are 1e6 times smaller than the others' (linear SAR backscatter beside
    optical counts) falls under it and drops out. Where the cut-off drops anything, it is
    taken on the correlation matrix instead, and the result brought back to the bands'
    units; a well-conditioned covariance takes ``pinv`` as it is.
    """
    eigenvalues = np.linalg.eigvalsh(covariance)
    largest = float(eigenvalues.max()) if eigenvalues.size else 0.0
    if largest <= 0 or float(eigenvalues.min()) > PINV_RCOND * largest:
        return np.linalg.pinv(covariance, rcond=PINV_RCOND)
    scales = _band_scales(covariance)
    correlation = covariance / np.outer(scales, scales)
    return np.linalg.pinv(correlation, rcond=PINV_RCOND) / np.outer(scales, scales)


def _pixel_masks(
    image: np.ndarray, valid: Optional[np.ndarray], background: Optional[np.ndarray]
) -> Tuple[np.ndarray, np.ndarray]:
    """Returns ``(valid, used for statistics)`` bool maps for an image ``[C, H, W]``."""
    if image.ndim != 3:
        raise InputError(f"expected an image shaped [bands, rows, cols], got {image.shape}")
    finite = np.isfinite(image).all(axis=0)
    valid_map = finite if valid is None else finite & np.asarray(valid, dtype=bool)
    if valid_map.shape != image.shape[1:]:
        raise InputError(f"valid mask {valid_map.shape} does not fit image {image.shape}")
    used = valid_map
    if background is not None:
        background = np.asarray(background, dtype=bool)
        if background.shape != image.shape[1:]:
            raise InputError(f"background mask {background.shape} does not fit {image.shape}")
        used = valid_map & background
    return valid_map, used


def _image_statistics(image: np.ndarray, used: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``ddof=1``) of the used pixels of an image."""
    accumulator = StatisticsAccumulator(image.shape[0], covariance=True)
    accumulator.add(image[:, used])
    statistics = accumulator.result("the image (background pixels)")
    assert statistics.covariance is not None
    return statistics.mean, statistics.covariance


def global_rx(
    image: np.ndarray, valid: Optional[np.ndarray] = None, background: Optional[np.ndarray] = None
) -> np.ndarray:
    """Global RX scores of an image.

    Args:
        image: ``[C, H, W]`` array (any real type).
        valid: Optional ``bool [H, W]``; invalid (and non-finite) pixels get NaN.
        background: Optional ``bool [H, W]``; the mean and covariance come from these pixels
            only (all valid pixels by default).

    Returns:
        ``float64 [H, W]`` squared Mahalanobis distances, NaN where not valid.

    Raises:
        InputError: If there are fewer than two pixels to estimate the statistics from.
    """
    valid_map, used = _pixel_masks(image, valid, background)
    mean, covariance = _image_statistics(image, used)
    scores = np.full(image.shape[1:], np.nan)
    inverse = rx_inverse(covariance, int(used.sum()))
    scores[valid_map] = rx_scores(image[:, valid_map], mean, inverse)
    return scores


# --------------------------------------------------------------------------- local RX


@dataclass(frozen=True)
class WhiteningTransform:
    """``z = projection @ (x - mean)``: leading principal components at unit variance.

    Attributes:
        mean: ``float64 [C]``.
        projection: ``float64 [k, C]`` (``k`` may be 0 for a constant image).
    """

    mean: np.ndarray
    projection: np.ndarray

    @property
    def components(self) -> int:
        """Number of components ``k``."""
        return int(self.projection.shape[0])

    @classmethod
    def from_statistics(
        cls, mean: np.ndarray, covariance: np.ndarray, max_components: int
    ) -> WhiteningTransform:
        """Builds the transform from a mean and a covariance.

        The components are the covariance's, those above a tolerance relative to the
        largest. Where that tolerance drops components the bands' correlations keep (a band
        in far smaller units than the others, see :func:`_unit_free_pinv`), they are the
        correlation matrix's instead, measured on bands scaled to unit variance.
        """
        limit = int(max_components)
        projection = _leading_components(covariance, limit)
        scales = _band_scales(covariance)
        unit_free = _leading_components(covariance / np.outer(scales, scales), limit)
        if unit_free.shape[0] > projection.shape[0]:
            projection = unit_free / scales[None, :]
        return cls(mean=np.asarray(mean, dtype=np.float64), projection=projection)

    def apply(self, image: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Whitens ``[C, H, W]`` into ``float64 [k, H, W]``; invalid pixels become 0."""
        bands, rows, cols = image.shape
        pixels = image.reshape(bands, -1).astype(np.float64) - self.mean[:, None]
        whitened = (self.projection @ pixels).reshape(self.components, rows, cols)
        if valid is not None:
            whitened[:, ~valid] = 0.0
        return whitened


def _leading_components(covariance: np.ndarray, limit: int) -> np.ndarray:
    """``[k, C]``: the leading ``k <= limit`` principal axes, scaled to unit variance.

    Only axes whose variance is above :data:`_EIGENVALUE_TOLERANCE` of the largest count.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    largest = float(eigenvalues[0]) if eigenvalues.size else 0.0
    kept = int(np.sum(eigenvalues > _EIGENVALUE_TOLERANCE * largest)) if largest > 0 else 0
    kept = min(kept, limit)
    return eigenvectors[:, :kept].T / np.sqrt(eigenvalues[:kept])[:, None]


def check_window_sizes(inner: int, outer: int) -> None:
    """Raises :class:`InputError` unless ``1 <= inner < outer`` are both odd."""
    for name, size in (("inner", inner), ("outer", outer)):
        if int(size) != size or size < 1 or size % 2 == 0:
            raise InputError(f"the {name} window must be an odd number of pixels >= 1, got {size}")
    if outer <= inner:
        raise InputError(f"the outer window ({outer}) must be larger than the inner one ({inner})")


def check_windows_fit(inner: int, width: int, height: int) -> None:
    """Refuses an inner window that covers a ``width x height`` raster from every pixel.

    Such a window leaves no background ring anywhere, so every score would be nodata.

    Raises:
        InputError: In that case, with the raster's size.
    """
    if inner // 2 >= max(width, height) - 1:
        raise InputError(
            f"the inner window ({inner} px) covers the whole {width}x{height} raster from "
            "every pixel, leaving no background around any of them: use smaller windows "
            "(or global RX)"
        )


def box_sum(values: np.ndarray, size: int) -> np.ndarray:
    """Sums over a ``size x size`` window centred on each pixel, clipped at the edges.

    Args:
        values: ``[..., H, W]``; summed over the last two axes.
        size: Odd window size.

    Returns:
        float64 array of the same shape.
    """
    radius = size // 2
    summed = np.asarray(values, dtype=np.float64)
    for axis in (-2, -1):
        length = summed.shape[axis]
        shape = list(summed.shape)
        shape[axis] = 1
        cumulative = np.concatenate([np.zeros(shape), np.cumsum(summed, axis=axis)], axis=axis)
        positions = np.arange(length)
        upper = np.minimum(positions + radius + 1, length)
        lower = np.maximum(positions - radius, 0)
        summed = np.take(cumulative, upper, axis=axis) - np.take(cumulative, lower, axis=axis)
    return summed


def _ring_sum(values: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Window sums over the outer window minus the inner one."""
    return box_sum(values, outer) - box_sum(values, inner)


def _shrink(covariance: np.ndarray, counts: np.ndarray, shrinkage: Optional[float]) -> None:
    """Shrinks ``[N, k, k]`` covariances in place towards ``trace / k * I`` (plus the floor).

    With ``shrinkage`` None, each pixel's intensity follows the OAS rule of Chen et al.
    (2010) as ``sklearn.covariance.OAS`` computes it from ``n`` samples.
    """
    components = covariance.shape[1]
    diagonal = np.arange(components)
    scale = np.trace(covariance, axis1=1, axis2=2) / components  # mu
    if shrinkage is None:
        mean_square = np.mean(covariance**2, axis=(1, 2))  # tr(S^2) / k^2
        numerator = mean_square + scale**2
        denominator = (counts + 1.0) * (mean_square - scale**2 / components)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(denominator > 0, np.minimum(numerator / denominator, 1.0), 1.0)
    else:
        rho = np.full(covariance.shape[0], float(shrinkage))
    covariance *= (1.0 - rho)[:, None, None]
    covariance[:, diagonal, diagonal] += (rho * scale + VARIANCE_FLOOR)[:, None]


def local_rx_whitened(
    whitened: np.ndarray,
    inner: int,
    outer: int,
    valid: np.ndarray,
    background: Optional[np.ndarray] = None,
    shrinkage: Optional[float] = None,
) -> np.ndarray:
    """Local RX on an already whitened image (see the module docstring).

    Args:
        whitened: ``float64 [k, H, W]`` (0 at invalid pixels).
        inner: Odd guard-window size.
        outer: Odd outer-window size.
        valid: ``bool [H, W]``.
        background: Optional ``bool [H, W]`` of pixels allowed in the local estimates.
        shrinkage: Fixed shrinkage ``rho`` in ``[0, 1]``, or None for the OAS rule.

    Returns:
        ``float64 [H, W]``, NaN where not valid or with fewer than two ring pixels.
    """
    check_window_sizes(inner, outer)
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise InputError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    components, rows, cols = whitened.shape
    scores = np.full((rows, cols), np.nan)
    used = valid if background is None else valid & background
    weights = used.astype(np.float64)
    counts = _ring_sum(weights, inner, outer)
    scored = valid & (counts >= 2)
    if components == 0:
        scores[scored] = 0.0  # a constant image: nothing deviates
        return scores
    weighted = whitened * weights
    first = _ring_sum(weighted, inner, outer)
    pairs = [(i, j) for i in range(components) for j in range(i, components)]
    second = _ring_sum(np.stack([weighted[i] * whitened[j] for i, j in pairs]), inner, outer)

    pixel_rows, pixel_cols = np.nonzero(scored)
    batch = max(256, _SOLVE_BATCH_BYTES // (8 * 4 * (components * components + components)))
    for start in range(0, pixel_rows.size, batch):
        r = pixel_rows[start : start + batch]
        c = pixel_cols[start : start + batch]
        n = counts[r, c]
        mean = first[:, r, c].T / n[:, None]  # [N, k]
        covariance = np.empty((r.size, components, components))
        for index, (i, j) in enumerate(pairs):
            value = second[index, r, c] / n - mean[:, i] * mean[:, j]
            covariance[:, i, j] = value
            covariance[:, j, i] = value
        _shrink(covariance, n, shrinkage)
        deviation = whitened[:, r, c].T - mean  # [N, k]
        if components == 1:
            values = deviation[:, 0] ** 2 / covariance[:, 0, 0]
        else:
            solved = np.linalg.solve(covariance, deviation[:, :, None])[:, :, 0]
            values = np.einsum("ij,ij->i", deviation, solved)
        scores[r, c] = values
    return scores


def local_rx(
    image: np.ndarray,
    inner: int,
    outer: int,
    valid: Optional[np.ndarray] = None,
    background: Optional[np.ndarray] = None,
    max_components: int = DEFAULT_MAX_COMPONENTS,
    shrinkage: Optional[float] = None,
) -> np.ndarray:
    """Local (dual-window) RX scores of an image.

    Args:
        image: ``[C, H, W]`` array.
        inner: Odd guard-window size in pixels (the pixel and its immediate surroundings,
            left out of the background estimate).
        outer: Odd outer-window size in pixels, larger than ``inner``.
        valid: Optional ``bool [H, W]``; invalid (and non-finite) pixels get NaN.
        background: Optional ``bool [H, W]``; only these pixels enter the global whitening
            and the local estimates.
        max_components: Upper bound on whitened principal components (see module docstring).
        shrinkage: Fixed shrinkage of the local covariance towards the global one, in
            ``[0, 1]``; None (default) chooses it per pixel (OAS).

    Returns:
        ``float64 [H, W]`` scores, NaN where not valid.

    Raises:
        InputError: On bad window sizes or fewer than two background pixels.
    """
    check_window_sizes(inner, outer)
    valid_map, used = _pixel_masks(image, valid, background)
    mean, covariance = _image_statistics(image, used)
    transform = WhiteningTransform.from_statistics(mean, covariance, max_components)
    whitened = transform.apply(np.where(valid_map, image, 0), valid_map)
    return local_rx_whitened(
        whitened, inner, outer, valid_map, None if background is None else used, shrinkage
    )


# --------------------------------------------------------------------------- map units


def odd_window_pixels(size_map_units: float, geotransform: Sequence[float]) -> int:
    """Turns a window size in map units into the nearest odd number of pixels (>= 1).

    The pixel size is :func:`~uniadrs_engine.raster.map_units.pixel_size_of`'s; halves
    round up (10 pixels -> 11).

    Raises:
        InputError: If the size or the pixel size is not positive.
    """
    if not size_map_units > 0:
        raise InputError(f"window size must be positive, got {size_map_units}")
    pixels = size_map_units / pixel_size_of(geotransform)
    return max(1, 2 * int(math.floor((pixels - 1) / 2 + 0.5)) + 1)


def local_windows_from_map_units(
    inner_size: float, outer_size: float, geotransform: Sequence[float], crs_wkt: str = ""
) -> Tuple[int, int]:
    """Turns inner/outer window sizes in map units into odd pixel sizes.

    When both round to the same size, the outer window is grown by two pixels.

    Args:
        inner_size: Inner (guard) window side in map units.
        outer_size: Outer window side in map units.
        geotransform: The raster's geotransform.
        crs_wkt: The raster's CRS as WKT (empty: unknown, the units are taken as given).

    Raises:
        InputError: If a size is not positive, the outer is not larger than the inner, or
            :func:`~uniadrs_engine.raster.map_units.check_map_unit_lengths` refuses the
            raster (no geotransform, or a geographic CRS).
    """
    check_map_unit_lengths(geotransform, crs_wkt, "the windows")
    if outer_size <= inner_size:
        raise InputError(
            f"the outer window ({outer_size}) must be larger than the inner one ({inner_size})"
        )
    inner = odd_window_pixels(inner_size, geotransform)
    outer = odd_window_pixels(outer_size, geotransform)
    return inner, max(outer, inner + 2)


# --------------------------------------------------------------------------- rasters


def _local_tile_size(
    band_count: int, components: int, halo: int, memory_mb: float, value_bytes: int = 4
) -> int:
    """Core tile size whose padded tile fits ``memory_mb`` (at least 32 pixels).

    ``value_bytes`` is the size of one read value (4, or 8 for exact float64 inputs).
    """
    maps = 1 + components + components * (components + 1) // 2
    bytes_per_pixel = (value_bytes + 8) * band_count + 8 * components + 5 * 8 * maps + 64
    side = int(math.sqrt(memory_mb * 2**20 / bytes_per_pixel))
    return max(32, side - 2 * halo)


def _open_background(path: Optional[PathLike], source: RasterSource) -> Optional[RasterSource]:
    from uniadrs_engine.raster.same_grid import check_same_grid

    if path is None:
        return None
    # exact: a non-zero value is never rounded to 0; stored: without a scale or offset
    mask = open_raster(path, bands=[1], exact=True, stored=True)
    try:
        check_same_grid(source, mask)
    except InputError:
        mask.close()
        raise
    return mask


def rx_raster(
    input_path: PathLike,
    output_path: PathLike,
    mode: str = "global",
    inner: Optional[int] = None,
    outer: Optional[int] = None,
    bands: Optional[Sequence[int]] = None,
    background_mask_path: Optional[PathLike] = None,
    memory_mb: float = 1024,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
    max_components: int = DEFAULT_MAX_COMPONENTS,
    shrinkage: Optional[float] = None,
    nodata: Optional[NodataRule] = None,
    crs: Optional[str] = None,
) -> RxReport:
    """Runs global or local RX over a raster and writes a score raster on its grid.

    Without a band selection, bands an ENVI header's bad band list marks are left out. Bands
    that hold no value anywhere (nodata or not finite everywhere) are left out too, as a
    pixel is valid only where every band holds a value. The report names both.

    Args:
        input_path: Input raster (any GDAL format).
        output_path: Output score GeoTIFF (float32, nodata ``SCORE_NODATA``); it appears only
            when complete.
        mode: ``"global"`` or ``"local"``.
        inner: Local mode: odd guard-window size in pixels (default 7).
        outer: Local mode: odd outer-window size in pixels (default 21).
        bands: 1-based bands to use; all by default.
        background_mask_path: Optional raster on the same grid; its non-zero pixels are the
            background the statistics are estimated from.
        memory_mb: Memory budget of one strip or tile.
        progress: Optional ``progress(fraction, message)``.
        is_cancelled: Optional ``is_cancelled() -> bool``; cancelling leaves no output.
        max_components: Local mode: whitened components (see module docstring).
        shrinkage: Local mode: fixed covariance shrinkage in ``[0, 1]``, or None for OAS.
        nodata: Values that hold no data besides (or instead of) the file's nodata, or
            None for the file's alone; such pixels are left out and scored as nodata.
        crs: The raster's CRS in place of the file's (WKT or ``EPSG:code``), which the
            score raster then carries; None for the file's.

    Returns:
        An :class:`RxReport`.

    Raises:
        InputError: On bad input, bad window sizes or a mask on another grid.
        CancelledError: If cancelled.
    """
    if mode not in RX_MODES:
        raise InputError(f"unknown RX mode {mode!r} (expected one of {', '.join(RX_MODES)})")
    check_geotiff_path(output_path)
    check_not_an_input(output_path, input_path, background_mask_path)
    if mode == "local":
        inner = DEFAULT_INNER if inner is None else int(inner)
        outer = DEFAULT_OUTER if outer is None else int(outer)
        check_window_sizes(inner, outer)
    started = time.perf_counter()
    reporter = ProgressReporter(progress=never_backwards(progress), is_cancelled=is_cancelled)
    chosen, bad_bands = select_bands(input_path, bands)
    report = without_empty_bands(
        lambda selection, left_out: _rx_bands(
            input_path,
            output_path,
            mode,
            inner,
            outer,
            selection,
            background_mask_path,
            memory_mb,
            reporter,
            max_components,
            shrinkage,
            started,
            left_out,
            nodata,
            crs,
        ),
        chosen,
    )
    return replace(report, bad_bands=bad_bands)


def _rx_bands(
    input_path: PathLike,
    output_path: PathLike,
    mode: str,
    inner: Optional[int],
    outer: Optional[int],
    bands: Optional[Sequence[int]],
    background_mask_path: Optional[PathLike],
    memory_mb: float,
    reporter: ProgressReporter,
    max_components: int,
    shrinkage: Optional[float],
    started: float,
    bands_left_out: Tuple[int, ...],
    nodata: Optional[NodataRule] = None,
    crs: Optional[str] = None,
) -> RxReport:
    """:func:`rx_raster` with checked window sizes, on ``bands``."""
    with open_raster(
        input_path, bands=bands, colours=True, exact=True, nodata=nodata, crs=crs
    ) as source:
        if mode == "local":
            assert inner is not None
            check_windows_fit(inner, source.width, source.height)
        background = _open_background(background_mask_path, source)
        try:
            statistics = compute_band_statistics(
                source,
                memory_mb=memory_mb,
                reporter=reporter.sub(0.0, 0.3),
                covariance=True,
                mask=background_mask_path,
            )
            if background_mask_path is None:
                check_varies(statistics, str(source.path))
            assert statistics.covariance is not None
            if mode == "global":
                write_global_rx(
                    source,
                    output_path,
                    statistics,
                    memory_mb,
                    reporter.sub(0.3, 1.0),
                    overviews=SCORE_OVERVIEWS,
                    metadata=provenance(
                        rx="global",
                        bands=tuple(source.band_indices),
                        **nodata_provenance(source.nodata_rule),
                    ),
                )
                components = None
            else:
                assert inner is not None and outer is not None
                transform = WhiteningTransform.from_statistics(
                    statistics.mean, statistics.covariance, max_components
                )
                unscored = _write_local(
                    source,
                    background,
                    output_path,
                    transform,
                    inner,
                    outer,
                    shrinkage,
                    memory_mb,
                    reporter.sub(0.3, 1.0),
                    provenance(
                        rx="local",
                        inner_window=inner,
                        outer_window=outer,
                        bands=tuple(source.band_indices),
                        **nodata_provenance(source.nodata_rule),
                    ),
                )
                components = transform.components
                if unscored:
                    LOGGER.warning(
                        "local RX: %d valid pixel(s) left without a score (nodata): fewer than "
                        "two background pixels lie in their %d px window's ring",
                        unscored,
                        outer,
                    )
        finally:
            if background is not None:
                background.close()
        reporter.update(1.0, "done")
        return RxReport(
            output_path=str(output_path),
            seconds=time.perf_counter() - started,
            mode=mode,
            bands=list(source.band_indices),
            width=source.width,
            height=source.height,
            background_pixels=statistics.count,
            inner=inner if mode == "local" else None,
            outer=outer if mode == "local" else None,
            components=components,
            bands_left_out=bands_left_out,
        )


def write_global_rx(
    source: RasterSource,
    output_path: PathLike,
    statistics: BandStatistics,
    memory_mb: float,
    reporter: ProgressReporter,
    observer: Optional[Callable[[np.ndarray, np.ndarray], None]] = None,
    overviews: Optional[str] = None,
    reported_as: Optional[PathLike] = None,
    metadata: Optional[Dict[str, str]] = None,
) -> None:
    """Scoring pass of global RX, strip by strip.

    Args:
        source: The open raster (its band selection is scored).
        output_path: Score GeoTIFF to write (squared Mahalanobis distances, float32).
        statistics: The band statistics (with their covariance) the distances are measured
            with (:func:`rx_inverse`).
        memory_mb: Memory budget of one strip.
        reporter: Progress and cancellation.
        observer: Optional callable receiving each written strip's scores and validity.
        overviews: Resampling of the output's overviews, or None for none (see
            :class:`~uniadrs_engine.raster.writer.ScoreRasterWriter`).
        reported_as: The file a failed write is reported as (when ``output_path`` is an
            intermediate of it).
        metadata: How the scores were made (:func:`~uniadrs_engine.raster.writer.provenance`)
            for a final output; it then gets its band description too.
    """
    assert statistics.covariance is not None
    mean = statistics.mean
    inverse = rx_inverse(statistics.covariance, statistics.count)
    value_bytes = source.value_dtype.itemsize  # float64 for exact float64 inputs
    bytes_per_pixel = value_bytes * source.band_count + 16 * source.band_count + 16
    windows = block_windows(
        source.width, source.height, bytes_per_pixel, memory_mb, source.block_size
    )
    with ScoreRasterWriter(
        output_path,
        like=source,
        overviews=overviews,
        reported_as=reported_as,
        band_descriptions=None if metadata is None else [GLOBAL_RX_DESCRIPTION],
        metadata=metadata,
    ) as writer:
        reporter.begin("global RX")
        for index, window in enumerate(windows):
            reporter.check_cancelled()
            block = source.read_window(window)
            score_map = np.zeros(block.valid.shape, dtype=np.float32)
            score_map[block.valid] = rx_scores(block.data[:, block.valid], mean, inverse)
            writer.write(window, score_map, block.valid)
            if observer is not None:
                observer(score_map, block.valid)
            reporter.update((index + 1) / len(windows), "global RX")


def _write_local(
    source: RasterSource,
    background: Optional[RasterSource],
    output_path: PathLike,
    transform: WhiteningTransform,
    inner: int,
    outer: int,
    shrinkage: Optional[float],
    memory_mb: float,
    reporter: ProgressReporter,
    metadata: Dict[str, str],
) -> int:
    """Local RX tile by tile, with a halo of ``outer // 2``; the output has overviews.

    Returns:
        The valid pixels left without a score (too few background pixels in their ring).
    """
    halo = outer // 2
    tile = _local_tile_size(
        source.band_count, transform.components, halo, memory_mb, source.value_dtype.itemsize
    )
    grid = TileGrid(source.width, source.height, tile=tile, halo=halo)
    unscored = 0
    with ScoreRasterWriter(
        output_path,
        like=source,
        overviews=SCORE_OVERVIEWS,
        band_descriptions=[LOCAL_RX_DESCRIPTION],
        metadata=metadata,
    ) as writer:
        reporter.begin("local RX")
        for index, grid_tile in enumerate(grid):
            reporter.check_cancelled()
            block = source.read_window(grid_tile.read)
            background_map = None
            if background is not None:
                mask_block = background.read_window(grid_tile.read)
                background_map = mask_block.valid & (mask_block.data[0] != 0)
            whitened = transform.apply(block.data, block.valid)
            score_map = local_rx_whitened(
                whitened, inner, outer, block.valid, background_map, shrinkage
            )
            x = grid_tile.core.xoff - grid_tile.read.xoff
            y = grid_tile.core.yoff - grid_tile.read.yoff
            core = score_map[y : y + grid_tile.core.ysize, x : x + grid_tile.core.xsize]
            writer.write(grid_tile.core, core.astype(np.float32), np.isfinite(core))
            valid_core = block.valid[y : y + grid_tile.core.ysize, x : x + grid_tile.core.xsize]
            unscored += int(np.count_nonzero(valid_core & ~np.isfinite(core)))
            reporter.update((index + 1) / len(grid), "local RX")
    return unscored
