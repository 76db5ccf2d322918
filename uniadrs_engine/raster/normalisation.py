"""The one definition of the network's input normalisations (named in model cards).

``band_max`` (METHOD.md §7, the default models up to 3.0): each band is divided by its maximum
absolute value over the valid pixels of the whole raster (not of a tile, so tiled and
whole-image scoring see the same values). A band that is constant zero (or whose maximum is
not a positive finite number) is divided by 1, so every output stays finite. Invalid pixels
(nodata, non-finite) are filled with the band's normalised mean before the network sees
them, so they neither stand out as anomalies nor enter the statistics.

``whiten`` (:class:`SpectralWhitening`): per-raster ZCA whitening of the band vectors with
the mean and covariance that global RX uses, so the network sees each scene's spectra in a
space where its background is standardised and decorrelated.

``soft_whiten``: the same whitening with a larger eigenvalue floor
(:data:`SOFT_WHITENING_FLOOR`), which damps the weak, mostly noise directions of a
hyperspectral scene instead of raising them to unit variance.

Scope (:data:`NORMALISATION_SCOPES`). Inference takes the statistics of the whole raster
(``raster``, the default) or of each tile's read window, core and halo (``tile``,
:class:`WindowNormalisation`), as training takes each crop's own statistics.

Example:
    >>> import numpy as np
    >>> scaling = BandScaling.from_array(np.array([[[2.0, -4.0]], [[0.0, 0.0]]]))
    >>> scaling.divisors.tolist()
    [4.0, 1.0]
    >>> scaling.apply(np.array([[[2.0, -4.0]], [[0.0, 0.0]]], dtype="float32")).tolist()
    [[[0.5, -1.0]], [[0.0, 0.0]]]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Union

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.statistics import MIN_PIXELS_PER_BAND, BandStatistics

LOGGER = logging.getLogger(__name__)

#: Name of this normalisation in model cards.
NORMALISATION_NAME = "band_max"


def band_max_divisors(minimum: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """Per-band divisors: the largest absolute value, or 1 where that is 0 or not finite."""
    largest = np.maximum(np.abs(np.asarray(minimum, np.float64)), np.abs(np.asarray(maximum)))
    usable = np.isfinite(largest) & (largest > 0)
    return np.where(usable, largest, 1.0).astype(np.float64)


@dataclass(frozen=True)
class BandScaling:
    """Per-band divisors and the fill value of invalid pixels (in normalised units).

    Attributes:
        divisors: ``float64 [C]``, positive and finite.
        fill_values: ``float32 [C]``: the normalised band means, written at invalid pixels.
    """

    divisors: np.ndarray
    fill_values: np.ndarray

    @classmethod
    def from_statistics(cls, statistics: BandStatistics, what: str = "the raster") -> BandScaling:
        """Builds the scaling from whole-raster statistics.

        Raises:
            InputError: If the statistics cover no valid pixel.
        """
        if statistics.count <= 0:
            raise InputError(f"{what} has no valid pixel")
        divisors = band_max_divisors(statistics.minimum, statistics.maximum)
        fill_values = np.asarray(statistics.mean, np.float64) / divisors
        fill_values = np.where(np.isfinite(fill_values), fill_values, 0.0).astype(np.float32)
        return cls(divisors=divisors, fill_values=fill_values)

    @classmethod
    def from_array(cls, image: np.ndarray, valid: Optional[np.ndarray] = None) -> BandScaling:
        """Builds the scaling of an in-memory ``[C, H, W]`` image (e.g. a training patch).

        Args:
            image: The image; non-finite values count as invalid.
            valid: Optional ``bool [H, W]`` of valid pixels.

        Raises:
            InputError: If no pixel is valid.
        """
        data = np.asarray(image, dtype=np.float64)
        use = np.isfinite(data).all(axis=0)
        if valid is not None:
            use &= np.asarray(valid, dtype=bool)
        if not use.any():
            raise InputError("the image has no valid pixel")
        pixels = data[:, use]
        statistics = BandStatistics(
            count=int(use.sum()),
            minimum=pixels.min(axis=1),
            maximum=pixels.max(axis=1),
            mean=pixels.mean(axis=1),
        )
        return cls.from_statistics(statistics, "the image")

    @property
    def band_count(self) -> int:
        """Number of bands."""
        return int(self.divisors.shape[0])

    def apply(self, data: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Normalises ``float32 [C, H, W]`` data and fills its invalid pixels.

        Args:
            data: Raw band values (as read by ``RasterSource.read_window``).
            valid: Optional ``bool [H, W]``; pixels where it is False get the fill values.

        Returns:
            A new ``float32 [C, H, W]`` array.
        """
        if data.shape[0] != self.band_count:
            raise ValueError(f"expected {self.band_count} bands, got {data.shape[0]}")
        divisors = self.divisors.astype(np.float32)[:, None, None]
        normalised = np.asarray(data, dtype=np.float32) / divisors
        if valid is not None:
            invalid = ~np.asarray(valid, dtype=bool)
            if invalid.any():
                normalised[:, invalid] = self.fill_values[:, None]
        return normalised


