"""Compares model files on held-out simulated validation sets (never on benchmark scenes).

Each training configuration given defines a validation set (its validation backgrounds and
simulation settings, drawn with fixed seeds); every model is scored on every set, so the
candidates are compared on the same samples. ``CONFIG@KEY=VALUE`` (``@`` repeatable) changes
keys of one configuration, e.g. ``configs/default_model.yaml@spectral_share=0.5`` rebuilds the
validation samples of experiments 2-7 in docs/DEFAULT_MODEL.md. ``--rx`` adds global RX
(computed on each sample alone) as a reference detector.

Usage:
    .venv/bin/python scripts/compare_models.py --models A.safetensors B.safetensors \\
        --configs configs/default_model.yaml configs/experiments/hsi_realistic_spectra.yaml \\
        [--samples 96] [--rx]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from uniadrs_engine.baselines.rx import global_rx
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.config import TrainingConfig, parse_override
from uniadrs_engine.training.simulators import build_simulation
from uniadrs_engine.training.validation import build_validation_set, evaluate, summarise_scores

#: Name of the reference detector that ``--rx`` adds.
RX_NAME = "global RX (per sample)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--rx", action="store_true", help="also score global RX")
    args = parser.parse_args()
    models = {path: load_model(path) for path in args.models}
    device = torch.device("cpu")
    print("| validation set | model | AUC | spectral | spatial |")
    print("|---|---|---|---|---|")
    means = {path: [] for path in [*args.models, *([RX_NAME] if args.rx else [])]}
    for config_path in args.configs:
        path, *overrides = config_path.split("@")
        config = TrainingConfig.from_yaml(
            path, overrides=dict(parse_override(text) for text in overrides)
        )
        samples = build_validation_set(
            build_simulation(config).validation, args.samples, config.seed
        )
        results = {
            path: evaluate(model.network, samples, device, normalisation=model.card.normalisation)
            for path, model in models.items()
        }
        if args.rx:
            rx_maps = [np.nan_to_num(global_rx(sample.image), nan=0.0) for sample in samples]
            results[RX_NAME] = summarise_scores(samples, rx_maps)
        for path, figures in results.items():
            means[path].append(figures["auc"])
            print(
                f"| {config_path} | {path} | {figures['auc']:.4f} | "
                f"{figures.get('spectral_auc', float('nan')):.4f} | "
                f"{figures.get('spatial_auc', float('nan')):.4f} |"
            )
    for path, values in means.items():
        print(f"mean AUC over the validation sets: {sum(values) / len(values):.4f}  {path}")


if __name__ == "__main__":
    main()
