"""The object bank: cut-outs that the spatial simulation pastes into visible crops.

Two kinds of objects:

* **cut-outs** of the instances in the ``*_objects`` masks of the visible backgrounds (pixels
  inside the instance's bounding box plus its mask), read once by
  :meth:`ObjectBank.from_pool`; pixel values are divided by the maximum of the file they come
  from, so they are relative (about ``[0, 1]``) and the simulator rescales them into the range
  of the crop they are pasted into;
* **random polygons**, made at each draw: a star-shaped polygon filled with a random colour
  (plus a little noise) or with the texture of a random window of another background.

:meth:`ObjectBank.draw` returns a polygon with probability ``polygon_share`` (always when the
pool has no object mask) and otherwise a random cut-out, randomly turned by a multiple of 90°
and mirrored.

Example:
    >>> bank = ObjectBank.from_pool(pool, np.random.default_rng(0))  # doctest: +SKIP
    >>> cutout = bank.draw(np.random.default_rng(1), channels=3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.geometry import random_polygon_mask, resize_bilinear, resize_nearest

LOGGER = logging.getLogger(__name__)

POLYGON_SOURCE = "polygon"


@dataclass
class ObjectCutout:
    """One object to paste.

    Attributes:
        pixels: float32 ``[C, h, w]`` in relative units (about ``[0, 1]``).
        mask: bool ``[h, w]``, True on the object.
        source: ``<background name>#<instance id>`` for cut-outs, ``"polygon"`` otherwise.
    """

    pixels: np.ndarray
    mask: np.ndarray
    source: str

    @property
    def area(self) -> int:
        """Number of object pixels."""
        return int(self.mask.sum())


class ObjectBank:
    """Cut-outs from instance masks plus random polygons."""

    def __init__(
        self,
        cutouts: List[ObjectCutout],
        pool: Optional[BackgroundPool] = None,
        polygon_share: float = 0.25,
        texture_share: float = 0.5,
        polygon_side: int = 64,
    ) -> None:
        """Sets up a bank.

        Args:
            cutouts: Object cut-outs (may be empty: then every draw is a polygon).
            pool: Backgrounds that textured polygons take their texture from; None gives
                plain-colour polygons only.
            polygon_share: Probability that a draw is a random polygon.
            texture_share: Probability that a polygon is textured rather than plain.
            polygon_side: Side of the canvas polygons are drawn on (they are rescaled later).
        """
        self.cutouts = cutouts
        self.pool = pool
        self.polygon_share = polygon_share if cutouts else 1.0
        self.texture_share = texture_share if pool is not None and pool.files else 0.0
        self.polygon_side = polygon_side

    @classmethod
    def from_pool(
        cls,
        pool: BackgroundPool,
        rng: np.random.Generator,
        *,
        max_objects: int = 1000,
        max_per_file: int = 200,
        min_area: int = 16,
        max_side: int = 96,
        polygon_share: float = 0.25,
    ) -> ObjectBank:
        """Cuts the instances out of the object masks of the pool's visible backgrounds.

        Args:
            pool: Backgrounds; visible files with a ``*_objects`` mask give cut-outs.
            rng: Chooses the instances kept when a file has more than its share.
            max_objects: Cut-outs kept in all, shared evenly between the files.
            max_per_file: Cut-outs kept from one file at most.
            min_area: Instances with fewer pixels are skipped.
            max_side: Larger cut-outs are shrunk to this side (they are rescaled to their
                pasted size anyway), which bounds the bank's memory.
            polygon_share: Probability that a draw is a random polygon.
        """
        files = [item for item in pool.visible if item.objects_path is not None]
        cutouts: List[ObjectCutout] = []
        per_file = min(max_per_file, max(1, max_objects // max(len(files), 1)))
        for background in files:
            boxes = pool.object_boxes(background)
            ids = np.array(
                [
                    key
                    for key, (r0, c0, r1, c1) in sorted(boxes.items())
                    if (r1 - r0) * (c1 - c0) >= min_area
                ],
                dtype=np.int64,
            )
            if len(ids) > per_file:
                ids = np.sort(rng.choice(ids, size=per_file, replace=False))
            for object_id in ids:
                row0, col0, row1, col1 = boxes[int(object_id)]
                window = pool.read(background, (col0, row0, col1 - col0, row1 - row0), objects=True)
                assert window.objects is not None
                mask = (window.objects == object_id) & window.valid
                if mask.sum() < min_area:
                    continue
                pixels = window.image / np.float32(max(background.value_max, 1e-12))
                longest = max(mask.shape)
                if longest > max_side:
                    shape = (
                        max(1, round(mask.shape[0] * max_side / longest)),
                        max(1, round(mask.shape[1] * max_side / longest)),
                    )
                    pixels, mask = resize_bilinear(pixels, shape), resize_nearest(mask, shape)
                    if not mask.any():
                        continue
                cutouts.append(
                    ObjectCutout(pixels.astype(np.float32), mask, f"{background.name}#{object_id}")
                )
        LOGGER.info("object bank: %d cut-outs from %d object masks", len(cutouts), len(files))
        return cls(cutouts, pool=pool, polygon_share=polygon_share)

    def __len__(self) -> int:
        return len(self.cutouts)

    def provenance(self) -> Dict[str, object]:
        """Counts of cut-outs per background file, and the polygon share."""
        counts = Counter(cutout.source.split("#")[0] for cutout in self.cutouts)
        return {
            "cutouts": len(self.cutouts),
            "per_file": dict(counts),
            "polygon_share": self.polygon_share,
        }

    def draw(self, rng: np.random.Generator, channels: int) -> ObjectCutout:
        """Draws an object with ``channels`` bands (a new array, safe to modify)."""
        if rng.random() < self.polygon_share:
            return self._polygon(rng, channels)
        cutout = self.cutouts[int(rng.integers(len(self.cutouts)))]
        pixels, mask = match_channels(cutout.pixels, channels), cutout.mask
        turns = int(rng.integers(4))
        pixels, mask = np.rot90(pixels, turns, axes=(1, 2)), np.rot90(mask, turns)
        if rng.random() < 0.5:
            pixels, mask = pixels[:, :, ::-1], mask[:, ::-1]
        return ObjectCutout(np.ascontiguousarray(pixels), np.ascontiguousarray(mask), cutout.source)

    def _polygon(self, rng: np.random.Generator, channels: int) -> ObjectCutout:
        """A random polygon filled with a colour or with a texture from a background."""
        mask = random_polygon_mask(rng, self.polygon_side)
        height, width = mask.shape
        if self.pool is not None and rng.random() < self.texture_share:
            background = self.pool.files[int(rng.integers(len(self.pool.files)))]
            window = self.pool.random_window(rng, background, height, width)
            texture = window.image / np.float32(max(background.value_max, 1e-12))
            pixels = match_channels(resize_nearest(texture, (height, width)), channels)
        else:
            colour = rng.uniform(0.05, 1.0, size=(channels, 1, 1))
            noise = rng.normal(0.0, 0.02, size=(channels, height, width))
            pixels = np.clip(colour + noise, 0.0, 1.0)
        return ObjectCutout(pixels.astype(np.float32), mask, POLYGON_SOURCE)


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Adapts ``[C0, h, w]`` to ``channels`` bands.

    One band is the mean of the bands; otherwise band k is band ``k mod C0``.
    """
    count = pixels.shape[0]
    if count == channels:
        return pixels
    if channels == 1:
        return pixels.mean(axis=0, keepdims=True)
    return pixels[np.arange(channels) % count]