def normalise_array(image: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """Normalises an in-memory ``[C, H, W]`` image by its own per-band maximum.

    Invalid (non-finite or ``valid == False``) pixels are filled with the band means.
    """
    return normalise_input(image, NORMALISATION_NAME, valid)


# --------------------------------------------------------------------------- spectral whitening

#: Name of the spectral whitening normalisation in model cards.
WHITENING_NAME = "whiten"

#: Name of the soft (shrunk) spectral whitening in model cards: the same whitening with a
#: floor of :data:`SOFT_WHITENING_FLOOR`.
SOFT_WHITENING_NAME = "soft_whiten"

#: Whitening: added to every eigenvalue of the band correlation matrix (whose eigenvalues
#: average 1), so that directions with next to no variance (repeated or near-constant bands,
#: noise) are not blown up to unit variance. Fixed in advance, not tuned.
WHITENING_FLOOR = 1e-3

#: Soft whitening: a floor of a tenth of the average eigenvalue. Directions that carry less
#: than about a tenth of a band's variance (mostly noise in hyperspectral data) are damped
#: rather than raised to unit variance, while the stronger directions are still decorrelated
#: and equalised. Fixed in advance (docs/DEFAULT_MODEL.md, experiment 9), not tuned.
SOFT_WHITENING_FLOOR = 0.1

#: The eigenvalue floor of each whitening normalisation, by model-card name.
WHITENING_FLOORS: Dict[str, float] = {
    WHITENING_NAME: WHITENING_FLOOR,
    SOFT_WHITENING_NAME: SOFT_WHITENING_FLOOR,
}

#: Every input normalisation the engine implements, by model-card name.
NORMALISATIONS = (NORMALISATION_NAME, *WHITENING_FLOORS)

#: Whitening: a raster whose band correlation matrix has every eigenvalue but the largest
#: below this holds one image in several bands (a gray image stored as RGB, a pseudo-colour
#: export): its bands share more than 99 % of their variance, and whitening them apart would
#: raise their small differences (compression and rounding noise, eigenvalues of about
#: 1e-5 to 1e-3) towards unit variance, next to the image itself. Such a raster is whitened
#: as the one image it holds: the first principal component of its standardised bands (for
#: identical bands, their mean), whitened as a one-band raster, in every band. Ten times
#: :data:`WHITENING_FLOOR`, fixed in advance, not tuned.
SINGLE_IMAGE_EIGENVALUE = 0.01

#: Whitening: pixels whitened at a time (bounds the temporary centred copy).
WHITENING_CHUNK_PIXELS = 16384


@dataclass(frozen=True)
class SpectralWhitening:
    """``z = matrix @ (x - mean)``: per-raster ZCA whitening of the band vectors.

    Every band is standardised (its standard deviation over the valid pixels becomes 1), then
    the band correlation matrix ``R`` is whitened symmetrically (ZCA), ``R^-1/2`` with
    :data:`WHITENING_FLOOR` added to its eigenvalues. The result keeps one output band per
    input band (band ``k`` stays nearest to band ``k``, which the network's band repetition
    relies on), has the identity as its covariance up to the floor, and does not depend on a
    positive scale of any band: a band-max-scaled training crop and the raw raster whiten to
    the same values. The Mahalanobis distance that global RX scores is the squared norm of
    ``z`` (up to the floor). A constant band whitens to 0; invalid pixels are 0 (the mean).
    A raster whose bands hold one image (:data:`SINGLE_IMAGE_EIGENVALUE`) gets that image,
    standardised, in every band, as a one-band raster of it would.

    Attributes:
        mean: ``float64 [C]``.
        matrix: ``float64 [C, C]``, symmetric up to the band scaling.
    """

    mean: np.ndarray
    matrix: np.ndarray

    @classmethod
    def from_moments(
        cls, mean: np.ndarray, covariance: np.ndarray, floor: float = WHITENING_FLOOR
    ) -> SpectralWhitening:
        """Builds the whitening from a band mean and covariance.

        Args:
            mean: ``[C]``.
            covariance: ``[C, C]``, symmetric.
            floor: Added to the correlation matrix's eigenvalues.
        """
        covariance = np.asarray(covariance, dtype=np.float64)
        variance = np.diag(covariance)
        usable = np.isfinite(variance) & (variance > 0)
        std = np.where(usable, np.sqrt(np.where(usable, variance, 1.0)), 1.0)
        correlation = covariance / np.outer(std, std)
        correlation[~usable, :] = 0.0
        correlation[:, ~usable] = 0.0
        correlation[~usable, ~usable] = 1.0
        correlation = np.where(np.isfinite(correlation), correlation, 0.0)
        correlation = 0.5 * (correlation + correlation.T)
        single = _single_image_row(correlation[np.ix_(usable, usable)], floor)
        if single is None:
            eigenvalues, eigenvectors = np.linalg.eigh(correlation)
            inverse_root = 1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + floor)
            zca = (eigenvectors * inverse_root) @ eigenvectors.T
        else:
            zca = np.zeros_like(correlation)
            zca[np.ix_(usable, usable)] = single[None, :]
        matrix = zca / std[None, :]
        matrix[:, ~usable] = 0.0
        return cls(mean=np.asarray(mean, dtype=np.float64), matrix=matrix)

    @classmethod
    def from_statistics(
        cls, statistics: BandStatistics, what: str = "the raster", floor: float = WHITENING_FLOOR
    ) -> SpectralWhitening:
        """Builds the whitening from whole-raster statistics with their covariance.

        Args:
            statistics: Whole-raster statistics with their covariance.
            what: The raster, for error messages.
            floor: Added to the correlation matrix's eigenvalues.

        Raises:
            InputError: If the statistics cover fewer than two valid pixels.
            ValueError: If the statistics hold no covariance.
        """
        if statistics.count < 2:
            raise InputError(f"{what} has fewer than two valid pixels: no spectral whitening")
        if statistics.covariance is None:
            raise ValueError("spectral whitening needs statistics with their covariance")
        bands = len(statistics.mean)
        if statistics.count < MIN_PIXELS_PER_BAND * bands:
            LOGGER.warning(
                "%s: the spectral whitening estimates the covariance of %d bands from %d "
                "valid pixels, fewer than %d per band, so the scores are unreliable; select "
                "fewer bands",
                what,
                bands,
                statistics.count,
                MIN_PIXELS_PER_BAND,
            )
        return cls.from_moments(statistics.mean, statistics.covariance, floor)

    @classmethod
    def from_array(
        cls,
        image: np.ndarray,
        valid: Optional[np.ndarray] = None,
        floor: float = WHITENING_FLOOR,
    ) -> SpectralWhitening:
        """Builds the whitening of an in-memory ``[C, H, W]`` image (e.g. a training crop).

        The covariance is accumulated in float32 around the float64 mean, which is ample for
        one crop and keeps a 270-band training batch cheap.

        Args:
            image: ``[C, H, W]``.
            valid: Optional ``bool [H, W]``; only these (finite) pixels enter the statistics.
            floor: Added to the correlation matrix's eigenvalues.

        Raises:
            InputError: If fewer than two pixels are valid.
        """
        data = np.asarray(image)
        use = np.isfinite(data).all(axis=0)
        if valid is not None:
            use &= np.asarray(valid, dtype=bool)
        count = int(use.sum())
        if count < 2:
            raise InputError("the image has fewer than two valid pixels: no spectral whitening")
        pixels = data.reshape(data.shape[0], -1) if use.all() else data[:, use]
        mean = pixels.mean(axis=1, dtype=np.float64)
        if pixels.dtype == np.float64:  # values far from 0: centred before float32 rounds them
            centred = (pixels - mean[:, None]).astype(np.float32)
        else:
            centred = pixels.astype(np.float32) - mean.astype(np.float32)[:, None]
        covariance = (centred @ centred.T).astype(np.float64) / (count - 1)
        return cls.from_moments(mean, covariance, floor)

    @property
    def band_count(self) -> int:
        """Number of bands."""
        return int(self.mean.shape[0])

    def apply(self, data: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Whitens ``[C, H, W]`` data into a new ``float32 [C, H, W]`` array.

        Args:
            data: Raw band values (any positive per-band scale of them gives the same result).
            valid: Optional ``bool [H, W]``; pixels where it is False become 0.
        """
        if data.shape[0] != self.band_count:
            raise ValueError(f"expected {self.band_count} bands, got {data.shape[0]}")
        bands, rows, cols = data.shape
        # float64 values (32-bit integers, float64 far from 0) are centred in float64:
        # float32 would round 4,000,000,123 to 4,000,000,128 before the mean is taken off
        exact = np.asarray(data).dtype == np.float64
        value_type = np.float64 if exact else np.float32
        pixels = np.asarray(data, dtype=value_type).reshape(bands, -1)
        mean = self.mean.astype(value_type)[:, None]
        matrix = self.matrix.astype(np.float32)
        whitened = np.empty((bands, rows * cols), dtype=np.float32)
        # In column chunks, so the only full-size array besides the input is the output.
        for start in range(0, rows * cols, WHITENING_CHUNK_PIXELS):
            stop = start + WHITENING_CHUNK_PIXELS
            centred = pixels[:, start:stop] - mean
            if exact:
                centred = centred.astype(np.float32)
            np.matmul(matrix, centred, out=whitened[:, start:stop])
        whitened = whitened.reshape(bands, rows, cols)
        if valid is not None:
            invalid = ~np.asarray(valid, dtype=bool)
            if invalid.any():
                whitened[:, invalid] = 0.0
        whitened[~np.isfinite(whitened)] = 0.0
        return whitened


def _single_image_row(correlation: np.ndarray, floor: float) -> Optional[np.ndarray]:
    """The whitening row of a raster that holds one image in several bands, else None.

    Args:
        correlation: The correlation matrix of the raster's non-constant bands.
        floor: The whitening's eigenvalue floor.

    Returns:
        Weights on the standardised bands that give their first principal component (for
        identical bands, their mean) as a one-band raster of it is whitened, when every eigenvalue
        of ``correlation`` but the largest is below :data:`SINGLE_IMAGE_EIGENVALUE`; None
        otherwise (or with fewer than two bands).
    """
    count = correlation.shape[0]
    if count < 2:
        return None
    # The second largest eigenvalue is at least 1 - |r| for every pair of bands (Cauchy
    # interlacing), so one weakly correlated pair settles it without an eigendecomposition.
    off_diagonal = np.abs(correlation[~np.eye(count, dtype=bool)])
    if (1.0 - off_diagonal).max() >= SINGLE_IMAGE_EIGENVALUE:
        return None
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    if eigenvalues[-2] >= SINGLE_IMAGE_EIGENVALUE:
        return None
    leading = eigenvectors[:, -1] * (1.0 if eigenvectors[:, -1].sum() >= 0 else -1.0)
    # The component brought to unit variance, then whitened as a one-band raster of it is.
    variance = max(float(eigenvalues[-1]), np.finfo(float).tiny)
    return leading / np.sqrt(variance) / np.sqrt(1.0 + floor)


#: Where inference takes the input statistics from: the whole raster (one statistics pass
#: before scoring), or each tile's read window (its core and halo) on its own.
RASTER_SCOPE = "raster"
TILE_SCOPE = "tile"
NORMALISATION_SCOPES = (RASTER_SCOPE, TILE_SCOPE)


def check_normalisation_scope(scope: str) -> str:
    """Returns ``scope`` if it is one of :data:`NORMALISATION_SCOPES`.

    Raises:
        InputError: For any other value.
    """
    if scope not in NORMALISATION_SCOPES:
        raise InputError(
            f"unknown normalisation scope {scope!r}; expected one of "
            f"{', '.join(NORMALISATION_SCOPES)}"
        )
    return scope


@dataclass(frozen=True)
class WindowNormalisation:
    """The normalisation ``name`` with each window's own statistics (scope ``tile``).

    Every window read for a tile (core and halo) is normalised by :func:`normalise_input`
    over its valid pixels, as a training crop is; a window with fewer than two valid pixels
    (no statistics to take) becomes zeros, which its invalid core never shows.
    """

    name: str
    bands: int

    @property
    def band_count(self) -> int:
        """Number of bands."""
        return self.bands

    def apply(self, data: np.ndarray, valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Normalises ``float32 [C, H, W]`` data by its own valid pixels' statistics."""
        if data.shape[0] != self.bands:
            raise ValueError(f"expected {self.bands} bands, got {data.shape[0]}")
        use = np.isfinite(data).all(axis=0)
        if valid is not None:
            use &= np.asarray(valid, dtype=bool)
        if int(use.sum()) < 2:
            return np.zeros(data.shape, dtype=np.float32)
        return normalise_input(data, self.name, use)


#: What an input normalisation provides: ``apply(data, valid)`` and ``band_count``.
InputScaling = Union[BandScaling, SpectralWhitening, WindowNormalisation]


def check_normalisation(name: str) -> str:
    """Returns ``name`` if the engine implements that normalisation.

    Raises:
        ValueError: Otherwise.
    """
    if name not in NORMALISATIONS:
        raise ValueError(
            f"unknown input normalisation {name!r}; expected one of {', '.join(NORMALISATIONS)}"
        )
    return name


def needs_covariance(name: str) -> bool:
    """Whether the normalisation ``name`` needs the band covariance of the whole raster."""
    return check_normalisation(name) in WHITENING_FLOORS


def scaling_from_statistics(
    name: str, statistics: BandStatistics, what: str = "the raster"
) -> InputScaling:
    """The normalisation ``name`` of a raster, from its whole-raster statistics.

    The statistics need their covariance when :func:`needs_covariance` says so.
    """
    if needs_covariance(name):
        return SpectralWhitening.from_statistics(statistics, what, WHITENING_FLOORS[name])
    return BandScaling.from_statistics(statistics, what)


def normalise_input(
    image: np.ndarray, name: str = NORMALISATION_NAME, valid: Optional[np.ndarray] = None
) -> np.ndarray:
    """Normalises an in-memory ``[C, H, W]`` image by its own statistics, as ``name`` says.

    Invalid (non-finite or ``valid == False``) pixels are filled (band means for
    ``band_max``, 0 for the whitenings).
    """
    use = np.isfinite(image).all(axis=0)
    if valid is not None:
        use &= np.asarray(valid, dtype=bool)
    scaling: InputScaling
    if needs_covariance(name):
        scaling = SpectralWhitening.from_array(image, use, WHITENING_FLOORS[name])
    else:
        scaling = BandScaling.from_array(image, use)
    # float64 values stay so until the scaling has centred them (SpectralWhitening.apply)
    kept = np.float64 if np.asarray(image).dtype == np.float64 else np.float32
    return scaling.apply(np.where(use[None], image, 0.0).astype(kept), use)
