"""Validation on a fixed set of held-out simulated samples.

The set is built once from backgrounds kept out of training, with seeds independent of the
training samples, so every validation in a run (and after a resume) sees the same samples.
The AUC of a sample ranks anomaly pixels (label 1) against normal ones (labels 0 and 3);
ignored pixels (label 2) are left out. Figures are means of per-sample AUCs.

Example:
    >>> validation_seed(0, 3) != validation_seed(1, 3)
    True
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from uniadrs_engine.metrics.roc import pixel_auc
from uniadrs_engine.model.ensemble import ScoringNetwork, select_networks
from uniadrs_engine.raster.normalisation import NORMALISATION_NAME
from uniadrs_engine.training.batches import band_counts, batch_validity, collate
from uniadrs_engine.training.losses import LABEL_ANOMALY, LABEL_IGNORE

#: Offset that keeps validation seeds apart from the training steps' seeds.
VALIDATION_SEED_OFFSET = 1_000_003


def validation_seed(seed: int, index: int) -> List[int]:
    """Seed sequence of the ``index``-th validation sample of a run seeded ``seed``."""
    return [seed, VALIDATION_SEED_OFFSET, index]


def build_validation_set(simulator: Any, count: int, seed: int) -> List[Any]:
    """Draws ``count`` samples from ``simulator`` with fixed, run-independent seeds."""
    return [
        simulator.sample(np.random.default_rng(validation_seed(seed, index)))
        for index in range(count)
    ]


def sample_auc(score: np.ndarray, labels: np.ndarray) -> float:
    """AUC of one sample's score map against its labels."""
    valid = labels != LABEL_IGNORE
    return pixel_auc(score, labels == LABEL_ANOMALY, valid=valid)


@torch.inference_mode()
def score_samples(
    network: ScoringNetwork,
    samples: Sequence[Any],
    device: torch.device,
    batch_size: int = 4,
    normalisation: str = NORMALISATION_NAME,
) -> List[np.ndarray]:
    """Score maps (``float32 [H, W]``) of the samples, each sample scored whole.

    Args:
        network: The network (or ensemble) to score with.
        samples: The samples.
        device: Where to score.
        batch_size: Samples per forward pass.
        normalisation: The network's input normalisation (its model card's).
    """
    was_training = network.training
    network.eval()
    scores: List[np.ndarray] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        images, _ = collate(batch, network.config.in_channels, normalisation)
        valid = batch_validity(batch)
        output = network(
            images.to(device),
            band_counts=band_counts(batch),
            features=False,
            valid=None if valid is None else valid.to(device),
        )
        scores.extend(output.score[:, 0].float().cpu().numpy())
    network.train(was_training)
    return scores


def evaluate(
    network: ScoringNetwork,
    samples: Sequence[Any],
    device: torch.device,
    batch_size: int = 4,
    normalisation: str = NORMALISATION_NAME,
) -> Dict[str, float]:
    """Mean per-sample AUC overall and per kind (``spectral``, ``spatial``).

    Args:
        network: The network (or ensemble) to score with.
        samples: The validation samples.
        device: Where to score.
        batch_size: Samples per forward pass.
        normalisation: The network's input normalisation (its model card's).

    Returns:
        ``{"auc": ..., "spectral_auc": ..., "spatial_auc": ..., "samples": n}`` (a kind
        with no sample is left out).
    """
    return summarise_scores(
        samples, score_samples(network, samples, device, batch_size, normalisation)
    )


def evaluate_by_kind(
    network: ScoringNetwork,
    samples: Sequence[Any],
    device: torch.device,
    kind_networks: Mapping[str, Optional[Sequence[int]]],
    batch_size: int = 4,
    normalisation: str = NORMALISATION_NAME,
) -> Dict[str, float]:
    """As :func:`evaluate`, each kind of sample scored by some of the model's networks.

    Args:
        network: The model's network or ensemble.
        samples: The validation samples.
        device: Where to score.
        kind_networks: For each sample kind (``spectral``, ``spatial``), the 1-based
            networks that score its samples (as a preset names them); a kind it leaves out,
            or gives None, is scored by every network.
        batch_size: Samples per forward pass.
        normalisation: The network's input normalisation (its model card's).

    Returns:
        As :func:`evaluate`.
    """
    aucs = [0.0] * len(samples)
    for kind in dict.fromkeys(sample.kind for sample in samples):
        indices = [index for index, sample in enumerate(samples) if sample.kind == kind]
        chosen = select_networks(network, kind_networks.get(kind))
        group = [samples[index] for index in indices]
        scores = score_samples(chosen, group, device, batch_size, normalisation)
        for index, sample, score in zip(indices, group, scores):
            aucs[index] = sample_auc(score, sample.labels)
    return summarise_aucs(samples, aucs)


def summarise_scores(samples: Sequence[Any], scores: Sequence[np.ndarray]) -> Dict[str, float]:
    """Mean per-sample AUC overall and per kind, of any detector's score maps.

    Args:
        samples: The validation samples.
        scores: One score map per sample (``[H, W]``, higher = more anomalous).

    Returns:
        As :func:`evaluate`.
    """
    return summarise_aucs(
        samples, [sample_auc(score, sample.labels) for sample, score in zip(samples, scores)]
    )


def summarise_aucs(samples: Sequence[Any], aucs: Sequence[float]) -> Dict[str, float]:
    """Mean AUC overall and per kind, from each sample's AUC (:func:`sample_auc`).

    Args:
        samples: The validation samples (their ``kind``).
        aucs: One AUC per sample, in the same order.

    Returns:
        As :func:`evaluate`.
    """
    grouped: Dict[str, List[float]] = {"spectral": [], "spatial": []}
    for sample, auc in zip(samples, aucs):
        grouped.setdefault(sample.kind, []).append(float(auc))
    everything = [value for values in grouped.values() for value in values]
    result: Dict[str, float] = {"auc": float(np.mean(everything)), "samples": len(everything)}
    for kind, values in grouped.items():
        if values:
            result[f"{kind}_auc"] = float(np.mean(values))
    return result
