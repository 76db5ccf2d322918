"""The 3D-ROC family against hand-made examples and a numerical integration over tau."""

from __future__ import annotations

import math

import numpy as np
import pytest

from uniadrs_engine.errors import InputError
from uniadrs_engine.metrics.roc3d import Roc3dResult, roc3d


def test_hand_made_example():
    # normalised scores: background 0.0, 0.5; anomalies 1.0, 0.5 (range 0..4)
    scores = np.array([0.0, 2.0, 4.0, 2.0])
    mask = np.array([0, 0, 1, 1])
    result = roc3d(scores, mask)
    auc_df = (1 + 1 + 1 + 0.5) / 4
    auc_dt = (1.0 + 0.5) / 2  # integral of P_D(tau) = mean normalised anomaly score
    auc_ft = (0.0 + 0.5) / 2
    assert result.auc_df == pytest.approx(auc_df)
    assert result.auc_dt == pytest.approx(auc_dt)
    assert result.auc_ft == pytest.approx(auc_ft)
    assert result.td == pytest.approx(auc_df + auc_dt)
    assert result.bs == pytest.approx(auc_df - auc_ft)
    assert result.odp == pytest.approx(auc_dt + 1 - auc_ft)
    assert result.tdbs == pytest.approx(auc_dt - auc_ft)
    assert result.snpr == pytest.approx(auc_dt / auc_ft)


def test_tau_areas_match_numerical_integration_of_the_rates():
    rng = np.random.default_rng(3)
    scores = rng.gamma(2.0, size=(40, 50)) * 7 + 3
    mask = rng.random((40, 50)) < 0.1
    scores[mask] += 4
    result = roc3d(scores, mask)
    normalised = (scores - scores.min()) / (scores.max() - scores.min())
    taus = np.linspace(0.0, 1.0, 20001)
    detection = np.array([(normalised[mask] >= tau).mean() for tau in taus])
    false_alarm = np.array([(normalised[~mask] >= tau).mean() for tau in taus])
    assert result.auc_dt == pytest.approx(np.trapz(detection, taus), abs=1e-3)
    assert result.auc_ft == pytest.approx(np.trapz(false_alarm, taus), abs=1e-3)


def test_affine_rescaling_does_not_change_the_family():
    rng = np.random.default_rng(4)
    scores = rng.random((20, 20))
    mask = rng.random((20, 20)) < 0.2
    original = roc3d(scores, mask).as_dict()
    assert roc3d(scores * 50 - 7, mask).as_dict() == pytest.approx(original)


def test_snpr_edge_cases():
    assert math.isinf(Roc3dResult.from_areas(1.0, 0.5, 0.0).snpr)
    assert math.isnan(Roc3dResult.from_areas(0.5, 0.0, 0.0).snpr)
    constant = roc3d(np.ones(6), np.array([0, 1, 0, 0, 1, 0]))
    assert constant.auc_df == pytest.approx(0.5)
    assert constant.auc_dt == 0.0 and constant.auc_ft == 0.0


def test_invalid_pixels_are_left_out_and_one_class_is_rejected():
    scores = np.array([0.0, 1.0, 50.0])
    mask = np.array([0, 1, 0])
    result = roc3d(scores, mask, valid=np.array([True, True, False]))
    assert result.auc_dt == 1.0 and result.auc_ft == 0.0
    with pytest.raises(InputError):
        roc3d(scores, np.zeros(3))
