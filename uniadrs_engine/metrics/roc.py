"""Pixel-level ROC analysis of score maps: AUC per image, pooled AUC, ROC curve points.

Anomalies are the positive class and a higher score means "more anomalous". Pixels that are
not valid (``valid`` False, or a non-finite score) are left out. The AUC is scikit-learn's
``roc_auc_score``, i.e. the Mann–Whitney statistic ``P(s_anomaly > s_background) +
0.5 P(s_anomaly == s_background)``. :func:`count_pairs` computes the same statistic exactly
from pair counts, so that rasters larger than memory can be evaluated in pieces
(see :mod:`uniadrs_engine.metrics.evaluation`).

Example:
    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.9], [0.4, 0.4]])
    >>> mask = np.array([[0, 1], [0, 1]], dtype=bool)
    >>> pixel_auc(scores, mask)
    0.875
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from uniadrs_engine.errors import InputError

#: ``(scores, mask)`` or ``(scores, mask, valid)``.
ScoredImage = Union[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class RocCurve:
    """Points of a ROC curve, ordered by increasing false-positive rate.

    Attributes:
        false_positive_rate: ``float64 [n]`` in ``[0, 1]``.
        true_positive_rate: ``float64 [n]`` in ``[0, 1]``.
        thresholds: ``float64 [n]``; a pixel is detected when its score is ``>=`` the
            threshold (the first one is ``+inf``: nothing detected).
        auc: Area under the curve (the pixel AUC).
    """

    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray
    auc: float


def flatten_scored(
    scores: np.ndarray, mask: np.ndarray, valid: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Returns the scores and anomaly labels of the valid pixels, flattened.

    Args:
        scores: Score map, any shape.
        mask: Anomaly mask of the same shape (non-zero = anomaly).
        valid: Optional bool map of the same shape; False pixels are left out.

    Returns:
        ``(scores float64 [n], labels bool [n])`` of the pixels that are valid and finite.

    Raises:
        InputError: If the shapes differ.
    """
    scores = np.asarray(scores)
    mask = np.asarray(mask)
    if scores.shape != mask.shape:
        raise InputError(f"score map {scores.shape} and mask {mask.shape} differ in shape")
    keep = np.isfinite(scores)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != scores.shape:
            raise InputError(f"valid mask {valid.shape} and scores {scores.shape} differ in shape")
        keep &= valid
    return scores[keep].astype(np.float64, copy=False), mask[keep] != 0


def check_both_classes(n_anomalies: int, n_pixels: int, what: str = "the mask") -> None:
    """Raises :class:`InputError` unless there are both anomaly and background pixels.

    Args:
        n_anomalies: Number of (valid) anomaly pixels.
        n_pixels: Number of valid pixels.
        what: How to name the mask in the message.
    """
    if n_pixels == 0:
        raise InputError(
            f"no pixel to evaluate: none holds both a score (not nodata, finite) and a value "
            f"of {what}"
        )
    if n_anomalies == 0:
        raise InputError(f"{what} has no anomaly pixel among the valid pixels: AUC is undefined")
    if n_anomalies == n_pixels:
        raise InputError(f"{what} has no background pixel among the valid pixels: AUC is undefined")


def pixel_auc(scores: np.ndarray, mask: np.ndarray, valid: Optional[np.ndarray] = None) -> float:
    """Returns the pixel AUC-ROC of one score map (anomalies positive).

    Args:
        scores: Score map (higher = more anomalous).
        mask: Anomaly mask of the same shape (non-zero = anomaly).
        valid: Optional bool map; False pixels (and non-finite scores) are left out.

    Raises:
        InputError: If shapes differ or the valid pixels hold only one class.
    """
    values, labels = flatten_scored(scores, mask, valid)
    check_both_classes(int(labels.sum()), labels.size)
    return float(roc_auc_score(labels, values))


def pooled_auc(images: Sequence[ScoredImage]) -> float:
    """Returns one AUC over the pixels of several score maps taken together.

    This is the "pooled per modality" figure: every pixel of every image is ranked against
    every other, so the score scales of the images matter (unlike the mean of per-image AUCs).

    Args:
        images: ``(scores, mask)`` or ``(scores, mask, valid)`` per image.

    Raises:
        InputError: If no image is given or the pooled pixels hold only one class.
    """
    if not images:
        raise InputError("no score map to pool")
    all_values = []
    all_labels = []
    for item in images:
        values, labels = flatten_scored(*item)
        all_values.append(values)
        all_labels.append(labels)
    values = np.concatenate(all_values)
    labels = np.concatenate(all_labels)
    check_both_classes(int(labels.sum()), labels.size, "the pooled masks")
    return float(roc_auc_score(labels, values))


def roc_curve_points(
    scores: np.ndarray,
    mask: np.ndarray,
    valid: Optional[np.ndarray] = None,
    max_points: int = 2000,
) -> RocCurve:
    """Returns the ROC curve of a score map, thinned to at most ``max_points`` points.

    Args:
        scores: Score map.
        mask: Anomaly mask of the same shape.
        valid: Optional bool map of pixels to use.
        max_points: Upper bound on the returned points (first and last are always kept); the
            AUC is computed on the full curve.

    Raises:
        InputError: If shapes differ or the valid pixels hold only one class.
    """
    values, labels = flatten_scored(scores, mask, valid)
    check_both_classes(int(labels.sum()), labels.size)
    fpr, tpr, thresholds = roc_curve(labels, values, drop_intermediate=True)
    auc = float(roc_auc_score(labels, values))
    if fpr.size > max_points:
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(np.int64))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return RocCurve(
        false_positive_rate=fpr.astype(np.float64),
        true_positive_rate=tpr.astype(np.float64),
        thresholds=thresholds.astype(np.float64),
        auc=auc,
    )


def count_pairs(reference_sorted: np.ndarray, values: np.ndarray) -> Tuple[int, int]:
    """Counts ordered pairs between a sorted reference set and a set of values, exactly.

    Args:
        reference_sorted: Ascending ``float64`` reference scores.
        values: Other scores (any order).

    Returns:
        ``(greater, equal)``: the number of pairs ``(r, v)`` with ``r > v``, and with ``r == v``.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    at_or_below = np.searchsorted(reference_sorted, values, side="right")
    below = np.searchsorted(reference_sorted, values, side="left")
    greater = int(reference_sorted.size * values.size - int(at_or_below.sum(dtype=np.int64)))
    equal = int((at_or_below - below).sum(dtype=np.int64))
    return greater, equal
