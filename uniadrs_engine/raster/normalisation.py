"""The one definition of the network's input normalisation (``band_max``, METHOD.md §7).

Each band is divided by its maximum absolute value over the valid pixels of the whole raster
(not of a tile, so tiled and whole-image scoring see the same values). A band that is
constant zero (or whose maximum is not a positive finite number) is divided by 1, so every
output stays finite. Invalid pixels (nodata, non-finite) are filled with the band's
normalised mean before the network sees them, so they neither stand out as anomalies nor
enter the statistics.

Example:
    >>> import numpy as np
    >>> scaling = BandScaling.from_array(np.array([[[2.0, -4.0]], [[0.0, 0.0]]]))
    >>> scaling.divisors.tolist()
    [4.0, 1.0]
    >>> scaling.apply(np.array([[[2.0, -4.0]], [[0.0, 0.0]]], dtype="float32")).tolist()
    [[[0.5, -1.0]], [[0.0, 0.0]]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.statistics import BandStatistics

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
    use = np.isfinite(image).all(axis=0)
    if valid is not None:
        use &= np.asarray(valid, dtype=bool)
    scaling = BandScaling.from_array(image, use)
    return scaling.apply(np.where(use[None], image, 0.0).astype(np.float32), use)
