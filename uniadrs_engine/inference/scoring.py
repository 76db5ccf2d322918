"""Scoring of normalised arrays with a UniADRS network (whole images and tile batches).

* :func:`score_image` scores one ``float32 [C, H, W]`` image already normalised
  (:mod:`uniadrs_engine.raster.normalisation`) and returns ``float32 [H, W]`` in ``[0, 1]``.
* :func:`score_tiles` scores a batch of equally sized tiles at an input scale: resample by
  the scale, score (in one or more test-time views, :mod:`uniadrs_engine.inference.views`),
  resample back. The raster detector uses it.

Both pad the network's input to multiples of 8 (at least 16) by mirror padding on the right
and bottom (edge replication when the image is too small to mirror) and crop the padding off
the score.
Pixels that hold no data (``valid``) take the values of the nearest pixel that does
(:func:`fill_from_nearest`: :func:`score_image` does it, the detector as it reads each tile), as
mirror padding continues an image beyond its edge, and are given to the network as weights,
resampled, oriented and padded with the image, so that its instance normalisations take their
statistics over the valid pixels alone (:meth:`UniADRS.forward`); an image whose every pixel is
valid is scored as it is.
Images with more bands than the network takes (``in_channels``, 270 for every published
configuration) are scored in ``ceil(C / in_channels)`` contiguous, near-equal band slices
that together cover every band once; the score maps of the slices are averaged (METHOD.md §7,
clean).

Example:
    >>> import numpy as np
    >>> from uniadrs_engine.model.config import get_config
    >>> from uniadrs_engine.model.network import UniADRS
    >>> network = UniADRS(get_config("lite8")).eval()
    >>> score_image(network, np.random.rand(3, 20, 30).astype("float32")).shape
    (20, 30)
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as functional
from scipy import ndimage

from uniadrs_engine.inference.device import out_of_memory_as_device_error
from uniadrs_engine.inference.views import score_views
from uniadrs_engine.model.config import SIZE_MULTIPLE
from uniadrs_engine.model.ensemble import MemberMean, ScoringNetwork

DeviceLike = Union[str, torch.device]

#: Smallest input side: instance normalisation needs more than one cell at 1/8 resolution.
MIN_NETWORK_SIZE = 2 * SIZE_MULTIPLE


def band_slices(band_count: int, in_channels: int) -> List[Tuple[int, int]]:
    """Splits ``band_count`` bands into contiguous, near-equal slices of at most ``in_channels``.

    Returns:
        ``(start, stop)`` pairs that cover ``range(band_count)`` exactly once, in order.

    Example:
        >>> band_slices(300, 270)
        [(0, 150), (150, 300)]
    """
    if band_count < 1 or in_channels < 1:
        raise ValueError(
            f"band count and in_channels must be positive: {band_count}, {in_channels}"
        )
    slice_count = math.ceil(band_count / in_channels)
    bounds = np.linspace(0, band_count, slice_count + 1).round().astype(int)
    return [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]


def fill_from_nearest(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Gives each invalid pixel of an image the values of its nearest valid pixel, in place.

    Whatever an invalid pixel held (nodata, a band mean), the network then sees the valid
    content go on across the border, as mirror padding continues a tile beyond the raster's
    edge, instead of a step to one value. Measured with the default model on benchmark scenes
    set in an L of nodata, this brought their scores nearer their own (docs/ARCHITECTURE.md,
    "Pixels without data"). An image without a valid pixel is left as it is. Only the invalid
    pixels are gathered, a band at a time, so no copy of the image is made.

    Args:
        image: ``float32 [C, H, W]``, written in place.
        valid: ``bool [H, W]``.

    Returns:
        ``image``.
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.all() or not valid.any():
        return image
    invalid = ~valid
    rows, cols = ndimage.distance_transform_edt(
        invalid, return_distances=False, return_indices=True
    )
    source_rows, source_cols = rows[invalid], cols[invalid]
    del rows, cols
    for band in image:
        band[invalid] = band[source_rows, source_cols]
    return image


def _pad_axis_mode(size: int, pad: int) -> str:
    return "reflect" if pad < size else "replicate"


def padded_size(size: int, multiple: int = SIZE_MULTIPLE) -> int:
    """The network input side for an image side: a multiple of 8, at least 16."""
    return max(MIN_NETWORK_SIZE, -(-size // multiple) * multiple)


def pad_to_multiple(batch: torch.Tensor, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Pads ``[B, C, H, W]`` on the right and bottom to multiples of ``multiple`` (>= 16).

    Mirror padding where the image is larger than the pad, edge replication otherwise.
    """
    height, width = batch.shape[-2:]
    pad_bottom = padded_size(height, multiple) - height
    pad_right = padded_size(width, multiple) - width
    if pad_bottom:
        batch = functional.pad(
            batch, (0, 0, 0, pad_bottom), mode=_pad_axis_mode(height, pad_bottom)
        )
    if pad_right:
        batch = functional.pad(batch, (0, pad_right, 0, 0), mode=_pad_axis_mode(width, pad_right))
    return batch


