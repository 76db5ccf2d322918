"""The UniADRS network: stem, normality encoder, attention decoder cells and score head.

Architecture as in METHOD.md §3 (the published widths are the ``paper`` configuration).
Clean by default: all five attention decoder cells are registered (trained, initialised and
saved with the rest), LAM is correct, upsampling stays on the device, and the input adapter
(bands repeated up to ``in_channels``) is folded into the first convolution so that 1- to
3-band inputs do not pay for 270 channels.

Pixels without data. Instance normalisation makes every output depend on the mean and
variance of every feature map over the whole input. Pixels that hold no data (the nodata
corners of a rotated scene, filled before scoring) would enter those statistics like any
other and shift every valid pixel's score. :meth:`UniADRS.forward` therefore takes the
input's valid pixels as weights (:class:`ValidWeights`): each instance normalisation then
takes its mean and variance over them alone (:func:`masked_instance_norm`), at every
resolution (a cell's weight is the share of valid input pixels under it); an input without a
valid pixel is normalised over all of its pixels. Without weights it is PyTorch's instance
normalisation; with every weight 1, the same up to float rounding.

Example:
    >>> import torch
    >>> from uniadrs_engine.model.config import get_config
    >>> network = UniADRS(get_config("lite8"))
    >>> output = network(torch.rand(2, 3, 32, 32))
    >>> output.score.shape, output.feat.shape
    (torch.Size([2, 1, 32, 32]), torch.Size([2, 8, 32, 32]))
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as functional
from torch import nn

from uniadrs_engine.model.config import SIZE_MULTIPLE, ModelConfig
from uniadrs_engine.model.lam import LocalAttention


class NetworkOutput(NamedTuple):
    """What the network returns.

    Attributes:
        score: Anomaly score ``[B, 1, H, W]`` in ``[0, 1]``.
        feat: Sigmoid feature map of the head cell ``[B, stem_width, H, W]`` (feature loss),
            or None when the forward pass was asked for the score alone (inference).
    """

    score: torch.Tensor
    feat: Optional[torch.Tensor]


class ValidWeights:
    """The input's valid pixels as weights in ``[0, 1]``, at each resolution a map needs.

    Args:
        weights: ``[B, 1, H, W]`` at the network's input resolution: 1 where a pixel holds
            data, 0 where it does not, fractions where a pixel was resampled from both.

    A map of half the resolution gets the mean of four weights (the share of valid input
    under each of its cells), computed once and kept for the other maps of that size.
    """

    def __init__(self, weights: torch.Tensor) -> None:
        if weights.dim() != 4 or weights.shape[1] != 1:
            raise ValueError(f"valid weights must be shaped [B, 1, H, W], got {weights.shape}")
        if not weights.is_floating_point():
            weights = weights.float()  # a bool mask: pooling needs numbers
        self._input_size = (weights.shape[-2], weights.shape[-1])
        self._levels: Dict[Tuple[int, int], torch.Tensor] = {self._input_size: weights}

    def input_pixels_per_cell(self, size: Sequence[int]) -> float:
        """How many input pixels one cell of a map of ``size`` covers (1 at the input's)."""
        return (self._input_size[0] * self._input_size[1]) / (int(size[0]) * int(size[1]))

    def at(self, size: Sequence[int]) -> torch.Tensor:
        """The weights of a map of ``size`` (rows, cols): the input's, halved as often as needed.

        Raises:
            ValueError: If ``size`` is not the input's size halved a whole number of times.
        """
        key = (int(size[0]), int(size[1]))
        while key not in self._levels:
            coarsest = min(self._levels, key=lambda shape: shape[0])
            if coarsest[0] <= key[0]:
                raise ValueError(f"no valid weights for a map of {key} from {coarsest}")
            coarser = functional.avg_pool2d(self._levels[coarsest], kernel_size=2, stride=2)
            self._levels[(coarser.shape[-2], coarser.shape[-1])] = coarser
        return self._levels[key]


#: Channels squared at once when :func:`masked_instance_norm` takes a variance.
_SQUARED_CHANNELS = 8


def masked_instance_norm(
    values: torch.Tensor, weights: torch.Tensor, eps: float = 1e-5, least_weight: float = 1.0
) -> torch.Tensor:
    """Instance normalisation with the mean and (biased) variance over weighted pixels.

    Every pixel is normalised, valid or not; only the statistics are weighted. A sample whose
    weights sum to less than ``least_weight`` (one input pixel's share of a cell, from
    :class:`ValidWeights`; 1 at the input's resolution) is normalised over all of its pixels,
    as ``nn.InstanceNorm2d`` does: its statistics would otherwise rest on nothing. With every
    weight 1 the result is ``nn.InstanceNorm2d``'s up to float rounding.

    Args:
        values: ``[B, C, H, W]``.
        weights: ``[B, 1, H, W]`` in ``[0, 1]``.
        eps: Added to the variance, as ``nn.InstanceNorm2d``'s ``eps``.
        least_weight: The smallest sum of weights that gives a sample statistics of its own.

    Returns:
        The normalised ``[B, C, H, W]``; ``values`` is left unchanged.
    """
    batch, channels = values.shape[:2]
    weights = weights.to(values.dtype)
    total = weights.sum(dim=(2, 3), keepdim=True)
    weights = torch.where(total >= least_weight * (1 - 1e-6), weights, torch.ones_like(weights))
    total = weights.sum(dim=(2, 3)).view(batch, 1, 1)
    column = weights.reshape(batch, -1, 1)
    # Weighted sums as batched matrix products: no weighted copy of the maps is made.
    mean = torch.bmm(values.reshape(batch, channels, -1), column) / total
    centred = values - mean.view(batch, channels, 1, 1)
    # The squares are taken a few channels at a time: a square of every channel at once
    # would be one more map of the full size, at the peak of memory (+13 % at 640 px).
    variance = torch.cat(
        [
            torch.bmm(centred[:, start : start + _SQUARED_CHANNELS].square().flatten(2), column)
            for start in range(0, channels, _SQUARED_CHANNELS)
        ],
        dim=1,
    )
    scale = torch.rsqrt(variance / total + eps).view(batch, channels, 1, 1)
    if torch.is_grad_enabled() and centred.requires_grad:
        return centred * scale  # the squares saved for the gradient need ``centred`` as is
    return centred.mul_(scale)


def instance_norm(
    norm: nn.InstanceNorm2d, values: torch.Tensor, valid: Optional[ValidWeights]
) -> torch.Tensor:
    """``norm(values)``, over the valid pixels alone where ``valid`` is given."""
    if valid is None:
        return norm(values)
    size = values.shape[-2:]
    least = 1.0 / valid.input_pixels_per_cell(size)
    return masked_instance_norm(values, valid.at(size), norm.eps, least)


def run_stage(
    stage: nn.Sequential, values: torch.Tensor, valid: Optional[ValidWeights]
) -> torch.Tensor:
    """Runs a :func:`conv_stage` (or any sequence), its instance normalisations over ``valid``."""
    if valid is None:
        return stage(values)
    for layer in stage:
        if isinstance(layer, nn.InstanceNorm2d):
            values = instance_norm(layer, values, valid)
        else:
            values = layer(values)
    return values


def conv_stage(
    in_channels: int, widths: Sequence[int], dilation: int = 1, pool: bool = False
) -> nn.Sequential:
    """Builds ``[maxpool 2] + [conv3x3, InstanceNorm, ReLU] x len(widths)``."""
    layers: List[nn.Module] = [nn.MaxPool2d(kernel_size=2, stride=2)] if pool else []
    for width in widths:
        layers += [
            nn.Conv2d(in_channels, width, kernel_size=3, padding=dilation, dilation=dilation),
            nn.InstanceNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        in_channels = width
    return nn.Sequential(*layers)


def repeat_bands(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Repeats bands along the channel axis: output channel ``k`` is band ``k mod C``."""
    band_count = image.shape[1]
    index = torch.arange(channels, device=image.device) % band_count
    return image.index_select(1, index)


def band_magnitude(
    image: torch.Tensor, band_counts: Optional[Sequence[int]] = None
) -> torch.Tensor:
    """``log(1 + mean of the squared band values)`` per pixel, ``[B, 1, H, W]``.

    For whitened input (:mod:`uniadrs_engine.raster.normalisation`) the mean of the squared
    values is global RX's Mahalanobis distance divided by the band count, about 1 on the
    background; the logarithm keeps distances of thousands in a range a convolution takes.

    Args:
        image: ``[B, C, H, W]``.
        band_counts: As in :meth:`UniADRS.forward`: sample ``i``'s own bands are its first
            ``band_counts[i]`` channels (the rest repeat them); None: all ``C`` channels
            (the same value where the bands are repeated evenly, as 1 or 3 bands are to 270).
    """
    if band_counts is None:
        return torch.log1p(image.square().mean(dim=1, keepdim=True))
    return torch.cat(
        [
            torch.log1p(image[index : index + 1, :count].square().mean(dim=1, keepdim=True))
            for index, count in enumerate(band_counts)
        ]
    )


class DecoderCell(nn.Module):
    """One decoder cell ``D(en, dec, in_ch, out_ch)``; the head cell returns score and feat.

    Args:
        in_channels: Channels of the encoder features ``en`` (and of ``dec``).
        out_channels: Channels of the cell's output (attention cells only).
        lam_hidden: Hidden width of the LAM kernel predictor.
        head: Whether this is the head cell (no attention, a 1-channel score).
        faithful_lam: Use the published, spatially scrambled LAM.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        lam_hidden: int,
        head: bool = False,
        faithful_lam: bool = False,
    ) -> None:
        super().__init__()
        self.head = head
        self.encoder_norm = nn.InstanceNorm2d(in_channels)
        self.fuse = nn.Conv2d(2 * in_channels, in_channels, kernel_size=1)
        if head:
            self.score = nn.Conv2d(in_channels, 1, kernel_size=1)
        else:
            self.attention = LocalAttention(in_channels, lam_hidden, faithful=faithful_lam)
            self.project = nn.Conv2d(2 * in_channels, out_channels, kernel_size=1)
            self.output_norm = nn.InstanceNorm2d(out_channels)
            # The published cells also compute an unused 1-channel side output; it is kept
            # so that the ``paper`` configuration has the published parameter count.
            self.side_output = nn.Conv2d(out_channels, 1, kernel_size=1)

    def forward(
        self,
        encoded: torch.Tensor,
        decoded: Optional[torch.Tensor],
        features: bool = True,
        valid: Optional[ValidWeights] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns ``(output, feat)``: the cell output (the score for the head) and feat.

        ``features=False`` skips feat (returned as None): only the head's is ever used, and
        only by the training's feature loss. ``valid``: see :meth:`UniADRS.forward`.
        """
        if decoded is None:
            decoded = encoded
        if decoded.shape[-2:] != encoded.shape[-2:]:
            decoded = functional.interpolate(decoded, size=encoded.shape[-2:], mode="nearest")
        encoded = functional.relu(instance_norm(self.encoder_norm, encoded, valid), inplace=True)
        fused = concat_conv1x1(self.fuse, encoded, decoded)
        feat = torch.sigmoid(fused) if features else None
        fused = functional.relu(fused, inplace=True)
        if self.head:
            return torch.sigmoid(self.score(fused)), feat
        attended = self.attention(fused)
        projected = concat_conv1x1(self.project, fused, attended)
        return functional.relu(
            instance_norm(self.output_norm, projected, valid), inplace=True
        ), feat


def concat_conv1x1(conv: nn.Conv2d, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``conv(cat((first, second), dim=1))`` for a 1x1 ``conv``, without building the cat.

    The weight is split along its input channels and the two halves applied apart, which
    saves writing and reading a map of twice the channels (a tenth of the inference time
    at full resolution).
    """
    split = first.shape[1]
    weight = conv.weight
    result = functional.conv2d(first, weight[:, :split], conv.bias)
    return result.add_(functional.conv2d(second, weight[:, split:]))


class UniADRS(nn.Module):
    """The UniADRS anomaly scoring network.

    Args:
        config: Widths and switches; see :class:`~uniadrs_engine.model.config.ModelConfig`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        stem, (e1, e2, e3, e5) = config.stem_width, config.encoder_widths
        self.stem = conv_stage(config.in_channels, (stem, stem))
        # The magnitude input has its own kernel, added to the first convolution's output,
        # so that folding the band repetition never touches it.
        self.magnitude = (
            nn.Conv2d(1, stem, kernel_size=3, padding=1, bias=False)
            if config.magnitude_input
            else None
        )
        self.encoders = nn.ModuleList(
            [
                conv_stage(stem, (e1, e1), pool=True),
                conv_stage(e1, (e2, e2, e2), pool=True),
                conv_stage(e2, (e3, e3, e3), pool=True),
                conv_stage(e3, (e3, e3, e3), dilation=2),
                nn.Sequential(
                    nn.Conv2d(e3, e5, kernel_size=3, padding=12, dilation=12),
                    nn.Conv2d(e5, e5, kernel_size=3, padding=1),
                ),
            ]
        )
        cell_widths = [(e5, e3), (e3, e3), (e3, e2), (e2, e1), (e1, stem)]
        self.decoders = nn.ModuleList(
            [
                DecoderCell(
                    width_in, width_out, config.lam_hidden, faithful_lam=config.faithful_lam
                )
                for width_in, width_out in cell_widths
            ]
        )
        self.head = DecoderCell(stem, 1, config.lam_hidden, head=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights and zero biases (the published initialisation).

        With ``freeze_random_decoders`` the attention cells keep PyTorch's default
        initialisation and are frozen, as in the published code where they were never
        registered with the model.
        """
        frozen = set(self.decoders.modules()) if self.config.freeze_random_decoders else set()
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module not in frozen:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for parameter in self.decoders.parameters():
            parameter.requires_grad_(not self.config.freeze_random_decoders)

    def first_conv(self) -> nn.Conv2d:
        """The first convolution, whose input channels are the repeated bands."""
        conv = self.stem[0]
        assert isinstance(conv, nn.Conv2d)
        return conv

    def folded_input_weight(self, band_count: int) -> torch.Tensor:
        """First-conv weight for ``band_count`` bands: repeated channels summed per band."""
        weight = self.first_conv().weight
        index = torch.arange(weight.shape[1], device=weight.device) % band_count
        folded = weight.new_zeros(weight.shape[0], band_count, *weight.shape[2:])
        return folded.index_add(1, index, weight)

    def describe_stem(
        self,
        image: torch.Tensor,
        fold_input: bool = True,
        band_counts: Optional[Sequence[int]] = None,
        valid: Optional[ValidWeights] = None,
    ) -> torch.Tensor:
        """Per-pixel descriptors of the stem for a ``[B, C, H, W]`` image.

        Args:
            image: Normalised image batch.
            fold_input: See :meth:`forward`.
            band_counts: See :meth:`forward`.
            valid: :meth:`forward`'s ``valid`` at every resolution, or None.
        """
        band_count = image.shape[1]
        channels = self.config.in_channels
        if not 1 <= band_count <= channels:
            raise ValueError(
                f"the network takes 1 to {channels} bands, got {band_count}; "
                "score larger band counts in slices"
            )
        conv = self.first_conv()
        own_counts = band_counts if fold_input and band_count == channels else None
        if own_counts is not None:
            first = self._first_conv_per_band_count(image, own_counts)
        elif band_count == channels:
            first = conv(image)
        elif fold_input:
            first = functional.conv2d(
                image, self.folded_input_weight(band_count), conv.bias, padding=conv.padding
            )
        else:
            first = conv(repeat_bands(image, channels))
        if self.magnitude is not None:
            first = first + self.magnitude(band_magnitude(image, own_counts))
        return run_stage(self.stem[1:], first, valid)

    def _first_conv_per_band_count(
        self, image: torch.Tensor, band_counts: Sequence[int]
    ) -> torch.Tensor:
        """The first convolution of a batch of repeated bands, run per sample band count.

        Sample ``i`` holds its ``band_counts[i]`` bands repeated; its first that many channels
        are those bands, so the folded convolution of them equals the full one (up to float
        rounding) at a fraction of its cost. The rest of the stem still sees the whole batch.
        """
        if len(band_counts) != image.shape[0]:
            raise ValueError(f"{len(band_counts)} band counts for a batch of {image.shape[0]}")
        conv = self.first_conv()
        results: List[torch.Tensor] = []
        order: List[int] = []
        for count in sorted(set(band_counts)):
            if not 1 <= count <= self.config.in_channels:
                raise ValueError(f"band count {count} outside 1..{self.config.in_channels}")
            rows = [index for index, value in enumerate(band_counts) if value == count]
            results.append(
                functional.conv2d(
                    image[rows, :count],
                    self.folded_input_weight(count),
                    conv.bias,
                    padding=conv.padding,
                )
            )
            order += rows
        # Rows were grouped by band count; put them back in batch order.
        return torch.cat(results)[torch.argsort(torch.tensor(order, device=image.device))]

    def forward(
        self,
        image: torch.Tensor,
        fold_input: bool = True,
        band_counts: Optional[Sequence[int]] = None,
        features: bool = True,
        valid: Optional[torch.Tensor] = None,
    ) -> NetworkOutput:
        """Scores a ``[B, C, H, W]`` image (``1 <= C <= in_channels``, H and W multiples of 8).

        Args:
            image: Normalised image batch.
            fold_input: Fold the band repetition into the first convolution (clean); False
                repeats the bands to ``in_channels`` as the published code does.
            band_counts: For a batch of samples with different band counts, each repeated
                to ``in_channels`` (:func:`~uniadrs_engine.training.batches.collate`), every
                sample's own count: the first convolution then runs on each sample's own
                bands, folded, which gives the same result for much less work (the stem's
                first convolution was a third of a training step on 270 channels).
            features: Compute the head's feature map (the training's feature loss needs it;
                inference does not, and saves a full-resolution map).
            valid: ``[B, 1, H, W]`` weights of the pixels that hold data (1; 0 where they
                were filled; fractions where resampled from both), or None where every
                pixel does. Every instance normalisation then takes its statistics over
                them alone (see the module's docstring); weights all 1 give None's scores
                up to float rounding.

        Returns:
            The score map and the head's feature map (None with ``features=False``).
        """
        height, width = image.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"height and width must be multiples of {SIZE_MULTIPLE}")
        weights = None
        if valid is not None:
            if (valid.shape[0], *valid.shape[-2:]) != (image.shape[0], height, width):
                raise ValueError(
                    f"valid weights {tuple(valid.shape)} do not match the image "
                    f"{tuple(image.shape)}"
                )
            weights = ValidWeights(valid)
        descriptors = self.describe_stem(
            image, fold_input=fold_input, band_counts=band_counts, valid=weights
        )
        encoded: List[torch.Tensor] = []
        level = descriptors
        for encoder in self.encoders:
            level = run_stage(encoder, level, weights)
            encoded.append(level)
        decoded: Optional[torch.Tensor] = None
        for cell, encoder_features in zip(self.decoders, reversed(encoded)):
            decoded, _ = cell(encoder_features, decoded, features=False, valid=weights)
        score, feat = self.head(descriptors, decoded, features=features, valid=weights)
        return NetworkOutput(score=score, feat=feat)


def count_parameters(network: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``network`` (optionally only those that are trained)."""
    return sum(
        parameter.numel()
        for parameter in network.parameters()
        if parameter.requires_grad or not trainable_only
    )
