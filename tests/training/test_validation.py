from types import SimpleNamespace

import numpy as np
import pytest

from uniadrs_engine.training.losses import LABEL_ANOMALY, LABEL_IGNORE
from uniadrs_engine.training.validation import sample_auc, summarise_aucs, summarise_scores


def _sample(kind: str) -> SimpleNamespace:
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4] = LABEL_ANOMALY
    labels[6, 6] = LABEL_IGNORE
    return SimpleNamespace(kind=kind, labels=labels)


def test_summarise_scores_averages_per_sample_auc_by_kind():
    samples = [_sample("spectral"), _sample("spatial"), _sample("spatial")]
    perfect = (samples[0].labels == LABEL_ANOMALY).astype(float)
    inverted = 1.0 - perfect
    ignored_high = perfect.copy()
    ignored_high[6, 6] = 5.0  # an ignored pixel scoring highest changes nothing
    figures = summarise_scores(samples, [perfect, inverted, ignored_high])
    assert figures["spectral_auc"] == 1.0
    assert figures["spatial_auc"] == pytest.approx(0.5)
    assert figures["auc"] == pytest.approx(2 / 3)
    assert figures["samples"] == 3
    # The same figures from each sample's AUC, as scripts/compare_models.py computes them once.
    maps = [perfect, inverted, ignored_high]
    aucs = [sample_auc(score, sample.labels) for sample, score in zip(samples, maps)]
    assert aucs == [1.0, 0.0, 1.0]
    assert summarise_aucs(samples, aucs) == figures
