"""Spatial anomaly simulation on visible crops (METHOD §6, "Spatial").

One sample, step by step:

1. A visible background is drawn uniformly and a random square crop of ``size`` pixels is cut
   (``size`` times a factor drawn in ``crop_scale``, which is ``(1, 1)`` by default; clipped
   to the raster). With probability 0.7 Gaussian noise is added, with a standard deviation of
   ``√10/255`` to ``√50/255`` of the crop's maximum (albumentations' ``GaussNoise`` on 8-bit
   data, as the original). The crop is resized to ``size`` (nearest). Existing instances of
   the ``*_objects`` mask, and nodata pixels, are labelled 2 (ignore).
2. Four objects from the :class:`~uniadrs_engine.simulation.object_bank.ObjectBank` are pasted
   at random places, whole: first two large normals (label 3) rescaled so that their mask
   covers 6-50 % of the crop, then two anomalies (label 1) covering 2-6 %; anomalies may cover
   normals. An object whose rescaled mask misses its area range by more than
   ``area_tolerance`` is replaced by another draw.
3. With probability 0.5 one random channel is kept; the image is divided by its maximum.

``anomaly_source="scene"`` (an option, not METHOD's) fills each anomaly instead with the
crop's own pixels from elsewhere (as they were before any paste, outlined by a bank object's
mask): an anomaly then shares the colours and textures of its scene and deviates only by
being out of place, as an aircraft on a tarmac does, where a cut-out from another image also
differs in colour. ``anomaly_source="mixed"`` draws one of the two for each sample, the
crop's own pixels with probability ``scene_share`` (0.5 by default).

Clean fixes of the original: every anomaly lands whole inside the crop (so each sample has
anomaly pixels), and an object's relative values (see the object bank) are multiplied by the
crop's maximum and clipped to the crop's ``[min, max]``, so pasted pixels always lie in the
crop's value range (the original pasted resized 8-bit objects as near-black silhouettes).

Example:
    >>> bank = ObjectBank.from_pool(pool, np.random.default_rng(0))  # doctest: +SKIP
    >>> simulator = SpatialSimulator(pool, bank, size=128)  # doctest: +SKIP
    >>> sample = simulator.sample(np.random.default_rng(0))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.geometry import (
    fitted_object_shape,
    resize_bilinear,
    resize_nearest,
)
from uniadrs_engine.simulation.object_bank import ObjectBank, ObjectCutout
from uniadrs_engine.simulation.sample import (
    ANOMALY,
    BACKGROUND,
    IGNORE,
    LARGE_NORMAL,
    SPATIAL,
    SimulatedSample,
    check_size,
    has_both_classes,
    only_if_partial,
    scale_by_maximum,
)
from uniadrs_engine.simulation.spectral import (
    check_count,
    check_flag,
    check_number,
    check_probability,
    check_range,
)

#: Attempts at one sample before giving up (each one draws a new crop).
MAX_ATTEMPTS = 50
#: Objects drawn for one paste before giving up on it.
OBJECT_ATTEMPTS = 10
#: A crop whose value range is below this fraction of its maximum is redrawn (flat crops
#: would squeeze pasted objects into invisibility).
MIN_RELATIVE_CONTRAST = 0.02

#: Where anomalies' pixels come from: the object bank (METHOD), the crop itself, or one of
#: the two drawn for each sample.
ANOMALY_SOURCES = ("bank", "scene", "mixed")
#: With ``mixed``, the odds of the crop's own pixels unless ``scene_share`` says otherwise.
DEFAULT_SCENE_SHARE = 0.5


class SpatialSimulator:
    """Simulates spatial anomalies by pasting objects into visible crops."""

    def __init__(
        self,
        pool: BackgroundPool,
        bank: ObjectBank,
        size: int,
        *,
        normal_count: int = 2,
        normal_area: Tuple[float, float] = (0.06, 0.5),
        anomaly_count: int = 2,
        anomaly_area: Tuple[float, float] = (0.02, 0.06),
        area_tolerance: float = 0.1,
        noise_probability: float = 0.7,
        noise_std: Tuple[float, float] = (math.sqrt(10.0) / 255.0, math.sqrt(50.0) / 255.0),
        single_channel_probability: float = 0.5,
        crop_scale: Tuple[float, float] = (1.0, 1.0),
        per_band_scaling: bool = False,
        min_valid_fraction: float = 0.5,
        anomaly_source: str = "bank",
        scene_share: Optional[float] = None,
    ) -> None:
        """Sets up the simulator.

        Args:
            pool: Backgrounds; its visible files are used.
            bank: Objects to paste.
            size: Side of the samples (a multiple of 8).
            normal_count: Large normals pasted per sample.
            normal_area: Range of a large normal's area, as a fraction of the sample (in
                ``[0, 1]``).
            anomaly_count: Anomalies pasted per sample (at least 1).
            anomaly_area: Range of an anomaly's area, as a fraction of the sample (in
                ``[0, 1]``).
            area_tolerance: Relative slack on the area ranges after rescaling an object.
            noise_probability: Probability of adding Gaussian noise to the crop.
            noise_std: Range of the noise's standard deviation, relative to the crop maximum.
            single_channel_probability: Probability of keeping one random channel.
            crop_scale: Range of the crop side relative to ``size`` (a multi-scale option;
                above 0).
            per_band_scaling: Divide each band by its own maximum instead of one maximum.
            min_valid_fraction: Crops with fewer valid pixels are redrawn when possible.
            anomaly_source: ``bank`` (pixels of the bank's objects), ``scene`` (the crop's
                own pixels from elsewhere, outlined by a bank object's mask) or ``mixed``
                (one of the two for each sample).
            scene_share: With ``mixed``, the probability that a sample's anomalies are the
                crop's own pixels (``scene``); in ``[0, 1]``, :data:`DEFAULT_SCENE_SHARE`
                when left out. Any value, even the default's, is refused with another
                source.

        Raises:
            InputError: The pool has no visible background, or an option is invalid.
        """
        self.pool = pool
        self.backgrounds = pool.visible
        if not self.backgrounds:
            raise InputError("no visible background for the spatial simulation")
        self.bank = bank
        self.size = check_size(size)
        self.normal_count = check_count("normal_count", normal_count)
        self.normal_area = check_range("normal_area", normal_area, maximum=1.0)
        self.anomaly_count = check_count("anomaly_count", anomaly_count)
        if self.anomaly_count < 1:
            raise InputError("the spatial simulation needs at least one anomaly per sample")
        self.anomaly_area = check_range("anomaly_area", anomaly_area, maximum=1.0)
        self.area_tolerance = check_number("area_tolerance", area_tolerance)
        self.noise_probability = check_probability("noise_probability", noise_probability)
        self.noise_std = check_range("noise_std", noise_std)
        self.single_channel_probability = check_probability(
            "single_channel_probability", single_channel_probability
        )
        self.crop_scale = check_range("crop_scale", crop_scale, above_minimum=True)
        self.per_band_scaling = check_flag("per_band_scaling", per_band_scaling)
        self.min_valid_fraction = check_probability("min_valid_fraction", min_valid_fraction)
        if not isinstance(anomaly_source, str) or anomaly_source not in ANOMALY_SOURCES:
            raise InputError(
                f"unknown anomaly source {anomaly_source!r} (choose {', '.join(ANOMALY_SOURCES)})"
            )
        if scene_share is not None and anomaly_source != "mixed":
            raise InputError(
                f"scene_share goes with anomaly_source 'mixed', not {anomaly_source!r}"
            )
        self.anomaly_source = anomaly_source
        self.scene_share = check_probability(
            "scene_share", DEFAULT_SCENE_SHARE if scene_share is None else scene_share
        )

    def sample(self, rng: np.random.Generator) -> SimulatedSample:
        """Draws one sample; the result depends only on ``rng``'s state."""
        for _ in range(MAX_ATTEMPTS):
            sample = self._attempt(rng)
            if sample is not None:
                return sample
        raise InputError("the visible backgrounds are too flat or too empty to simulate on")

    def _attempt(self, rng: np.random.Generator) -> Optional[SimulatedSample]:
        """One try at a sample; None when the crop or the pastes did not work out."""
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        side = max(8, int(round(self.size * rng.uniform(*self.crop_scale))))
        window = self.pool.random_window(
            rng, background, side, side, self.min_valid_fraction, objects=True
        )
        image, valid = window.image, window.valid
        if not valid.any():
            return None
        low, high = float(image[:, valid].min()), float(image[:, valid].max())
        if high - low <= MIN_RELATIVE_CONTRAST * max(abs(high), abs(low)):
            return None
        if rng.random() < self.noise_probability:
            image = self._add_noise(rng, image, valid, low, high, background.dtype)

        target = (self.size, self.size)
        image = resize_nearest(image, target)
        valid = resize_nearest(valid, target).copy()
        labels = np.where(valid, BACKGROUND, IGNORE).astype(np.uint8)
        if window.objects is not None:
            labels[resize_nearest(window.objects, target) > 0] = IGNORE
        image = np.array(image, dtype=np.float32)
        from_scene = self.anomaly_source == "scene" or (
            self.anomaly_source == "mixed" and rng.random() < self.scene_share
        )
        scene = (image.copy(), valid.copy()) if from_scene else None

        for label, count, area_range in (
            (LARGE_NORMAL, self.normal_count, self.normal_area),
            (ANOMALY, self.anomaly_count, self.anomaly_area),
        ):
            for _ in range(count):
                source = scene if label == ANOMALY else None
                self._paste(rng, image, labels, valid, label, area_range, (low, high), source)
        if not has_both_classes(labels):
            return None

        if image.shape[0] > 1 and rng.random() < self.single_channel_probability:
            channel = int(rng.integers(image.shape[0]))
            image = image[channel : channel + 1]
        image = scale_by_maximum(image, valid, self.per_band_scaling)
        return SimulatedSample(
            image=np.ascontiguousarray(image, dtype=np.float32),
            labels=labels,
            kind=SPATIAL,
            source=background.name,
            valid=only_if_partial(valid),
        )

    def _add_noise(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        valid: np.ndarray,
        low: float,
        high: float,
        dtype: str,
    ) -> np.ndarray:
        """Adds Gaussian noise to the valid pixels, kept within the data type's range."""
        reference = high if high > 0 else high - low
        std = rng.uniform(*self.noise_std) * reference
        noisy = image + rng.normal(0.0, std, size=image.shape).astype(np.float32)
        if low >= 0:
            np.maximum(noisy, 0.0, out=noisy)
        if np.issubdtype(np.dtype(dtype), np.integer):
            np.minimum(noisy, float(np.iinfo(np.dtype(dtype)).max), out=noisy)
        noisy[:, ~valid] = 0.0
        return noisy

    def _paste(
        self,
        rng: np.random.Generator,
        image: np.ndarray,
        labels: np.ndarray,
        valid: np.ndarray,
        label: int,
        area_range: Tuple[float, float],
        value_range: Tuple[float, float],
        scene: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    ) -> bool:
        """Pastes one object with ``label`` in place; False when no object fitted its area.

        With ``scene`` (the crop's image and validity before any paste), the object's pixels
        are the scene's own from another place, outlined by the object's mask.
        """
        total = self.size * self.size
        smallest = area_range[0] * total * (1.0 - self.area_tolerance)
        largest = area_range[1] * total * (1.0 + self.area_tolerance)
        for _ in range(OBJECT_ATTEMPTS):
            target_area = rng.uniform(*area_range) * total
            cutout = self.bank.draw(rng, image.shape[0])
            pixels, mask = scaled_object(cutout, target_area, self.size)
            if not smallest <= mask.sum() <= largest:
                continue
            height, width = mask.shape
            top = int(rng.integers(0, self.size - height + 1))
            left = int(rng.integers(0, self.size - width + 1))
            if scene is None:
                values = np.clip(pixels * value_range[1], value_range[0], value_range[1])
            else:
                values = self._scene_pixels(rng, scene, mask, (top, left))
                if values is None:
                    continue
            rows, cols = slice(top, top + height), slice(left, left + width)
            image[:, rows, cols][:, mask] = values[:, mask]
            labels[rows, cols][mask] = label
            valid[rows, cols][mask] = True
            return True
        return False

    def _scene_pixels(
        self,
        rng: np.random.Generator,
        scene: Tuple[np.ndarray, np.ndarray],
        mask: np.ndarray,
        target: Tuple[int, int],
    ) -> Optional[np.ndarray]:
        """The scene's pixels under ``mask`` at a random valid place whose box misses the target.

        Returns ``[C, h, w]`` (only the mask's pixels matter), or None when no place fits.
        """
        image, valid = scene
        height, width = mask.shape
        for _ in range(OBJECT_ATTEMPTS):
            top = int(rng.integers(0, self.size - height + 1))
            left = int(rng.integers(0, self.size - width + 1))
            if abs(top - target[0]) < height and abs(left - target[1]) < width:
                continue  # overlapping boxes would paste the place onto itself
            rows, cols = slice(top, top + height), slice(left, left + width)
            if valid[rows, cols][mask].all():
                return image[:, rows, cols]
        return None


def scaled_object(
    cutout: ObjectCutout, target_area: float, limit: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Rescales an object so that its mask covers about ``target_area`` pixels.

    Pixels are resized bilinearly; so is the mask, thresholded at 0.5, which keeps enlarged
    outlines smooth rather than staircased. Neither side exceeds ``limit`` (see
    :func:`~uniadrs_engine.simulation.geometry.fitted_object_shape`).

    Returns:
        ``(pixels [C, h, w], mask [h, w])``.
    """
    height, width = cutout.mask.shape
    shape = fitted_object_shape(height, width, cutout.area, target_area, limit)
    mask = resize_bilinear(cutout.mask.astype(np.float32), shape) > 0.5
    return resize_bilinear(cutout.pixels, shape), mask
