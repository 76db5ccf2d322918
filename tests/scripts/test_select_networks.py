"""scripts/select_networks.py: a union of networks scores as the ensemble of those networks."""

import numpy as np
import pytest
import torch

from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.ensemble import MemberMean
from uniadrs_engine.model.ensemble import select_networks as choose_networks
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.simulation.sample import SimulatedSample
from uniadrs_engine.training.losses import LABEL_ANOMALY
from uniadrs_engine.training.validation import sample_auc, score_samples


def test_network_numbers_and_their_labels_round_trip(select_networks):
    assert select_networks.parse_networks("7,1-3") == (1, 2, 3, 7)
    assert select_networks.label((1, 2, 3, 7, 9, 10)) == "1-3,7,9-10"
    for text in ("", "0-2", "1,1", "3-2"):
        with pytest.raises(ValueError):
            select_networks.parse_networks(text)


def test_unions_cover_every_non_empty_combination_of_groups(select_networks):
    unions = select_networks.group_unions([(1, 2), (3, 4), (5, 6)])
    assert len(unions) == 7 and len(set(unions)) == 7
    assert unions[0] == (1, 2) and unions[-1] == (1, 2, 3, 4, 5, 6)


def test_a_candidates_aucs_are_those_of_the_ensemble_of_its_networks(select_networks):
    torch.manual_seed(0)
    model = MemberMean([UniADRS(get_config("lite8")) for _ in range(3)]).eval()
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(3):
        labels = np.zeros((32, 32), np.uint8)
        labels[10:14, 12:17] = LABEL_ANOMALY
        image = rng.random((6, 32, 32), dtype=np.float32)
        image[:, labels == LABEL_ANOMALY] += 0.5
        samples.append(SimulatedSample(image, labels, "spectral", "synthetic"))
    device = torch.device("cpu")
    maps = {n: score_samples(select_networks_of(model, n), samples, device) for n in (1, 2, 3)}
    labels = [sample.labels for sample in samples]
    got = select_networks.candidate_aucs(maps, labels, (1, 3))
    pair = select_networks_of(model, 1, 3)
    scored = score_samples(pair, samples, device)
    expected = [sample_auc(score, s.labels) for s, score in zip(samples, scored)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # A different union scores differently: the check above can fail.
    assert not np.allclose(select_networks.candidate_aucs(maps, labels, (2,)), expected)


def select_networks_of(model, *numbers):
    return choose_networks(model, list(numbers))
