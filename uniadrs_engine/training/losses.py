"""The two large-margin losses of UniADRS (METHOD.md §4 and §5).

* :class:`PixelMarginLoss`: a pixel-level AUC-ranking surrogate. Thresholded, hard-pixel
  weighted BCE terms with learnable, non-negative multipliers ``lambda`` on the negatives
  (trained by gradient *ascent*, which in practice ramps the background weight up; clean
  mode clips them at ``lambda_max``), minus a prior-dependent FPR anchor.
* :class:`BalancedBCELoss`: an alternative pixel loss (class-balanced binary cross-entropy,
  METHOD.md §9), selected with the training configuration's ``pixel_loss: balanced_bce``.
* :func:`feature_margin_loss`: compactness of normal and anomaly feature clusters with
  separation of their centres.

Labels: 0 background, 1 anomaly, 2 ignore, 3 large normal object. The pixel loss treats 1 as
positive and {0, 3} as negative; the feature loss treats {0, 3} as normal and 1 as anomaly;
both skip 2.

Example:
    >>> import torch
    >>> loss = PixelMarginLoss()
    >>> score = torch.rand(2, 1, 8, 8)
    >>> labels = torch.zeros(2, 8, 8, dtype=torch.long)
    >>> labels[:, 2:4, 2:4] = 1
    >>> float(loss(score, labels).detach()) >= 0.0  # the loss has learnt multipliers
    True
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as functional
from torch import nn

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.training.config import PIXEL_LOSSES

LABEL_BACKGROUND = 0
LABEL_ANOMALY = 1
LABEL_IGNORE = 2
LABEL_LARGE_NORMAL = 3

THRESHOLDS = (0.9, 0.85, 0.8, 0.75, 0.7, 0.6)
FPR_ANCHORS = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
POSITIVE_WEIGHT = 1.0
NEGATIVE_WEIGHT = 0.5
NEGATIVE_LAMBDA_FACTOR = 0.2
PIXEL_LOSS_SCALE = 5.0
FEATURE_LOSS_SCALE = 0.1
COMPACT_OUTLIER_WEIGHT = 10.0


class _PerSamplePixelLoss(nn.Module):
    """A pixel loss computed per sample over its labelled pixels, then averaged."""

    def forward(self, score: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the per-sample loss.

        Args:
            score: ``[B, 1, H, W]`` scores in ``[0, 1]``.
            labels: ``[B, H, W]`` integer labels.

        Raises:
            TrainingError: If a sample has no labelled (non-ignored) pixel.
        """
        losses = []
        for sample_score, sample_labels in zip(score, labels):
            flat_labels = sample_labels.reshape(-1)
            labelled = flat_labels != LABEL_IGNORE
            if not bool(labelled.any()):
                raise TrainingError("a training sample has no labelled pixel (all ignored)")
            values = sample_score.reshape(-1)[labelled].clamp(1e-7, 1.0 - 1e-7)
            losses.append(self._sample_loss(values, flat_labels[labelled] == LABEL_ANOMALY))
        return torch.stack(losses).mean()

    def _sample_loss(self, score: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """The loss of one sample's labelled scores (clamped) and anomaly mask."""
        raise NotImplementedError


class PixelMarginLoss(_PerSamplePixelLoss):
    """Pixel-level large-margin (AUC-ranking surrogate) loss.

    Args:
        faithful_combination: Combine the per-threshold terms as the published code does
            (``L = (L + term_i) / 2`` in turn, so the last threshold weighs 1/2); the clean
            default is their plain mean.
        lambda_max: Upper clip of the multipliers after each ascent step (None: no clip,
            as published).
    """

    def __init__(self, faithful_combination: bool = False, lambda_max: Optional[float] = 10.0):
        super().__init__()
        self.faithful_combination = faithful_combination
        self.lambda_max = lambda_max
        self.multipliers = nn.Parameter(torch.ones(len(THRESHOLDS)))
        # Gradient ascent on the multipliers: their gradient is negated on the way back.
        self.multipliers.register_hook(lambda gradient: -gradient)

    def clip_multipliers(self) -> None:
        """Keeps the multipliers in ``[0, lambda_max]`` (call after their optimiser step)."""
        with torch.no_grad():
            self.multipliers.clamp_(min=0.0, max=self.lambda_max)

    def _sample_loss(self, score: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        target = positive.to(score.dtype)
        cross_entropy = functional.binary_cross_entropy(score, target, reduction="none")
        multipliers = self.multipliers.clamp(min=0.0)
        terms = []
        for index, threshold in enumerate(THRESHOLDS):
            with torch.no_grad():
                hard = torch.where(positive, score <= threshold, score >= threshold)
                weight = torch.where(
                    positive,
                    torch.full_like(score, POSITIVE_WEIGHT),
                    torch.full_like(score, NEGATIVE_WEIGHT),
                )
                weight = torch.where(hard, torch.full_like(score, -math.log(threshold)), weight)
            negative_factor = NEGATIVE_LAMBDA_FACTOR * multipliers[index]
            weight = torch.where(positive, weight, weight * negative_factor)
            terms.append((weight * cross_entropy).mean())
        if self.faithful_combination:
            combined = torch.zeros((), dtype=score.dtype, device=score.device)
            for term in terms:
                combined = (combined + term) / 2
        else:
            combined = torch.stack(terms).mean()
        prior = (target.sum() + 1.0) / (target.numel() + 2.0)
        anchor = prior * (sum(FPR_ANCHORS) / len(FPR_ANCHORS))
        return PIXEL_LOSS_SCALE * functional.relu(combined - anchor)


class BalancedBCELoss(_PerSamplePixelLoss):
    """Class-balanced binary cross-entropy: the anomaly and the normal pixels weigh half each.

    Per sample: ``0.5 * mean BCE(anomaly pixels) + 0.5 * mean BCE(normal pixels)``, over the
    labelled pixels (label 2 is skipped; a sample without anomaly pixels gets the normal term
    alone). It has no learnable multipliers.

    Example:
        >>> import torch
        >>> labels = torch.zeros(1, 4, 4, dtype=torch.long)
        >>> labels[0, 0, 0] = 1
        >>> score = torch.full((1, 1, 4, 4), 0.5)
        >>> round(float(BalancedBCELoss()(score, labels)), 4)
        0.6931
    """

    def _sample_loss(self, score: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        terms = []
        if bool(positive.any()):
            terms.append(-torch.log(score[positive]).mean())
        if bool((~positive).any()):
            terms.append(-torch.log1p(-score[~positive]).mean())
        return torch.stack(terms).mean()


def build_pixel_loss(name: str, faithful: bool = False) -> nn.Module:
    """The pixel loss a training configuration names.

    Args:
        name: ``margin`` (METHOD.md §4, the default) or ``balanced_bce``.
        faithful: For ``margin``: combine the terms as published and leave the multipliers
            unclipped.

    Raises:
        TrainingError: On an unknown name.
    """
    if name == "margin":
        return PixelMarginLoss(faithful_combination=faithful, lambda_max=None if faithful else 10.0)
    if name == "balanced_bce":
        return BalancedBCELoss()
    raise TrainingError(f"unknown pixel_loss {name!r}; choose one of {list(PIXEL_LOSSES)}")


def compactness(features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Compactness of a feature cluster ``[N, D]``; returns ``(loss, centre)``."""
    centre = features.mean(dim=0)
    squared_distance = ((features - centre) ** 2).sum(dim=1)
    radius = torch.sqrt(squared_distance + 1e-8).mean()
    outside = functional.relu(squared_distance - radius**2)
    return radius**2 + COMPACT_OUTLIER_WEIGHT * outside.mean(), centre


def feature_margin_loss(feat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Feature-level large-margin loss, averaged over the batch.

    Per sample: ``0.1 * (compact(N) + compact(A) - ||c_N - c_A||)``; a term whose set is
    empty is skipped (the separation needs both sets).

    Args:
        feat: ``[B, D, H, W]`` features of the head cell.
        labels: ``[B, H, W]`` integer labels.
    """
    losses = []
    for sample_feat, sample_labels in zip(feat, labels):
        vectors = sample_feat.reshape(sample_feat.shape[0], -1).transpose(0, 1)
        flat_labels = sample_labels.reshape(-1)
        normal = (flat_labels == LABEL_BACKGROUND) | (flat_labels == LABEL_LARGE_NORMAL)
        anomaly = flat_labels == LABEL_ANOMALY
        loss = feat.new_zeros(())
        centres = []
        for members in (normal, anomaly):
            if bool(members.any()):
                term, centre = compactness(vectors[members])
                loss = loss + term
                centres.append(centre)
        if len(centres) == 2:
            loss = loss - torch.linalg.vector_norm(centres[0] - centres[1])
        losses.append(FEATURE_LOSS_SCALE * loss)
    return torch.stack(losses).mean()


def check_finite(value: torch.Tensor, what: str, step: int) -> None:
    """Raises a clear :class:`TrainingError` if ``value`` holds NaN or infinity."""
    if not bool(torch.isfinite(value).all()):
        raise TrainingError(
            f"{what} is not finite at step {step}; lower the learning rate or check the "
            "backgrounds for NaN/inf pixels (training stopped, last checkpoint kept)"
        )
