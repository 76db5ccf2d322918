"""scripts/halo_auc.py: AUC with the background ring around the anomalies left out."""

import doctest

import numpy as np

from uniadrs_engine.training.losses import LABEL_ANOMALY, LABEL_IGNORE


def labels_with_one_anomaly(size=21):
    labels = np.zeros((size, size), np.uint8)
    labels[9:12, 9:12] = LABEL_ANOMALY
    return labels


def test_a_blurred_map_gains_when_its_halo_is_left_out(halo_auc):
    labels = labels_with_one_anomaly()
    distance = np.maximum(*np.abs(np.mgrid[-10:11, -10:11]))  # chessboard distance from the centre
    blurred = 1.0 - distance / 12.0  # a blob over the anomaly, fading over 11 px
    blurred[labels == LABEL_ANOMALY] = 0.55  # the anomaly below the 4 px around it
    full, two, six = halo_auc.halo_aucs(blurred, labels, [2, 6])
    assert full < two < six == 1.0


def test_a_sharp_map_gains_nothing(halo_auc):
    labels = labels_with_one_anomaly()
    rng = np.random.default_rng(0)
    sharp = rng.random(labels.shape) * 0.9
    sharp[5, 5] = 0.95  # one false alarm far from the anomaly
    sharp[labels == LABEL_ANOMALY] = 0.92
    values = halo_auc.halo_aucs(sharp, labels, [1, 3])
    # Only the false alarm far away costs: leaving out the ring changes the AUC by no more
    # than the fewer background pixels do.
    assert values[0] < 1.0 and max(values) - min(values) < 0.001


def test_ignored_pixels_stay_out(halo_auc):
    labels = labels_with_one_anomaly()
    score = np.zeros(labels.shape)
    score[0, :] = 1.0  # false alarms, then marked as ignored
    score[labels == LABEL_ANOMALY] = 0.5
    labels[0, :] = LABEL_IGNORE
    assert halo_auc.halo_aucs(score, labels, [2]) == [1.0, 1.0]


def test_the_docstring_example_holds(halo_auc):
    assert doctest.testmod(halo_auc).failed == 0
