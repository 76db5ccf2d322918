"""How much of a model's AUC on validation sets is lost next to the anomalies (the halo).

Every sample's AUC is computed again with the background pixels within ``d`` px of an
anomaly (chessboard distance) left out, for each ``d`` of ``--halos``, for the model and for
global RX (computed on each sample alone). A detector whose maps are blurred loses AUC in
that halo; a detector sharp to the pixel gains nothing when it is left out. Sets are held-out
simulated samples, as in ``compare_models.py``, never benchmark scenes.

Usage:
    .venv/bin/python scripts/halo_auc.py --model M --configs CONFIG@seed=S... \\
        [--samples 48] [--halos 2 4 8]
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

import numpy as np
import torch
from compare_models import validation_samples
from scipy.ndimage import binary_dilation

from uniadrs_engine.baselines.rx import global_rx
from uniadrs_engine.metrics.roc import pixel_auc
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.losses import LABEL_ANOMALY, LABEL_IGNORE
from uniadrs_engine.training.validation import score_samples

#: Neighbours of a pixel in the halo: the 8 around it (rings are squares, not diamonds).
SQUARE = np.ones((3, 3), dtype=bool)


def halo_aucs(score: np.ndarray, labels: np.ndarray, halos: Sequence[int]) -> List[float]:
    """The sample's AUC, then its AUC with each halo of background pixels left out.

    Args:
        score: ``[H, W]`` score map (higher = more anomalous).
        labels: ``[H, W]`` sample labels.
        halos: Widths in pixels of the background rings around the anomalies left out.

    Returns:
        ``1 + len(halos)`` AUCs (NaN where the sample has no anomaly or no background).

    Example:
        >>> labels = np.zeros((9, 9), np.uint8); labels[4, 4] = LABEL_ANOMALY
        >>> blurred = np.zeros((9, 9)); blurred[3:6, 3:6] = 1.0; blurred[4, 4] = 0.9
        >>> [round(value, 3) for value in halo_aucs(blurred, labels, [1])]
        [0.9, 1.0]
    """
    anomaly = labels == LABEL_ANOMALY
    valid = labels != LABEL_IGNORE
    result = [pixel_auc(score, anomaly, valid=valid)]
    for width in halos:
        ring = binary_dilation(anomaly, structure=SQUARE, iterations=width) & ~anomaly
        result.append(pixel_auc(score, anomaly, valid=valid & ~ring))
    return result


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model file, or 'default'")
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--halos", type=int, nargs="+", default=[2, 4, 8])
    args = parser.parse_args(argv)
    model = load_model(args.model)
    print(
        "| validation set | detector | AUC | "
        + " | ".join(f"{d} px left out" for d in args.halos)
        + " |"
    )
    print("|---" * (3 + len(args.halos)) + "|")
    for config_path in args.configs:
        samples = validation_samples(config_path, args.samples)
        maps = score_samples(
            model.network, samples, torch.device("cpu"), normalisation=model.card.normalisation
        )
        rows = {"model": [], "global RX (per sample)": []}
        for sample, score in zip(samples, maps):
            rx = np.nan_to_num(global_rx(sample.image, valid=sample.valid), nan=0.0)
            rows["model"].append(halo_aucs(score, sample.labels, args.halos))
            rows["global RX (per sample)"].append(halo_aucs(rx, sample.labels, args.halos))
        for name, values in rows.items():
            means = np.nanmean(np.array(values), axis=0)
            figures = " | ".join(f"{value:.4f}" for value in means)
            print(f"| {config_path} | {name} | {figures} |", flush=True)


if __name__ == "__main__":
    main()
