"""Pixel AUC, pooled AUC, ROC curve points and exact pair counting."""

from __future__ import annotations

import numpy as np
import pytest

from uniadrs_engine.errors import InputError
from uniadrs_engine.metrics.roc import count_pairs, pixel_auc, pooled_auc, roc_curve_points


def mann_whitney_by_hand(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(anomaly > background) + 0.5 P(tie), by looping over every pair."""
    anomalies = scores[labels]
    background = scores[~labels]
    wins = 0.0
    for a in anomalies:
        for b in background:
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / (anomalies.size * background.size)


def test_pixel_auc_matches_the_mann_whitney_statistic_with_ties():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(6, 7)).astype(np.float32)  # many ties
    mask = rng.random((6, 7)) < 0.3
    expected = mann_whitney_by_hand(scores.ravel().astype(float), mask.ravel())
    assert pixel_auc(scores, mask) == pytest.approx(expected, abs=1e-12)


def test_pixel_auc_small_hand_example():
    scores = np.array([[0.1, 0.9], [0.4, 0.4]])
    mask = np.array([[0, 1], [0, 1]])
    # pairs: 0.9>0.1, 0.9>0.4, 0.4>0.1, 0.4==0.4 -> 3.5 / 4
    assert pixel_auc(scores, mask) == pytest.approx(0.875)


def test_pixel_auc_leaves_out_invalid_and_non_finite_pixels():
    scores = np.array([0.2, 0.8, 100.0, np.nan, 0.5])
    mask = np.array([0, 1, 0, 1, 0])
    valid = np.array([True, True, False, True, True])
    # left: 0.2 (bg), 0.8 (anomaly), 0.5 (bg) -> 1.0; the invalid 100 would have broken it
    assert pixel_auc(scores, mask, valid) == pytest.approx(1.0)
    assert pixel_auc(scores, mask) == pytest.approx(0.5 * (1 + 1 + 0) / 1.5)


@pytest.mark.parametrize("mask_value", [0, 1])
def test_pixel_auc_rejects_a_mask_with_one_class(mask_value):
    scores = np.arange(12.0).reshape(3, 4)
    mask = np.full((3, 4), mask_value)
    with pytest.raises(InputError, match="AUC is undefined"):
        pixel_auc(scores, mask)


def test_pixel_auc_rejects_shape_mismatch():
    with pytest.raises(InputError, match="differ in shape"):
        pixel_auc(np.zeros((3, 4)), np.zeros((4, 3)))


def test_pooled_auc_ranks_pixels_across_images():
    first = (np.array([0.0, 1.0]), np.array([0, 1]))
    second = (np.array([10.0, 11.0, 12.0]), np.array([0, 0, 1]))
    scores = np.array([0.0, 1.0, 10.0, 11.0, 12.0])
    labels = np.array([False, True, False, False, True])
    assert pooled_auc([first, second]) == pytest.approx(mann_whitney_by_hand(scores, labels))
    # per image both are perfect, pooled they are not
    assert pooled_auc([first, second]) < 1.0
    with pytest.raises(InputError):
        pooled_auc([])


def test_roc_curve_points_are_monotone_and_thinned():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=5000)
    mask = rng.random(5000) < 0.2
    scores[mask] += 1.0
    curve = roc_curve_points(scores, mask, max_points=50)
    assert curve.false_positive_rate.size <= 50
    assert curve.false_positive_rate[0] == 0 and curve.true_positive_rate[0] == 0
    assert curve.false_positive_rate[-1] == 1 and curve.true_positive_rate[-1] == 1
    assert np.all(np.diff(curve.false_positive_rate) >= 0)
    assert np.all(np.diff(curve.true_positive_rate) >= 0)
    assert curve.auc == pytest.approx(pixel_auc(scores, mask))
    assert np.trapz(curve.true_positive_rate, curve.false_positive_rate) == pytest.approx(
        curve.auc, abs=0.01
    )


def test_count_pairs_counts_greater_and_equal_pairs():
    reference = np.sort(np.array([1.0, 2.0, 2.0, 5.0]))
    values = np.array([2.0, 0.0, 5.0, 7.0])
    greater, equal = count_pairs(reference, values)
    expected_greater = sum(int(r > v) for r in reference for v in values)
    expected_equal = sum(int(r == v) for r in reference for v in values)
    assert (greater, equal) == (expected_greater, expected_equal)
