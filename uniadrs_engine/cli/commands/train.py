"""``uniadrs train CONFIG [--resume]``: train a model on simulated anomalies.

Example:
    $ uniadrs train configs/default_model.yaml            # a new run
    $ uniadrs train configs/default_model.yaml --resume   # go on after an interruption
    $ uniadrs train configs/default_model.yaml --set seed=7 --set output_dir=runs/seed7
"""

from __future__ import annotations

import argparse

from uniadrs_engine.cli.arguments import (
    add_config_overrides,
    progress_bar,
    training_config_from_args,
)


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
    restart = parser.add_mutually_exclusive_group()
    restart.add_argument(
        "--resume", action="store_true", help="resume from the checkpoint in output_dir"
    )
    restart.add_argument(
        "--overwrite",
        action="store_true",
        help="start again over a run already in output_dir (refused otherwise)",
    )
    add_config_overrides(
        parser,
        "replace a configuration key (the value is YAML; paths are relative to the "
        "current folder); repeat it for several keys, and again with --resume",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs the training and prints where the model is."""
    from uniadrs_engine.training.trainer import train_from_config

    config = training_config_from_args(args.config, args.overrides)
    with progress_bar(steps=config.steps * config.members) as bar:

        def progress(fraction: float, message: str) -> None:
            bar(fraction, message.split(" ", 2)[-1] if message else "")

        result = train_from_config(
            config, resume=args.resume, progress=progress, overwrite=args.overwrite
        )
    figures = ", ".join(
        f"{key} {value:.3f}" for key, value in result.validation.items() if key.endswith("auc")
    )
    print(f"model: {result.model_path}")
    print(
        f"trained {result.steps} steps in {result.wall_seconds / 60:.1f} min; "
        f"validation (held-out simulated samples): {figures}"
    )
    return 0
