"""The simulated training sample, its label values and the scaling every simulator applies.

A :class:`SimulatedSample` is what the trainer consumes: a float32 image ``[C, H, W]`` scaled
by its maximum and a uint8 label map ``[H, W]`` (METHOD §2):

* 0 ``BACKGROUND``: real background pixels;
* 1 ``ANOMALY``: a simulated anomaly (positive);
* 2 ``IGNORE``: an object already in the image (its status is unknown) or a nodata pixel;
* 3 ``LARGE_NORMAL``: a pasted deviation too large to be an anomaly (negative).

Example:
    >>> import numpy as np
    >>> sample = SimulatedSample(np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), np.uint8),
    ...                          "spatial", "tile.tif")
    >>> sample.channels, sample.size
    (3, 8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.model.config import MIN_TRAINING_SIZE, SIZE_MULTIPLE

BACKGROUND = 0
ANOMALY = 1
IGNORE = 2
LARGE_NORMAL = 3

#: Every label value a sample may hold.
LABEL_VALUES = (BACKGROUND, ANOMALY, IGNORE, LARGE_NORMAL)

SPECTRAL = "spectral"
SPATIAL = "spatial"


@dataclass
class SimulatedSample:
    """One training sample with simulated anomalies.

    Attributes:
        image: float32 ``[C, H, W]``, divided by the maximum of the crop or patch, so values
            lie in ``[0, 1]`` for non-negative data. Nodata pixels are 0 (and labelled 2).
        labels: uint8 ``[H, W]`` with the values of :data:`LABEL_VALUES`.
        kind: ``"spectral"`` or ``"spatial"``.
        source: Name of the background file the sample was cut from (as in
            :attr:`BackgroundFile.name <uniadrs_engine.simulation.backgrounds.BackgroundFile>`).
        band_indices: For spectral samples, the 0-based band of the source file behind each
            output channel (the random pick of METHOD §6 step 5); None for spatial samples.
        valid: bool ``[H, W]``, False where the background held no data (those pixels are
            0 in ``image`` and must not enter statistics such as the whitening's); None when
            every pixel is valid.
    """

    image: np.ndarray
    labels: np.ndarray
    kind: str
    source: str
    band_indices: Optional[np.ndarray] = None
    valid: Optional[np.ndarray] = None

    @property
    def channels(self) -> int:
        """Number of image channels."""
        return int(self.image.shape[0])

    @property
    def size(self) -> int:
        """Number of rows (samples are square)."""
        return int(self.labels.shape[0])

    def anomaly_fraction(self) -> float:
        """Fraction of the pixels labelled anomaly."""
        return float(np.mean(self.labels == ANOMALY))


def only_if_partial(valid: np.ndarray) -> Optional[np.ndarray]:
    """A sample's validity mask: a bool copy of ``valid``, or None when every pixel is valid.

    Example:
        >>> only_if_partial(np.ones((2, 2), bool)) is None
        True
    """
    valid = np.asarray(valid, dtype=bool)
    return None if valid.all() else valid.copy()


def scale_by_maximum(
    image: np.ndarray, valid: Optional[np.ndarray] = None, per_band: bool = False
) -> np.ndarray:
    """Divides an image by its maximum over the valid pixels; invalid pixels become 0.

    Args:
        image: float32 ``[C, H, W]``.
        valid: bool ``[H, W]``, True where the pixel holds data; None means all pixels.
        per_band: Divide each band by its own maximum instead of one maximum for all bands.

    Returns:
        A new float32 array. A non-positive maximum falls back to the largest absolute value,
        and an all-zero image is returned unchanged, so the result is always finite.
    """
    all_valid = valid is None or bool(valid.all())
    values = image.reshape(image.shape[0], -1) if all_valid else image[:, valid]
    if values.size == 0:
        return np.zeros_like(image, dtype=np.float32)
    if per_band:
        divisor = _safe_divisor(values, values.max(axis=-1)).reshape(-1, 1, 1)
    else:
        divisor = _safe_divisor(values, np.asarray(values.max()))
    scaled = (image / divisor).astype(np.float32, copy=False)
    if not all_valid:
        scaled[:, ~valid] = 0.0
    return scaled


def _safe_divisor(values: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """The maximum where positive, else the largest absolute value, else 1."""
    if np.all(maximum > 0):
        return maximum.astype(np.float32)
    axis = -1 if maximum.ndim else None
    divisor = np.where(maximum > 0, maximum, np.abs(values).max(axis=axis))
    return np.where(divisor > 0, divisor, 1.0).astype(np.float32)


def repeat_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Repeats an image's bands along the channel axis: channel k is band ``k mod C``.

    This is the network's input adapter (METHOD §3) done on the array, for batching samples
    of different band counts together.
    """
    order = np.arange(channels) % image.shape[0]
    return image[order]


def has_both_classes(labels: np.ndarray) -> bool:
    """Whether a label map holds an anomaly pixel and a normal (0 or 3) pixel."""
    anomaly = (labels == ANOMALY).any()
    normal = ((labels == BACKGROUND) | (labels == LARGE_NORMAL)).any()
    return bool(anomaly and normal)


def check_size(size: int) -> int:
    """Returns ``size`` if it is a multiple of 8 and at least 16 (the network's requirement).

    Raises:
        InputError: ``size`` is not such a number.
    """
    if int(size) != size or size < MIN_TRAINING_SIZE or size % SIZE_MULTIPLE:
        raise InputError(
            f"the training size must be a multiple of {SIZE_MULTIPLE} and at least "
            f"{MIN_TRAINING_SIZE}, not {size}"
        )
    return int(size)
