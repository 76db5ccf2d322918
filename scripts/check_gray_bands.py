"""Scores a model on gray images stored in several bands (simulated, never benchmark scenes).

The spatial validation samples of a training configuration (its held-out visible
backgrounds) are turned gray (the mean of their bands) and scored three ways: as one-band
images, and stored in three bands with independent Gaussian noise of 0.3 %, 1 % and 3 % of
the gray image's spread, as colour conversion and compression leave it. A model that
handles such rasters as the gray image they hold scores them alike (docs/DEFAULT_MODEL.md,
the one-image whitening rule).

Usage:
    .venv/bin/python scripts/check_gray_bands.py MODEL [--config configs/default_model.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.simulators import build_simulation
from uniadrs_engine.training.validation import build_validation_set, evaluate

#: Noise of the three stored bands, as a fraction of the gray image's standard deviation.
NOISE_LEVELS = (0.003, 0.01, 0.03)


def gray(sample, noise: float | None, rng: np.random.Generator):
    """The sample as a one-band gray image (``noise`` None) or three noisy copies of it."""
    image = sample.image.mean(axis=0, keepdims=True)
    if noise is not None:
        copies = rng.normal(0.0, noise * float(image.std()), (3, *image.shape[1:]))
        image = np.repeat(image, 3, axis=0) + copies
    return dataclasses.replace(sample, image=image.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--config", default="configs/default_model.yaml")
    parser.add_argument("--samples", type=int, default=96)
    args = parser.parse_args()
    model = load_model(args.model)
    config = TrainingConfig.from_yaml(args.config, overrides={"spectral_share": 0.0})
    samples = build_validation_set(build_simulation(config).validation, args.samples, config.seed)
    rng = np.random.default_rng(0)
    print("| input | spatial AUC |")
    print("|---|---|")
    for label, noise in (
        ("one band", None),
        *((f"3 bands, noise {n:.1%}", n) for n in NOISE_LEVELS),
    ):
        batch = [gray(sample, noise, rng) for sample in samples]
        figures = evaluate(
            model.network, batch, torch.device("cpu"), normalisation=model.card.normalisation
        )
        print(f"| {label} | {figures['auc']:.4f} |")


if __name__ == "__main__":
    main()
