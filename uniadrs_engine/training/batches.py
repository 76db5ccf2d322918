"""Turns simulated samples into training batches, including mixed band counts.

Samples with the same band count are stacked as they are (the network folds the band
repetition into its first convolution). A batch that mixes band counts (a 270-band spectral
sample beside a 3-band spatial one) repeats every sample's bands up to the network's input
channels first, which gives the same result per sample; given :func:`band_counts`, the
network runs its first convolution on each sample's own bands, so the repetition costs
nothing there. Each image is first brought to the
network's input normalisation: simulated samples come scaled by their maximum (``band_max``);
``whiten`` whitens every sample by its own statistics over its valid pixels and distinct
bands, as inference whitens a raster's bands over its valid pixels.

A sample whose background held no data somewhere is treated as inference treats a tile
with pixels without data (docs/ARCHITECTURE.md, "Pixels without data"): its invalid pixels
take the values of their nearest valid pixel, and :func:`batch_validity` gives the network
the weights that keep them out of its instance normalisations. Samples without such pixels
(every sample of the shipped model's backgrounds) go through unchanged.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> a = SimpleNamespace(image=np.zeros((3, 8, 8), "f4"), labels=np.zeros((8, 8), "u1"))
    >>> b = SimpleNamespace(image=np.zeros((1, 8, 8), "f4"), labels=np.zeros((8, 8), "u1"))
    >>> images, labels = collate([a, b], in_channels=6)
    >>> tuple(images.shape), tuple(labels.shape)
    ((2, 6, 8, 8), (2, 8, 8))
    >>> band_counts([a, b])
    [3, 1]
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from uniadrs_engine.inference.scoring import fill_from_nearest
from uniadrs_engine.model.network import repeat_bands
from uniadrs_engine.raster.normalisation import NORMALISATION_NAME, normalise_input


def network_input(
    image: np.ndarray,
    normalisation: str = NORMALISATION_NAME,
    valid: Optional[np.ndarray] = None,
    band_indices: Optional[np.ndarray] = None,
) -> np.ndarray:
    """A simulated sample's image (already divided by its maximum) in ``normalisation``.

    A spectral sample's channels are bands of its source picked with replacement, so a band
    can fill several channels. Inference whitens a raster's distinct bands, and whitening a
    band ``m`` times over would scale it by about ``1 / sqrt(m)``; so the whitenings are
    computed on the distinct bands and then copied to every channel that holds them, which
    gives each channel the values inference gives that band.

    Args:
        image: The sample's image.
        normalisation: The network's input normalisation.
        valid: Where the background held data (None: everywhere); other pixels stay out of
            the statistics and take the values of their nearest valid pixel, as at
            inference (:func:`~uniadrs_engine.inference.scoring.fill_from_nearest`).
        band_indices: The source band behind each channel (None: the channels are distinct
            bands).
    """
    if normalisation == NORMALISATION_NAME:
        result = np.ascontiguousarray(image, dtype=np.float32)
        if valid is not None and np.shares_memory(result, image):
            result = result.copy()  # the fill below writes into it, never into the sample
    else:
        result = None
        if band_indices is not None:
            _, first, copies = np.unique(
                np.asarray(band_indices), return_index=True, return_inverse=True
            )
            if len(first) < len(band_indices):
                distinct = normalise_input(image[first], normalisation, valid)
                result = np.ascontiguousarray(distinct[copies.ravel()])
        if result is None:
            result = normalise_input(image, normalisation, valid)
    if valid is not None:
        fill_from_nearest(result, valid)
    return result


def batch_validity(samples: Sequence[Any]) -> Optional[torch.Tensor]:
    """The network's ``valid`` weights of a batch: ``float32 [B, 1, H, W]``, or None.

    None when every sample's pixels all hold data, so that such batches take the network's
    path without weights, as they always have; otherwise 1 where a sample's background held
    data and 0 where its pixels were filled (:func:`network_input`).
    """
    masks = [getattr(sample, "valid", None) for sample in samples]
    if all(mask is None or np.all(mask) for mask in masks):
        return None
    stacked = [
        np.ones(np.shape(sample.labels), dtype=np.float32)
        if mask is None
        else np.asarray(mask, dtype=np.float32)
        for sample, mask in zip(samples, masks)
    ]
    return torch.from_numpy(np.stack(stacked)[:, None])


def band_counts(samples: Sequence[Any]) -> List[int]:
    """Each sample's band count, for the network's ``band_counts`` (see :func:`collate`)."""
    return [int(sample.image.shape[0]) for sample in samples]


def collate(
    samples: Sequence[Any], in_channels: int, normalisation: str = NORMALISATION_NAME
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stacks samples (objects with ``image [C,H,W]`` and ``labels [H,W]``) into tensors.

    Args:
        samples: The samples.
        in_channels: The network's input channels.
        normalisation: The network's input normalisation (see :func:`network_input`).

    Returns:
        ``images [B, C', H, W]`` float32 and ``labels [B, H, W]`` int64.
    """
    distinct_counts = set(band_counts(samples))
    images = [
        torch.from_numpy(
            network_input(
                sample.image,
                normalisation,
                getattr(sample, "valid", None),
                getattr(sample, "band_indices", None),
            )
        )
        for sample in samples
    ]
    if len(distinct_counts) > 1:
        images = [repeat_bands(image[None], in_channels)[0] for image in images]
    labels = [torch.from_numpy(np.asarray(sample.labels, dtype=np.int64)) for sample in samples]
    return torch.stack(images), torch.stack(labels)
