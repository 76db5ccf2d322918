"""Which of a model's networks should a preset score with: unions of groups on validation sets.

A model's score is the mean of its networks' score maps, so every subset of the networks can
be scored from each network's own maps: each network scores every validation sample once,
and every candidate (a union of the given groups of networks, e.g. the pairs trained
together) is the mean of its networks' maps. The figures equal what ``compare_models.py``
prints for a file holding the candidate's networks (up to float rounding of the mean). Sets
are held-out simulated samples, as in ``compare_models.py``, never benchmark scenes.

Prints, per candidate, its AUC on every set and the mean over the sets, best first (the
reference always listed), and with ``--bootstrap N`` each candidate's difference from the
reference in that mean with a 95 % interval from N paired bootstrap resamples.

Usage:
    .venv/bin/python scripts/select_networks.py --model default --groups 1,2 3,4 5,6 7,8 \\
        --reference 1-8 --configs configs/experiments/validation_small_spectra.yaml@seed=S \\
        [--only 1-8 3-8] [--samples 96] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
import itertools
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from compare_models import bootstrap_differences, validation_samples

from uniadrs_engine.model.ensemble import network_count, select_networks
from uniadrs_engine.model.model_file import load_model
from uniadrs_engine.training.validation import sample_auc, score_samples

#: A candidate: 1-based network numbers, ascending.
Candidate = Tuple[int, ...]


def parse_networks(text: str) -> Candidate:
    """``"1-4,7"`` → ``(1, 2, 3, 4, 7)``: numbers and inclusive ranges, commas between.

    Example:
        >>> parse_networks("5-6,1,2")
        (1, 2, 5, 6)
    """
    numbers: List[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        numbers.extend(range(int(first), int(last or first) + 1))
    if not numbers or len(set(numbers)) != len(numbers) or min(numbers) < 1:
        raise ValueError(f"not a set of network numbers: {text!r}")
    return tuple(sorted(numbers))


def label(candidate: Candidate) -> str:
    """``(1, 2, 3, 5, 6)`` → ``"1-3,5-6"``."""
    runs: List[str] = []
    for _, group in itertools.groupby(enumerate(candidate), lambda item: item[1] - item[0]):
        values = [value for _, value in group]
        runs.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    return ",".join(runs)


def group_unions(groups: Sequence[Candidate]) -> List[Candidate]:
    """Every non-empty union of ``groups``, fewest groups first.

    Example:
        >>> [label(c) for c in group_unions([(1, 2), (3, 4)])]
        ['1-2', '3-4', '1-4']
    """
    unions = []
    for size in range(1, len(groups) + 1):
        for chosen in itertools.combinations(groups, size):
            unions.append(tuple(sorted(number for group in chosen for number in group)))
    return unions


def candidate_aucs(
    network_maps: Dict[int, List[np.ndarray]], labels: Sequence[np.ndarray], candidate: Candidate
) -> np.ndarray:
    """Per-sample AUCs of the mean of the candidate's networks' score maps."""
    return np.array(
        [
            sample_auc(
                np.mean([network_maps[number][index] for number in candidate], axis=0),
                sample_labels,
            )
            for index, sample_labels in enumerate(labels)
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model file, or 'default'")
    parser.add_argument("--groups", nargs="+", required=True, help="groups of networks, e.g. 1,2")
    parser.add_argument("--reference", required=True, help="the networks the preset names now")
    parser.add_argument("--only", nargs="+", default=None, help="these candidates, not unions")
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--bootstrap", type=int, default=0, help="paired resamples (0: none)")
    args = parser.parse_args()
    model = load_model(args.model)
    groups = [parse_networks(text) for text in args.groups]
    reference = parse_networks(args.reference)
    if args.only is not None:
        candidates = [parse_networks(text) for text in args.only]
    else:
        candidates = group_unions(groups)
    if reference not in candidates:
        candidates.insert(0, reference)
    count = network_count(model.network)
    needed = sorted({number for candidate in candidates for number in candidate})
    if needed[-1] > count:
        raise SystemExit(f"network {needed[-1]} does not exist: the model has {count}")
    device = torch.device("cpu")
    per_sample: Dict[Candidate, List[np.ndarray]] = {candidate: [] for candidate in candidates}
    for config_path in args.configs:
        samples = validation_samples(config_path, args.samples)
        network_maps = {
            number: score_samples(
                select_networks(model.network, [number]),
                samples,
                device,
                normalisation=model.card.normalisation,
            )
            for number in needed
        }
        labels = [sample.labels for sample in samples]
        for candidate in candidates:
            per_sample[candidate].append(candidate_aucs(network_maps, labels, candidate))
        print(f"scored {config_path}", flush=True)
    means = {
        candidate: [float(np.nanmean(values)) for values in sets]
        for candidate, sets in per_sample.items()
    }
    order = sorted(candidates, key=lambda candidate: -np.mean(means[candidate]))
    print("| networks | " + " | ".join(args.configs) + " | mean |")
    print("|---" * (len(args.configs) + 2) + "|")
    for candidate in order:
        marker = " (reference)" if candidate == reference else ""
        figures = " | ".join(f"{value:.4f}" for value in means[candidate])
        print(f"| {label(candidate)}{marker} | {figures} | {np.mean(means[candidate]):.4f} |")
    if args.bootstrap > 0:
        named = {label(candidate): per_sample[candidate] for candidate in [reference, *order]}
        differences = bootstrap_differences(named, label(reference), args.bootstrap)
        for candidate in order:
            if candidate == reference:
                continue
            observed = np.mean(means[candidate]) - np.mean(means[reference])
            low, high = np.nanpercentile(differences[label(candidate)], [2.5, 97.5])
            print(
                f"mean AUC minus {label(reference)}'s: {observed:+.4f} (95 % paired bootstrap "
                f"interval {low:+.4f} to {high:+.4f})  {label(candidate)}"
            )


if __name__ == "__main__":
    main()
