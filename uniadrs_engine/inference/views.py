"""Test-time views: score a tile in several flipped or transposed orientations and average.

The network is not invariant to flips and 90° turns: its scores for an image and for the
same image mirrored differ a little, as two networks of the ensemble do. Averaging the scores
of several orientations (each mapped back to the raster's orientation) averages that
variation out, at the cost of one forward pass per view. The views are the first ``N`` of
the eight orientations of :mod:`uniadrs_engine.orientations` (0 as is, 1 mirrored
left-right, 2 mirrored top-bottom, 3 turned 180°, 4-7 the same transposed), so ``2`` adds
the left-right mirror, ``4`` every flip without transposing (no change of the tile's shape),
``8`` the whole group.

Example:
    >>> import torch
    >>> batch = torch.arange(6.0).reshape(1, 1, 2, 3)
    >>> all(torch.equal(invert_view(apply_view(batch, k), k), batch) for k in range(8))
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Tuple

from uniadrs_engine.errors import InputError
from uniadrs_engine.orientations import ORIENTATION_COUNTS, orient, unorient

if TYPE_CHECKING:  # torch is imported by the callers' tensors: the presets load without it
    import torch

#: Numbers of views one may ask for (each a prefix of the orientation table).
VIEW_COUNTS: Tuple[int, ...] = ORIENTATION_COUNTS


def check_views(views: int) -> int:
    """Validates a number of views and returns it as an int.

    Raises:
        InputError: If it is not one of :data:`VIEW_COUNTS`.
    """
    if isinstance(views, bool) or int(views) != views or int(views) not in VIEW_COUNTS:
        choices = ", ".join(str(count) for count in VIEW_COUNTS)
        raise InputError(f"the number of views must be one of {choices}, got {views!r}")
    return int(views)


def apply_view(batch: torch.Tensor, view: int) -> torch.Tensor:
    """Orients a ``[..., H, W]`` tensor as view ``view`` (0-7) sees it."""
    return orient(batch, view)


def invert_view(batch: torch.Tensor, view: int) -> torch.Tensor:
    """Maps a ``[..., H, W]`` tensor seen by view ``view`` back to the original orientation."""
    return unorient(batch, view)


def score_views(
    score: Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor],
    batch: torch.Tensor,
    views: int = 1,
    valid: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Averages ``score`` over the first ``views`` orientations of ``batch``.

    Args:
        score: Maps ``[B, C, H, W]`` and its valid weights (``[B, 1, H, W]`` or None) to
            ``[B, H, W]`` (any ``H``, ``W``).
        batch: ``[B, C, H, W]``.
        views: One of :data:`VIEW_COUNTS`; 1 calls ``score`` once, unchanged.
        valid: ``[B, 1, H, W]`` weights of the pixels holding data, oriented with the batch
            for each view, or None.

    Returns:
        ``[B, H, W]``: the mean of the views' scores, each in the batch's orientation.
    """
    views = check_views(views)
    total = score(batch, valid)
    for view in range(1, views):
        seen_valid = None if valid is None else apply_view(valid, view)
        total = total + invert_view(score(apply_view(batch, view), seen_valid), view)
    return total / views if views > 1 else total
