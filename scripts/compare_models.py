"""Compares model files on held-out simulated validation sets (never on benchmark scenes).

Each training configuration given defines a validation set (its validation backgrounds and
simulation settings, drawn with fixed seeds); every model is scored on every set, so the
candidates are compared on the same samples. ``CONFIG@KEY=VALUE`` (``@`` repeatable) changes
keys of one configuration, e.g. ``configs/default_model.yaml@spectral_share=0.5`` rebuilds the
validation samples of experiments 2-7 in docs/DEFAULT_MODEL.md. ``--rx`` adds global RX
(computed on each sample alone) as a reference detector. ``--rx-weight W [W...]`` adds, for
every model and weight, the model fused with global RX at weight ``W`` (averaged ranks, as
``uniadrs detect --rx-weight`` fuses them) on the samples the hyperspectral preset would score
(5 bands or more); other samples keep the model's own scores. ``--bootstrap N`` adds, for every
model (and fused model) after the first model, its difference from the first in the mean AUC
over the sets with a 95 % interval from N paired bootstrap resamples of each set's samples
(the same resample for every model), a measure of how much of a difference the sample draw
alone could make.

Usage:
    .venv/bin/python scripts/compare_models.py --models A.safetensors B.safetensors \\
        --configs configs/default_model.yaml configs/experiments/hsi_realistic_spectra.yaml \\
        [--samples 96] [--rx] [--rx-weight 0.2 0.5] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Sequence

import numpy as np
import torch

from uniadrs_engine.baselines.rx import global_rx
from uniadrs_engine.inference.fusion import check_rx_weight, fuse_score_arrays, fusion_weights
from uniadrs_engine.inference.presets import HYPERSPECTRAL_MIN_BANDS
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.config import TrainingConfig, parse_override
from uniadrs_engine.training.simulators import build_simulation
from uniadrs_engine.training.validation import (
    build_validation_set,
    sample_auc,
    score_samples,
    summarise_aucs,
    summarise_scores,
)

#: Name of the reference detector that ``--rx`` adds.
RX_NAME = "global RX (per sample)"


def validation_samples(spec: str, count: int) -> List:
    """The ``count`` validation samples of ``CONFIG[@KEY=VALUE...]`` (fixed, run-independent seeds).

    Every experiment script builds its sets here, so ``CONFIG@seed=S`` names the same samples
    in all of them.
    """
    path, *overrides = spec.split("@")
    config = TrainingConfig.from_yaml(
        path, overrides=dict(parse_override(text) for text in overrides)
    )
    return build_validation_set(build_simulation(config).validation, count, config.seed)


def fused_with_rx(
    samples: Sequence,
    model_maps: Sequence[np.ndarray],
    rx_maps: Sequence[np.ndarray],
    weight: float,
) -> List[np.ndarray]:
    """Each sample of 5 bands or more: the model's and RX's ranks fused at ``weight``."""
    fused = []
    for sample, model_map, rx_map in zip(samples, model_maps, rx_maps):
        if sample.image.shape[0] < HYPERSPECTRAL_MIN_BANDS:
            fused.append(model_map)
            continue
        fused.append(
            fuse_score_arrays(
                [model_map, rx_map],
                sample.valid,
                weights=fusion_weights(1, weight),
                unbounded=[False, True],
            )
        )
    return fused


def bootstrap_differences(
    per_sample: Dict[str, List[np.ndarray]], reference: str, resamples: int, seed: int = 0
) -> Dict[str, np.ndarray]:
    """Paired bootstrap of each model's mean-over-sets AUC minus the reference's.

    Args:
        per_sample: Per model, one array of per-sample AUCs per validation set (same samples
            in the same order for every model).
        reference: The model the others are compared with.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        Per other model, ``resamples`` differences of the mean over the sets.
    """
    rng = np.random.default_rng(seed)
    sizes = [len(values) for values in per_sample[reference]]
    picks = [rng.integers(0, size, size=(resamples, size)) for size in sizes]
    result = {}
    for name, sets in per_sample.items():
        if name == reference:
            continue
        differences = [
            np.nanmean(values[pick] - base[pick], axis=1)
            for values, base, pick in zip(sets, per_sample[reference], picks)
        ]
        result[name] = np.mean(differences, axis=0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--rx", action="store_true", help="also score global RX")
    parser.add_argument(
        "--rx-weight",
        type=float,
        nargs="+",
        default=[],
        help="also score each model fused with RX at each of these weights",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=0, help="paired bootstrap resamples (0: none)"
    )
    args = parser.parse_args()
    weights = [check_rx_weight(weight) for weight in args.rx_weight]
    models = {path: load_model(path) for path in args.models}
    device = torch.device("cpu")
    print("| validation set | model | AUC | spectral | spatial |")
    print("|---|---|---|---|---|")
    means: Dict[str, Dict[str, List[float]]] = {}
    per_sample: Dict[str, List[np.ndarray]] = {}
    for config_path in args.configs:
        samples = validation_samples(config_path, args.samples)
        rx_maps = None
        if args.rx or weights:
            rx_maps = [
                np.nan_to_num(global_rx(sample.image, valid=sample.valid), nan=0.0)
                for sample in samples
            ]
        results = {}
        for name, model in models.items():
            maps = score_samples(
                model.network, samples, device, normalisation=model.card.normalisation
            )
            aucs = [sample_auc(score, sample.labels) for sample, score in zip(samples, maps)]
            results[name] = summarise_aucs(samples, aucs)
            per_sample.setdefault(name, []).append(np.array(aucs))
            for weight in weights:
                assert rx_maps is not None
                fused = fused_with_rx(samples, maps, rx_maps, weight)
                fused_name = f"{name} + global RX (weight {weight:g})"
                fused_aucs = [sample_auc(score, s.labels) for s, score in zip(samples, fused)]
                results[fused_name] = summarise_aucs(samples, fused_aucs)
                per_sample.setdefault(fused_name, []).append(np.array(fused_aucs))
        if args.rx:
            assert rx_maps is not None
            results[RX_NAME] = summarise_scores(samples, rx_maps)
        for name, figures in results.items():
            kept = means.setdefault(name, {"auc": [], "spectral_auc": []})
            kept["auc"].append(figures["auc"])
            kept["spectral_auc"].append(figures.get("spectral_auc", float("nan")))
            print(
                f"| {config_path} | {name} | {figures['auc']:.4f} | "
                f"{figures.get('spectral_auc', float('nan')):.4f} | "
                f"{figures.get('spatial_auc', float('nan')):.4f} |"
            )
    for name, values in means.items():
        print(
            f"mean AUC over the validation sets: {np.mean(values['auc']):.4f}, "
            f"spectral {np.mean(values['spectral_auc']):.4f}  {name}"
        )
    if args.bootstrap > 0 and len(per_sample) > 1:
        reference = next(iter(per_sample))
        differences = bootstrap_differences(per_sample, reference, args.bootstrap)
        for name, values in differences.items():
            observed = np.mean(
                [np.nanmean(a - b) for a, b in zip(per_sample[name], per_sample[reference])]
            )
            low, high = np.nanpercentile(values, [2.5, 97.5])
            print(
                f"mean AUC over the sets minus {reference}'s: {observed:+.4f} "
                f"(95 % paired bootstrap interval {low:+.4f} to {high:+.4f}, "
                f"{args.bootstrap} resamples)  {name}"
            )


if __name__ == "__main__":
    main()