def resample(batch: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resamples ``[B, C, H, W]`` to ``size`` (rows, cols), bilinear.

    Anti-aliased when shrinking, so that downscaling averages instead of skipping pixels.
    """
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    shrinking = size[0] < batch.shape[-2] or size[1] < batch.shape[-1]
    return functional.interpolate(
        batch, size=size, mode="bilinear", align_corners=False, antialias=shrinking
    )


def scaled_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """``(rows, cols)`` of an extent resampled by ``scale`` (at least one pixel each)."""
    return (max(1, int(round(size[0] * scale))), max(1, int(round(size[1] * scale))))


def score_batch(
    network: ScoringNetwork, batch: torch.Tensor, valid: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Scores a ``[B, C, H, W]`` batch on the network's device; returns ``[B, H, W]``.

    Pads to multiples of 8 and crops back; scores band slices and averages them when
    ``C`` exceeds the network's ``in_channels``. Call inside ``torch.inference_mode()``.

    Args:
        network: The network.
        batch: ``[B, C, H, W]``.
        valid: ``[B, 1, H, W]`` weights of the pixels holding data (padded as the batch is),
            or None where every pixel does.
    """
    height, width = batch.shape[-2:]
    padded = pad_to_multiple(batch)
    padded_valid = None if valid is None else pad_to_multiple(valid)
    slices = band_slices(padded.shape[1], network.config.in_channels)
    total = None
    for start, stop in slices:
        score = network(padded[:, start:stop], features=False, valid=padded_valid).score[:, 0]
        total = score if total is None else total + score
    assert total is not None
    if len(slices) > 1:
        total = total / len(slices)
    return total[:, :height, :width]


@contextmanager
def checks_between_passes(network: torch.nn.Module, check: Callable[[], None]) -> Iterator[None]:
    """Calls ``check`` before each forward pass of ``network``'s members (or of ``network``).

    A batch of tiles goes through every member of an ensemble, once per test-time view; a
    ``check`` that raises (a stop asked for) then ends the batch after the pass under way
    instead of after all of them: the visible preset's ten networks took up to 30 s a batch
    of the sample on a loaded CPU, one of them about a tenth of that
    (``scripts/bench_stop_latency.py``).
    """
    modules = list(network.members) if isinstance(network, MemberMean) else [network]
    handles = [module.register_forward_pre_hook(lambda *_: check()) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def score_tiles(
    network: ScoringNetwork,
    tiles: np.ndarray,
    scale: float = 1.0,
    device: DeviceLike = "cpu",
    views: int = 1,
    valid: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Scores a batch of equally sized normalised tiles at an input scale.

    Args:
        network: The network (in eval mode, on ``device``).
        tiles: ``float32 [B, C, H, W]``.
        scale: Input scale; the tiles are resampled to ``round(H * scale)`` x
            ``round(W * scale)`` before scoring and the scores back to ``H`` x ``W``.
        device: Where to run.
        views: Test-time views averaged at the network's input (1, 2, 4 or 8; see
            :mod:`uniadrs_engine.inference.views`): one forward pass each.
        valid: ``bool [B, H, W]``: the pixels that hold data, or None where all do. Only
            they enter the network's instance statistics. The others should have been
            filled (:func:`fill_from_nearest`; the detector fills each tile as it reads it).
            Tiles whose every pixel is valid are scored as without ``valid``, apart.

    Returns:
        ``float32 [B, H, W]`` scores in ``[0, 1]``.

    Raises:
        DeviceError: If the device runs out of memory.
    """
    device = torch.device(device)
    if valid is not None and np.shape(valid) != (tiles.shape[0], *tiles.shape[-2:]):
        raise ValueError(f"valid {np.shape(valid)} does not match tiles {tiles.shape}")
    if valid is None or np.all(valid):
        return _score_tiles(network, tiles, scale, device, views, None)
    valid = np.asarray(valid, dtype=bool)
    masked = ~valid.reshape(len(tiles), -1).all(axis=1)
    if masked.all():
        return _score_tiles(network, tiles, scale, device, views, valid)
    # Tiles whose every pixel is valid are scored apart, without weights, so that a tile's
    # score never depends on the batch it lands in.
    scores = np.empty((len(tiles), *tiles.shape[-2:]), dtype=np.float32)
    scores[~masked] = _score_tiles(network, tiles[~masked], scale, device, views, None)
    scores[masked] = _score_tiles(network, tiles[masked], scale, device, views, valid[masked])
    return scores


def _score_tiles(
    network: ScoringNetwork,
    tiles: np.ndarray,
    scale: float,
    device: torch.device,
    views: int,
    valid: Optional[np.ndarray],
) -> np.ndarray:
    """:func:`score_tiles` of one batch, with the validity of every tile or of none."""
    size = tuple(tiles.shape[-2:])
    with out_of_memory_as_device_error(device), torch.inference_mode():
        network_size = scaled_size(size, scale)
        weights = None
        if valid is not None:
            weights = torch.from_numpy(np.asarray(valid, dtype=np.float32)[:, None]).to(device)
            weights = resample(weights, network_size).clamp_(0.0, 1.0)
        batch = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32)).to(device)
        scores = score_views(
            lambda views_batch, views_valid: score_batch(network, views_batch, views_valid),
            resample(batch, network_size),
            views,
            weights,
        )
        scores = resample(scores[:, None], size)[:, 0].clamp_(0.0, 1.0)
        return scores.float().cpu().numpy()


def score_image(
    network: ScoringNetwork,
    image: np.ndarray,
    device: DeviceLike = "cpu",
    scale: float = 1.0,
    views: int = 1,
    valid: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Scores one whole normalised image.

    Args:
        network: The network (in eval mode, on ``device``).
        image: ``float32 [C, H, W]``, normalised (per-band maximum, see
            :mod:`uniadrs_engine.raster.normalisation`).
        device: Where to run.
        scale: Input scale (1.0 = as is).
        views: Test-time views averaged (1, 2, 4 or 8).
        valid: ``bool [H, W]``: the pixels that hold data, or None. The others take their
            nearest valid pixel's values (:func:`fill_from_nearest`, on a copy) and stay out
            of the network's instance statistics.

    Returns:
        ``float32 [H, W]`` scores in ``[0, 1]``.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an image shaped [C, H, W], got {image.shape}")
    if valid is None or np.all(valid):
        return score_tiles(network, image[None], scale=scale, device=device, views=views)[0]
    filled = fill_from_nearest(np.array(image, dtype=np.float32), valid)
    batch_valid = np.asarray(valid, dtype=bool)[None]
    return score_tiles(
        network, filled[None], scale=scale, device=device, views=views, valid=batch_valid
    )[0]
