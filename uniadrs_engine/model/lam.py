"""Local attention module (LAM) of the UniADRS decoder cells (METHOD.md §3).

For every pixel, a small convolutional head predicts 49 weights (softmax-normalised) over the
7x7 taps of a dilation-2 window; the output at the pixel is the weighted sum of the input
features at those taps. One weight per tap and pixel, shared over channels.

The clean form loops over the 49 taps (memory grows with the feature map, not 49 times it).
The faithful form reproduces the published code, whose reshape without a transpose sums one
tap over 49 consecutive pixels instead of 49 taps at one pixel.

Example:
    >>> import torch
    >>> lam = LocalAttention(channels=8, hidden=4)
    >>> lam(torch.rand(1, 8, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import nn

KERNEL_SIZE = 7
DILATION = 2
PADDING = DILATION * (KERNEL_SIZE - 1) // 2
TAPS = KERNEL_SIZE * KERNEL_SIZE


class LocalAttention(nn.Module):
    """Per-pixel attention over a 7x7 dilation-2 neighbourhood.

    Args:
        channels: Channels of the features it attends over.
        hidden: Width of the kernel predictor's 7x7 convolution.
        faithful: Reproduce the published code's spatially scrambled aggregation.
    """

    def __init__(self, channels: int, hidden: int, faithful: bool = False) -> None:
        super().__init__()
        self.kernel_conv = nn.Conv2d(
            channels, hidden, kernel_size=KERNEL_SIZE, dilation=DILATION, padding=PADDING
        )
        self.tap_conv = nn.Conv2d(hidden, TAPS, kernel_size=1)
        self.faithful = faithful

    def tap_weights(self, features: torch.Tensor) -> torch.Tensor:
        """Returns the softmax weights ``[B, 49, H, W]`` over the window's taps."""
        return functional.softmax(self.tap_conv(self.kernel_conv(features)), dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Aggregates ``features`` ``[B, C, H, W]`` over each pixel's window."""
        weights = self.tap_weights(features)
        if self.faithful:
            return scrambled_aggregate(features, weights)
        return windowed_aggregate(features, weights)


def windowed_aggregate(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Computes ``out(p) = sum_t weights_t(p) * features(p + offset_t)`` (zero padding).

    Args:
        features: ``[B, C, H, W]``.
        weights: ``[B, 49, H, W]``; tap ``t = 7 * i + j`` is row offset ``2 * (i - 3)`` and
            column offset ``2 * (j - 3)``, the order of :func:`torch.nn.functional.unfold`.

    Returns:
        ``[B, C, H, W]``.
    """
    height, width = features.shape[-2:]
    padded = functional.pad(features, (PADDING, PADDING, PADDING, PADDING))
    aggregated = torch.zeros_like(features)
    # One split, not 49 slices: each slice's backward would add a zero-filled gradient of
    # all 49 taps (twice the time of the whole aggregation at the decoder's finest level).
    for tap, tap_weight in enumerate(weights.split(1, dim=1)):
        row, col = divmod(tap, KERNEL_SIZE)
        shifted = padded[
            :, :, DILATION * row : DILATION * row + height, DILATION * col : DILATION * col + width
        ]
        aggregated.addcmul_(tap_weight, shifted)  # fused multiply-add, no temporaries
    return aggregated


def unfold_aggregate(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Same result as :func:`windowed_aggregate` via ``unfold`` (reference, memory-hungry)."""
    batch, channels, height, width = features.shape
    columns = functional.unfold(
        features, kernel_size=KERNEL_SIZE, dilation=DILATION, padding=PADDING
    ).reshape(batch, channels, TAPS, height * width)
    tap_weights = weights.reshape(batch, 1, TAPS, height * width)
    return (columns * tap_weights).sum(dim=2).reshape(batch, channels, height, width)


def scrambled_aggregate(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The published LAM: ``[B, 49, L]`` data reshaped to ``[B, L, 49]`` without a transpose.

    Products of matching (tap, pixel) pairs are formed correctly, but the sum then runs over
    49 consecutive entries of the tap-major layout: mostly one tap over 49 neighbouring
    pixels in raster order.
    """
    batch, channels, height, width = features.shape
    pixels = height * width
    columns = functional.unfold(
        features, kernel_size=KERNEL_SIZE, dilation=DILATION, padding=PADDING
    ).reshape(batch, channels, pixels, TAPS)
    tap_weights = weights.reshape(batch, 1, pixels, TAPS)
    return (columns * tap_weights).sum(dim=3).reshape(batch, channels, height, width)
