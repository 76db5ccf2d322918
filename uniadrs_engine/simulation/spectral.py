"""Spectral anomaly simulation on hyperspectral patches (METHOD §6, "Spectral").

One sample, step by step:

1. A hyperspectral background is drawn uniformly and a square patch of
   ``min(patch_size, rows, cols)`` pixels (100 by default) is cut at random and divided by its
   maximum. Nodata pixels hold 0 and are labelled 2 (ignore).
2. Large normals (label 3): 2-5 rectangles with sides between ``√(0.0225·A)`` and
   ``√(0.5·A)`` take new spectra.
3. Anomalies (label 1): 2-5 rectangles with sides between ``√(0.0064·A)`` and ``√(0.0225·A)``
   take new spectra; they may overwrite normals.
4. One index map does a random rotation (±45°), scale (±10 %), a smooth warp and the resize
   to ``size`` (nearest, see :mod:`~uniadrs_engine.simulation.geometry`).
5. ``out_channels`` bands are picked at random with replacement, in random order.

Where the new spectra come from is a per-set choice (normals and anomalies draw their own)
among ``spectrum_sources`` weights, so that normals and anomalies differ by size only:

* ``"permute"`` (METHOD, the default): the same pixels' spectra after one random band
  permutation per set;
* ``"transplant"``: the spectra of a block of the same size elsewhere in the patch (real
  spectra, misplaced);
* ``"foreign"``: the spectra of a block of another hyperspectral background, divided by that
  block's maximum and resampled linearly along the band axis to this patch's band count (a
  real spectral shape that does not belong to the scene; sensors differ, so it is not
  physically calibrated).

Each rectangle is then mixed with the background spectra it replaces at an abundance drawn in
``abundance_range`` (``(1, 1)``, full replacement, is METHOD's). With ``polygon_share`` > 0
a region is a random polygon filling its rectangle's extent instead of the whole rectangle
(real anomalies are rarely rectangles; METHOD uses rectangles only). The simulation always
leaves at least one anomaly pixel and one normal (0 or 3) pixel in the sample.

With ``clutter_count`` above 0 (not in METHOD; off by default), small regions of the scene's
own material are moved first, before the normals and anomalies: ``clutter_count``
rectangles with sides set by ``clutter_area`` (the anomalies' sizes by default) take, in
full, new spectra from ``clutter_sources`` (``{"transplant": 1}`` by default: the spectra of
a block elsewhere in the patch) and stay labelled background (0). They are what a real scene
is full of, small patches of a material that is common in the scene but not around them (a
tree among roofs), which the hyperspectral benchmarks' ground truths and RX call normal; in
a validation set they ask whether a detector finds anomalies among such clutter, in
training they teach it not to flag the clutter.

Example:
    >>> simulator = SpectralSimulator(pool, size=128)  # doctest: +SKIP
    >>> sample = simulator.sample(np.random.default_rng(0))  # doctest: +SKIP
    >>> sample.image.shape  # doctest: +SKIP
    (270, 128, 128)
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

try:  # only to gather pixels faster: simulation runs without PyTorch too
    import torch
except ImportError:  # pragma: no cover - PyTorch is installed wherever the tests run
    torch = None  # type: ignore[assignment]

from uniadrs_engine.errors import InputError
from uniadrs_engine.simulation.backgrounds import BackgroundFile, BackgroundPool
from uniadrs_engine.simulation.geometry import (
    DEFAULT_WARP,
    Rectangle,
    WarpParameters,
    identity_indices,
    random_polygon_mask,
    random_rectangles,
    random_warp_indices,
    resize_nearest,
)
from uniadrs_engine.simulation.sample import (
    ANOMALY,
    BACKGROUND,
    IGNORE,
    LARGE_NORMAL,
    SPECTRAL,
    SimulatedSample,
    check_size,
    has_both_classes,
    only_if_partial,
    scale_by_maximum,
)

PERMUTE = "permute"
TRANSPLANT = "transplant"
FOREIGN = "foreign"
SPECTRUM_SOURCES = (PERMUTE, TRANSPLANT, FOREIGN)

#: Attempts at one sample before giving up (each one draws a new patch).
MAX_ATTEMPTS = 50
#: Random geometric transforms tried before falling back to a plain resize.
WARP_ATTEMPTS = 4
#: Side of the canvas random polygon regions are drawn on before fitting their rectangle.
POLYGON_CANVAS = 32


class SpectralSimulator:
    """Simulates spectral anomalies in hyperspectral backgrounds."""

    def __init__(
        self,
        pool: BackgroundPool,
        size: int,
        out_channels: Optional[int] = 270,
        *,
        patch_size: int = 100,
        normal_count: Tuple[int, int] = (2, 5),
        normal_area: Tuple[float, float] = (0.0225, 0.5),
        anomaly_count: Tuple[int, int] = (2, 5),
        anomaly_area: Tuple[float, float] = (0.0064, 0.0225),
        warp: WarpParameters = DEFAULT_WARP,
        spectrum_sources: Optional[Mapping[str, float]] = None,
        abundance_range: Tuple[float, float] = (1.0, 1.0),
        clutter_count: Union[int, Tuple[int, int]] = (0, 0),
        clutter_area: Optional[Tuple[float, float]] = None,
        clutter_sources: Optional[Mapping[str, float]] = None,
        polygon_share: float = 0.0,
        per_band_scaling: bool = False,
        min_valid_fraction: float = 0.5,
    ) -> None:
        """Sets up the simulator.

        Args:
            pool: Backgrounds; its hyperspectral files are used.
            size: Side of the samples (a multiple of 8).
            out_channels: Bands picked at random with replacement; None keeps the patch's
                bands in their order.
            patch_size: Side of the patch cut from a background before resizing to ``size``.
            normal_count: Range of the number of large-normal rectangles.
            normal_area: Range of the patch-area fraction that sets their sides.
            anomaly_count: Range of the number of anomaly rectangles.
            anomaly_area: Range of the patch-area fraction that sets their sides.
            warp: Ranges of the rotation, scale and warp.
            spectrum_sources: Weights of ``"permute"``, ``"transplant"``, ``"foreign"``;
                None means ``{"permute": 1}`` (METHOD).
            abundance_range: Fraction of the new spectrum in each rectangle; the rest is
                the background spectrum it replaces.
            clutter_count: Range of the number of clutter rectangles (label 0), or one
                number; (0, 0), the default, paints none and draws no random number for them.
            clutter_area: Range of the patch-area fraction that sets their sides; None
                takes ``anomaly_area``.
            clutter_sources: Weights of the sources of the clutter's spectra, as
                ``spectrum_sources``; None means ``{"transplant": 1}``.
            polygon_share: Probability that a region is a random polygon filling its
                rectangle's extent rather than the whole rectangle (METHOD: 0).
            per_band_scaling: Divide each band by its own patch maximum instead of one
                maximum for the whole patch (METHOD).
            min_valid_fraction: Patches with fewer valid pixels are redrawn when possible.

        Raises:
            InputError: The pool has no hyperspectral background, or an option is invalid.
        """
        self.pool = pool
        self.backgrounds = pool.hyperspectral
        if not self.backgrounds:
            raise InputError("no hyperspectral background for the spectral simulation")
        self.size = check_size(size)
        if out_channels is not None and out_channels < 1:
            raise InputError(f"out_channels must be at least 1, not {out_channels}")
        self.out_channels = out_channels
        self.patch_size = int(patch_size)
        self.normal_count = normal_count
        self.normal_area = normal_area
        self.anomaly_count = anomaly_count
        self.anomaly_area = anomaly_area
        self.warp = warp
        self.source_names, self.source_weights = _source_weights(spectrum_sources)
        if not 0.0 <= abundance_range[0] <= abundance_range[1] <= 1.0:
            raise InputError(f"abundance_range must lie in [0, 1], not {abundance_range}")
        self.abundance_range = abundance_range
        self.clutter_count = _count_range("clutter_count", clutter_count)
        self.clutter_area = anomaly_area if clutter_area is None else clutter_area
        self.clutter_names, self.clutter_weights = _source_weights(
            {TRANSPLANT: 1.0} if clutter_sources is None else clutter_sources
        )
        if not 0.0 <= polygon_share <= 1.0:
            raise InputError(f"polygon_share must lie in [0, 1], not {polygon_share}")
        self.polygon_share = polygon_share
        self.per_band_scaling = per_band_scaling
        self.min_valid_fraction = min_valid_fraction

    def sample(self, rng: np.random.Generator) -> SimulatedSample:
        """Draws one sample; the result depends only on ``rng``'s state."""
        for _ in range(MAX_ATTEMPTS):
            sample = self._attempt(rng)
            if sample is not None:
                return sample
        raise InputError("the hyperspectral backgrounds hold too few valid pixels to simulate on")

    def _attempt(self, rng: np.random.Generator) -> Optional[SimulatedSample]:
        """One try at a sample; None when the patch left no anomaly or no normal pixel."""
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        side = min(self.patch_size, background.rows, background.cols)
        window = self.pool.random_window(rng, background, side, side, self.min_valid_fraction)
        valid = window.valid
        original = scale_by_maximum(window.image, valid, self.per_band_scaling)
        simulated = original.copy()
        labels = np.where(valid, BACKGROUND, IGNORE).astype(np.uint8)

        if self.clutter_count[1] > 0:
            rectangles = random_rectangles(rng, valid.shape, self.clutter_count, self.clutter_area)
            clutter = (self.clutter_names, self.clutter_weights, (1.0, 1.0))
            self._paint(
                rng, simulated, labels, original, valid, rectangles, BACKGROUND, background, clutter
            )
        for label, count, area in (
            (LARGE_NORMAL, self.normal_count, self.normal_area),
            (ANOMALY, self.anomaly_count, self.anomaly_area),
        ):
            rectangles = random_rectangles(rng, valid.shape, count, area)
            self._paint(rng, simulated, labels, original, valid, rectangles, label, background)
        if not (labels == ANOMALY).any():
            return None

        target = (self.size, self.size)
        for attempt in range(WARP_ATTEMPTS + 1):
            if attempt < WARP_ATTEMPTS:
                rows, cols = random_warp_indices(rng, labels.shape, target, self.warp)
            else:
                rows, cols = identity_indices(labels.shape, target)
            warped_labels = labels[rows, cols]
            if has_both_classes(warped_labels):
                break
        else:
            return None

        band_count = simulated.shape[0]
        if self.out_channels is None:
            picks = np.arange(band_count)
        else:
            picks = rng.integers(0, band_count, size=self.out_channels)
        # Band pick first (a row copy), then one gather of every pixel: the cheapest order.
        # torch's index_select does the gather about twice as fast as numpy's take.
        flat = (rows * labels.shape[1] + cols).ravel()
        picked = simulated.reshape(band_count, -1)[picks]
        if torch is None:
            image = np.take(picked, flat, axis=1)
        else:
            image = torch.from_numpy(picked).index_select(1, torch.from_numpy(flat)).numpy()
        return SimulatedSample(
            image=image.reshape(len(picks), *target),
            labels=np.ascontiguousarray(warped_labels, dtype=np.uint8),
            kind=SPECTRAL,
            source=background.name,
            band_indices=np.asarray(background.bands, dtype=np.int64)[picks],
            valid=only_if_partial(valid[rows, cols]),
        )

    def _paint(
        self,
        rng: np.random.Generator,
        simulated: np.ndarray,
        labels: np.ndarray,
        original: np.ndarray,
        valid: np.ndarray,
        rectangles: Sequence[Rectangle],
        label: int,
        background: BackgroundFile,
        sources: Optional[Tuple[Tuple[str, ...], np.ndarray, Tuple[float, float]]] = None,
    ) -> None:
        """Gives one set of regions new spectra and their label, in place.

        ``sources``: the set's source names, their weights and its abundance range; None
        takes the anomalies' and normals' (``spectrum_sources``, ``abundance_range``).
        """
        names, weights, abundance_range = sources or (
            self.source_names,
            self.source_weights,
            self.abundance_range,
        )
        source = names[int(rng.choice(len(names), p=weights))]
        band_count, rows, cols = original.shape
        permutation = rng.permutation(band_count) if source == PERMUTE else None
        for top, left, height, width in rectangles:
            region = (slice(None), slice(top, top + height), slice(left, left + width))
            shape = self._region_shape(rng, height, width)
            if source == PERMUTE:
                spectra = original[permutation, top : top + height, left : left + width]
            elif source == TRANSPLANT:
                row = int(rng.integers(0, rows - height + 1))
                col = int(rng.integers(0, cols - width + 1))
                spectra = original[:, row : row + height, col : col + width]
            else:
                spectra = self._foreign_block(rng, background, band_count, height, width)
            abundance = rng.uniform(*abundance_range)
            if abundance < 1.0:
                spectra = abundance * spectra + (1.0 - abundance) * original[region]
            simulated[region][:, shape] = spectra[:, shape]
            labels[region[1:]][shape & valid[region[1:]]] = label

    def _region_shape(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """The mask of one region inside its rectangle: all of it, or a random polygon."""
        if self.polygon_share > 0.0 and rng.random() < self.polygon_share:
            shape = resize_nearest(random_polygon_mask(rng, POLYGON_CANVAS), (height, width))
            if shape.any():
                return shape
        return np.ones((height, width), dtype=bool)

    def _foreign_block(
        self,
        rng: np.random.Generator,
        background: BackgroundFile,
        band_count: int,
        height: int,
        width: int,
    ) -> np.ndarray:
        """A block of another hyperspectral scene, scaled and resampled to ``band_count``."""
        others = [item for item in self.backgrounds if item.path != background.path]
        other = others[int(rng.integers(len(others)))] if others else background
        window = self.pool.random_window(rng, other, height, width, self.min_valid_fraction)
        block = resize_nearest(scale_by_maximum(window.image, window.valid), (height, width))
        return resample_bands(block, band_count)


def _count_range(name: str, value: Any) -> Tuple[int, int]:
    """A ``(smallest, largest)`` count range from a range or one whole number.

    Example:
        >>> _count_range("clutter_count", 3), _count_range("clutter_count", [2, 6])
        ((3, 3), (2, 6))
    """
    try:
        counts = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except TypeError:
        counts = ()
    if len(counts) != 2 or not all(isinstance(count, (int, np.integer)) for count in counts):
        raise InputError(f"{name} must be a whole number or a range of two, not {value!r}")
    if not 0 <= counts[0] <= counts[1]:
        raise InputError(f"{name} must be a range of counts from 0 up, not {value!r}")
    return int(counts[0]), int(counts[1])


def resample_bands(image: np.ndarray, band_count: int) -> np.ndarray:
    """Linearly resamples ``[B, h, w]`` along the band axis to ``band_count`` bands."""
    source_count = image.shape[0]
    if source_count == band_count:
        return image
    positions = np.linspace(0.0, source_count - 1, band_count)
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, source_count - 1)
    weight = (positions - lower).astype(np.float32)[:, None, None]
    return image[lower] * (1.0 - weight) + image[upper] * weight


def _source_weights(sources: Optional[Mapping[str, float]]) -> Tuple[Tuple[str, ...], np.ndarray]:
    """Checks the spectrum-source weights and returns the names and probabilities."""
    if sources is None:
        sources = {PERMUTE: 1.0}
    unknown = set(sources) - set(SPECTRUM_SOURCES)
    if unknown:
        raise InputError(f"unknown spectrum source(s) {sorted(unknown)}; use {SPECTRUM_SOURCES}")
    names = tuple(name for name in SPECTRUM_SOURCES if sources.get(name, 0.0) > 0.0)
    if not names or any(weight < 0 for weight in sources.values()):
        raise InputError(f"spectrum source weights must be >= 0 with one > 0, not {dict(sources)}")
    weights = np.array([sources[name] for name in names], dtype=np.float64)
    return names, weights / weights.sum()
