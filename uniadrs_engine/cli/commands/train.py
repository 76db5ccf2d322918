"""``uniadrs train CONFIG [--resume]``: train a model on simulated anomalies.

Example:
    $ uniadrs train configs/default_model.yaml            # a new run
    $ uniadrs train configs/default_model.yaml --resume   # go on after an interruption
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from uniadrs_engine.training.config import TrainingConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a UniADRS model on simulated anomalies",
        description=(
            "Train a model from a YAML configuration (backgrounds, model configuration, "
            "steps, schedule, seed...). Checkpoints are written periodically into the "
            "configuration's output_dir; --resume goes on from the last one."
        ),
    )
    parser.add_argument("config", help="training configuration (YAML)")
    parser.add_argument(
        "--resume", action="store_true", help="resume from the checkpoint in output_dir"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs the training and prints where the model is."""
    from uniadrs_engine.training.trainer import train_from_config

    config = TrainingConfig.from_yaml(args.config)
    with tqdm(total=config.steps, unit="step", file=sys.stderr, dynamic_ncols=True) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = round(fraction * config.steps)
            bar.set_postfix_str(message.split(" ", 2)[-1] if message else "")
            bar.refresh()

        result = train_from_config(config, resume=args.resume, progress=progress)
    figures = ", ".join(
        f"{key} {value:.3f}" for key, value in result.validation.items() if key.endswith("auc")
    )
    print(f"model: {result.model_path}")
    print(
        f"trained {result.steps} steps in {result.wall_seconds / 60:.1f} min; "
        f"validation (held-out simulated samples): {figures}"
    )
    return 0
