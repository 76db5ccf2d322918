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

import math
from dataclasses import asdict, fields
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
        normal_count: Union[int, Tuple[int, int]] = (2, 5),
        normal_area: Tuple[float, float] = (0.0225, 0.5),
        anomaly_count: Union[int, Tuple[int, int]] = (2, 5),
        anomaly_area: Tuple[float, float] = (0.0064, 0.0225),
        warp: Union[WarpParameters, Mapping[str, Any]] = DEFAULT_WARP,
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
            normal_count: Range of the number of large-normal rectangles, or one number.
            normal_area: Range of the patch-area fraction that sets their sides.
            anomaly_count: Range of the number of anomaly rectangles (from 1 up), or one
                number.
            anomaly_area: Range of the patch-area fraction that sets their sides.
            warp: Ranges of the rotation, scale and warp: :class:`WarpParameters`, or a
                mapping of some of its fields (the others keep METHOD's values).
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
        if out_channels is not None and (not _is_whole(out_channels) or out_channels < 1):
            raise InputError(f"out_channels must be at least 1, not {out_channels!r}")
        self.out_channels = out_channels
        self.patch_size = check_count("patch_size", patch_size, minimum=2)
        self.normal_count = _count_range("normal_count", normal_count)
        self.normal_area = check_range("normal_area", normal_area, maximum=1.0)
        self.anomaly_count = _count_range("anomaly_count", anomaly_count)
        if self.anomaly_count[0] < 1:
            raise InputError(
                "the spectral simulation needs at least one anomaly rectangle per sample: "
                f"anomaly_count must start from 1, not {_shown(anomaly_count)}"
            )
        self.anomaly_area = check_range("anomaly_area", anomaly_area, maximum=1.0)
        self.warp = _warp_parameters(warp)
        self.source_names, self.source_weights = _source_weights(
            spectrum_sources, "spectrum_sources"
        )
        self.abundance_range = check_range("abundance_range", abundance_range, maximum=1.0)
        self.clutter_count = _count_range("clutter_count", clutter_count)
        self.clutter_area = (
            self.anomaly_area
            if clutter_area is None
            else check_range("clutter_area", clutter_area, maximum=1.0)
        )
        self.clutter_names, self.clutter_weights = _source_weights(
            {TRANSPLANT: 1.0} if clutter_sources is None else clutter_sources, "clutter_sources"
        )
        self.polygon_share = check_probability("polygon_share", polygon_share)
        self.per_band_scaling = check_flag("per_band_scaling", per_band_scaling)
        self.min_valid_fraction = check_probability("min_valid_fraction", min_valid_fraction)

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
    if _is_whole(value):
        counts: Tuple[Any, ...] = (value, value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        counts = tuple(value)
    else:
        counts = ()
    if len(counts) != 2 or not all(_is_whole(count) for count in counts):
        raise InputError(f"{name} must be a whole number or a range of two, not {_shown(value)}")
    if not 0 <= counts[0] <= counts[1]:
        raise InputError(f"{name} must be a range of counts from 0 up, not {_shown(value)}")
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


def _source_weights(
    sources: Optional[Mapping[str, float]], name: str = "spectrum_sources"
) -> Tuple[Tuple[str, ...], np.ndarray]:
    """Checks the spectrum-source weights and returns the names and probabilities.

    ``name``: the option the weights come from, for the error messages.
    """
    if sources is None:
        sources = {PERMUTE: 1.0}
    if not isinstance(sources, Mapping):
        raise InputError(
            f"{name} must map spectrum sources to weights (e.g. {{permute: 1, foreign: 1}}), "
            f"not {_shown(sources)}"
        )
    unknown = set(sources) - set(SPECTRUM_SOURCES)
    if unknown:
        raise InputError(
            f"unknown spectrum source(s) {sorted(unknown, key=str)} in {name}; "
            f"use {SPECTRUM_SOURCES}"
        )
    weights_given = list(sources.values())
    if not all(_is_number(weight) and weight >= 0 for weight in weights_given) or not any(
        weight > 0 for weight in weights_given
    ):
        raise InputError(
            f"{name}: spectrum source weights must be numbers >= 0 with one > 0, "
            f"not {dict(sources)}"
        )
    names = tuple(source for source in SPECTRUM_SOURCES if sources.get(source, 0.0) > 0.0)
    weights = np.array([sources[source] for source in names], dtype=np.float64)
    return names, weights / weights.sum()


# Checks of option values: each returns the value in a plain type or raises one clear line.


def _is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (not a boolean).

    Example:
        >>> _is_number(0.5), _is_number(True), _is_number(float("nan")), _is_number("1")
        (True, False, False, False)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        return False
    return math.isfinite(value)


def _is_whole(value: Any) -> bool:
    """Whether ``value`` is an integer (not a boolean)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _shown(value: Any) -> str:
    """``value`` as a message shows it, a tuple (a YAML list made a range) as a list.

    Example:
        >>> _shown((0.5, 0.1)), _shown("abc")
        ('[0.5, 0.1]', "'abc'")
    """
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def check_range(
    name: str,
    value: Any,
    minimum: float = 0.0,
    maximum: Optional[float] = None,
    above_minimum: bool = False,
) -> Tuple[float, float]:
    """A ``(low, high)`` option: two finite numbers with ``minimum <= low <= high <= maximum``.

    Args:
        name: The option, for the message.
        value: The given value (a list, tuple or array of two numbers).
        minimum: Smallest allowed ``low``.
        maximum: Largest allowed ``high``; None for no bound.
        above_minimum: ``low`` must exceed ``minimum`` rather than reach it.

    Raises:
        InputError: Naming the option, the expected range and the value.

    Example:
        >>> check_range("anomaly_area", [0.01, 0.05], maximum=1.0)
        (0.01, 0.05)
        >>> check_range("anomaly_area", (0.5, 0.1), maximum=1.0)
        Traceback (most recent call last):
        ...
        uniadrs_engine.errors.InputError: anomaly_area must be two numbers [low, high] with ...
    """
    numbers = tuple(value) if isinstance(value, (list, tuple, np.ndarray)) else ()
    if len(numbers) == 2 and all(_is_number(number) for number in numbers):
        low, high = float(numbers[0]), float(numbers[1])
        low_fits = low > minimum if above_minimum else low >= minimum
        if low_fits and low <= high and (maximum is None or high <= maximum):
            return low, high
    bounds = f"{minimum:g} {'<' if above_minimum else '<='} low <= high"
    if maximum is not None:
        bounds += f" <= {maximum:g}"
    raise InputError(f"{name} must be two numbers [low, high] with {bounds}, not {_shown(value)}")


def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """A whole-number option of at least ``minimum``.

    Raises:
        InputError: Naming the option and the value.

    Example:
        >>> check_count("normal_count", 3)
        3
    """
    if not _is_whole(value) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, not {_shown(value)}")
    return int(value)


def check_number(name: str, value: Any, minimum: float = 0.0) -> float:
    """A finite number option of at least ``minimum``.

    Raises:
        InputError: Naming the option and the value.
    """
    if not _is_number(value) or value < minimum:
        raise InputError(f"{name} must be a number >= {minimum:g}, not {_shown(value)}")
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """A number option in ``[0, 1]`` (a probability or a fraction).

    Raises:
        InputError: Naming the option and the value.

    Example:
        >>> check_probability("polygon_share", 1)
        1.0
    """
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], not {_shown(value)}")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    """A true-or-false option.

    Raises:
        InputError: Naming the option and the value.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be true or false, not {_shown(value)}")
    return bool(value)


def _warp_parameters(value: Any) -> WarpParameters:
    """The ``warp`` option checked: :class:`WarpParameters`, or a mapping of some of its fields.

    Fields a mapping leaves out keep METHOD's values (:data:`DEFAULT_WARP`).

    Raises:
        InputError: An unknown field, or a value out of its range.
    """
    names = [item.name for item in fields(WarpParameters)]
    if isinstance(value, WarpParameters):
        given = asdict(value)
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names), key=str)
        if unknown:
            raise InputError(f"unknown warp option(s) {unknown}; use {', '.join(names)}")
        given = {**asdict(DEFAULT_WARP), **value}
    else:
        raise InputError(f"warp must be a mapping of {', '.join(names)}, not {_shown(value)}")
    return WarpParameters(
        max_rotation_degrees=check_number(
            "warp max_rotation_degrees", given["max_rotation_degrees"]
        ),
        scale_range=check_range("warp scale_range", given["scale_range"], above_minimum=True),
        warp_strength=check_range("warp warp_strength", given["warp_strength"]),
        warp_grid=check_count("warp warp_grid", given["warp_grid"], minimum=1),
    )
