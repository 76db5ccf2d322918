import math

import pytest
import torch

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.training.losses import (
    FPR_ANCHORS,
    THRESHOLDS,
    BalancedBCELoss,
    PixelMarginLoss,
    build_pixel_loss,
    check_finite,
    compactness,
    feature_margin_loss,
)


def _direct_pixel_loss(score, labels, lambdas, faithful=False):
    """METHOD.md §4 written out pixel by pixel."""
    pairs = [(float(s), int(y)) for s, y in zip(score.flatten(), labels.flatten()) if int(y) != 2]
    terms = []
    for threshold, lam in zip(THRESHOLDS, lambdas):
        total = 0.0
        for s, y in pairs:
            positive = y == 1
            weight = 1.0 if positive else 0.5
            if (positive and s <= threshold) or (not positive and s >= threshold):
                weight = -math.log(threshold)
            if not positive:
                weight *= 0.2 * lam
            bce = -math.log(s) if positive else -math.log(1 - s)
            total += weight * bce
        terms.append(total / len(pairs))
    if faithful:
        combined = 0.0
        for term in terms:
            combined = (combined + term) / 2
    else:
        combined = sum(terms) / len(terms)
    positives = sum(1 for _, y in pairs if y == 1)
    prior = (positives + 1) / (len(pairs) + 2)
    return 5 * max(0.0, combined - prior * sum(FPR_ANCHORS) / len(FPR_ANCHORS))


@pytest.mark.parametrize("faithful", [False, True])
def test_pixel_loss_matches_the_direct_formula(faithful):
    generator = torch.Generator().manual_seed(1)
    score = torch.rand(1, 1, 6, 6, generator=generator) * 0.98 + 0.01
    labels = torch.randint(0, 4, (1, 6, 6), generator=generator)
    loss = PixelMarginLoss(faithful_combination=faithful)
    with torch.no_grad():
        loss.multipliers.copy_(torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0, 0.0]))
    expected = _direct_pixel_loss(score, labels, loss.multipliers.tolist(), faithful)
    assert float(loss(score, labels).detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_multipliers_ascend_and_are_clipped():
    loss = PixelMarginLoss(lambda_max=1.2)
    optimiser = torch.optim.Adam(loss.parameters(), lr=0.1)
    score = torch.full((1, 1, 4, 4), 0.9, requires_grad=True)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, 0] = 1
    for _ in range(5):
        optimiser.zero_grad()
        loss(score, labels).backward()
        optimiser.step()
        loss.clip_multipliers()
    # The loss grows with the multipliers on negatives, so ascent raises them, up to the clip.
    assert torch.allclose(loss.multipliers, torch.full((6,), 1.2))


def test_ignored_pixels_do_not_count_and_all_ignored_is_an_error():
    loss = PixelMarginLoss()
    score = torch.rand(1, 1, 4, 4)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, 0] = 1
    changed = score.clone()
    labels_with_ignore = labels.clone()
    labels_with_ignore[0, 3, 3] = 2
    changed[0, 0, 3, 3] = 0.999
    reference = loss(score, labels_with_ignore)
    assert float(loss(changed, labels_with_ignore).detach()) == pytest.approx(
        float(reference.detach())
    )
    with pytest.raises(TrainingError, match="no labelled pixel"):
        loss(score, torch.full((1, 4, 4), 2))


def test_compactness_and_feature_loss_follow_the_formula():
    features = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    centre = features.mean(0)
    distances = ((features - centre) ** 2).sum(1)
    radius = torch.sqrt(distances + 1e-8).mean()
    expected = radius**2 + 10 * torch.relu(distances - radius**2).mean()
    value, found_centre = compactness(features)
    assert torch.allclose(value, expected) and torch.allclose(found_centre, centre)

    feat = torch.rand(1, 3, 4, 4)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, :2] = 1
    labels[0, 3, 3] = 2
    labels[0, 2, :] = 3
    vectors = feat[0].reshape(3, -1).T
    flat = labels.reshape(-1)
    normal, normal_centre = compactness(vectors[(flat == 0) | (flat == 3)])
    anomaly, anomaly_centre = compactness(vectors[flat == 1])
    expected = 0.1 * (normal + anomaly - torch.linalg.vector_norm(normal_centre - anomaly_centre))
    assert torch.allclose(feature_margin_loss(feat, labels), expected)


def test_feature_loss_skips_an_empty_class():
    feat = torch.rand(2, 3, 4, 4)
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    value = feature_margin_loss(feat, labels)
    assert torch.isfinite(value)
    vectors = feat[0].reshape(3, -1).T
    only_normal = 0.1 * compactness(vectors)[0]
    assert float(feature_margin_loss(feat[:1], labels[:1])) == pytest.approx(float(only_normal))


def test_non_finite_values_raise_a_clear_error():
    with pytest.raises(TrainingError, match="not finite at step 7"):
        check_finite(torch.tensor([1.0, float("nan")]), "the training loss", 7)
    check_finite(torch.tensor([1.0]), "the training loss", 7)


def test_balanced_bce_weighs_the_two_classes_equally():
    score = torch.tensor([[[[0.9, 0.2], [0.4, 0.7]]]])
    labels = torch.tensor([[[1, 0], [0, 2]]])
    expected = 0.5 * -math.log(0.9) + 0.5 * (-math.log(0.8) - math.log(0.6)) / 2
    assert float(BalancedBCELoss()(score, labels)) == pytest.approx(expected, rel=1e-6)
    # The ignored pixel does not count; a sample without anomalies gets the normal term alone.
    changed = score.clone()
    changed[0, 0, 1, 1] = 0.01
    assert float(BalancedBCELoss()(changed, labels)) == pytest.approx(expected, rel=1e-6)
    no_anomaly = torch.tensor([[[0, 0], [0, 2]]])
    normal_only = -(math.log(0.1) + math.log(0.8) + math.log(0.6)) / 3
    assert float(BalancedBCELoss()(score, no_anomaly)) == pytest.approx(normal_only, rel=1e-6)
    with pytest.raises(TrainingError, match="no labelled pixel"):
        BalancedBCELoss()(score, torch.full((1, 2, 2), 2))


def test_balanced_bce_gradient_is_finite_at_saturated_scores():
    score = torch.tensor([[[[1.0, 0.0]]]], requires_grad=True)
    labels = torch.tensor([[[0, 1]]])
    value = BalancedBCELoss()(score, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(score.grad).all()


def test_pixel_loss_factory():
    assert isinstance(build_pixel_loss("margin"), PixelMarginLoss)
    assert build_pixel_loss("margin", faithful=True).lambda_max is None
    assert list(build_pixel_loss("balanced_bce").parameters()) == []
    with pytest.raises(TrainingError, match="unknown pixel_loss"):
        build_pixel_loss("hinge")
