"""Paired bootstrap of two models' per-sample AUCs, as ``scripts/compare_scales.py`` writes them.

``compare_scales.py --per-sample FILE`` records every sample's AUC per validation set and
candidate. Given the files of a reference model and of another model scored on the same
samples (the same sets, seeds and sample counts), this prints, for every set and candidate
the two share, the other model's mean AUC minus the reference's with a 95 % interval from
paired bootstrap resamples of the set's samples (one row each), and the same for the mean
over all the rows (each weighing the same; :func:`compare_models.bootstrap_differences`).
``--candidates A B`` pairs the reference's candidate ``A`` with the other's ``B`` instead of
each name with itself, e.g. two fusion powers in one file (give the file twice).
The interval measures how much of a difference the draw of the samples alone could make;
the experiments' rules in docs/DEFAULT_MODEL.md say whether they read it.

Usage:
    .venv/bin/python scripts/paired_bootstrap.py REFERENCE.json OTHER.json \\
        [--candidates "0.5,1" "0.5,1 p=4"] [--resamples 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from compare_models import bootstrap_differences


class Difference(NamedTuple):
    """The other model's mean AUC minus the reference's, with a 95 % bootstrap interval."""

    observed: float
    low: float
    high: float


def read_per_sample(path: str) -> Dict[str, Dict[str, np.ndarray]]:
    """Per validation set, per candidate, the per-sample AUCs of a ``--per-sample`` file."""
    record = json.loads(Path(path).read_text())
    return {
        config: {name: np.asarray(values, dtype=float) for name, values in candidates.items()}
        for config, candidates in record["sets"].items()
    }


def shared_pairs(
    reference: Dict[str, Dict[str, np.ndarray]],
    other: Dict[str, Dict[str, np.ndarray]],
    candidates: Optional[Tuple[str, str]] = None,
) -> List[Tuple[str, str, str]]:
    """``(set, reference candidate, other candidate)`` rows in both files, in the reference's order.

    Args:
        reference: The reference's per-sample AUCs (:func:`read_per_sample`).
        other: The other model's.
        candidates: The reference's candidate and the other's to pair, or None to pair every
            candidate name with itself.

    Raises:
        ValueError: If no row is shared, or a shared set holds different sample counts.
    """
    rows = []
    for config, names in reference.items():
        for name, values in names.items():
            if candidates is None:
                paired = name
            elif name == candidates[0]:
                paired = candidates[1]
            else:
                continue
            if paired not in other.get(config, {}):
                continue
            if other[config][paired].shape != values.shape:
                raise ValueError(
                    f"{config} ({name}): {values.size} samples against "
                    f"{other[config][paired].size}; score the same samples"
                )
            rows.append((config, name, paired))
    if not rows:
        raise ValueError("the two files share no validation set and candidate")
    return rows


def paired_difference(
    reference: List[np.ndarray], other: List[np.ndarray], resamples: int, seed: int = 0
) -> Difference:
    """Mean over the sets of the paired mean differences, with its 95 % bootstrap interval.

    Args:
        reference: Per set, the reference's per-sample AUCs.
        other: Per set, the other model's per-sample AUCs on the same samples.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.
    """
    observed = float(np.mean([np.nanmean(b - a) for a, b in zip(reference, other)]))
    draws = bootstrap_differences(
        {"reference": reference, "other": other}, "reference", resamples, seed
    )
    low, high = np.nanpercentile(draws["other"], [2.5, 97.5])
    return Difference(observed, float(low), float(high))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="the reference model's --per-sample file")
    parser.add_argument("other", help="the other model's --per-sample file")
    parser.add_argument(
        "--candidates",
        nargs=2,
        metavar=("REFERENCE_NAME", "OTHER_NAME"),
        help="pair these two candidates instead of each name with itself",
    )
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    args = parser.parse_args()
    reference, other = read_per_sample(args.reference), read_per_sample(args.other)
    pairs = shared_pairs(reference, other, tuple(args.candidates) if args.candidates else None)
    print(
        f"other minus reference ({args.other} minus {args.reference}), {args.resamples} resamples"
    )
    print(
        "| validation set | candidate | samples | reference | other | difference (95 % interval) |"
    )
    print("|---|---|---|---|---|---|")
    for config, name, paired in pairs:
        base, values = reference[config][name], other[config][paired]
        found = paired_difference([base], [values], args.resamples, args.seed)
        label = name if name == paired else f"{name} / {paired}"
        print(
            f"| {config} | {label} | {base.size} | {np.nanmean(base):.4f} | "
            f"{np.nanmean(values):.4f} | {found.observed:+.4f} "
            f"({found.low:+.4f} to {found.high:+.4f}) |"
        )
    if len(pairs) > 1:
        found = paired_difference(
            [reference[config][name] for config, name, _ in pairs],
            [other[config][paired] for config, _, paired in pairs],
            args.resamples,
            args.seed,
        )
        print(
            f"mean over the {len(pairs)} rows: {found.observed:+.4f} "
            f"({found.low:+.4f} to {found.high:+.4f})"
        )


if __name__ == "__main__":
    main()
