"""``uniadrs train CONFIG [--resume]``: train a model on simulated anomalies.

Example:
    $ uniadrs train configs/default_model.yaml            # a new run
    $ uniadrs train configs/default_model.yaml --resume   # go on after an interruption
    $ uniadrs train configs/default_model.yaml --set seed=7 --set output_dir=runs/seed7
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, List

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
    """Runs the training and prints where the model is.

    A first Ctrl-C stops the run after the current step, with a checkpoint of that step; a
    second one stops it at once (the last periodic checkpoint is kept).
    """
    from uniadrs_engine.errors import CancelledError
    from uniadrs_engine.training.trainer import train_from_config

    config = training_config_from_args(args.config, args.overrides)
    with progress_bar(steps=config.steps * config.members) as bar, _stop_on_interrupt() as stop:

        def progress(fraction: float, message: str) -> None:
            bar(fraction, message.split(" ", 2)[-1] if message else "")

        try:
            result = train_from_config(
                config,
                resume=args.resume,
                progress=progress,
                is_cancelled=stop.is_set,
                overwrite=args.overwrite,
            )
        except CancelledError as error:
            again = ["uniadrs", "train", args.config, *_set_options(args), "--resume"]
            raise CancelledError(f"{error} ({shlex.join(again)})") from None
    figures = ", ".join(
        f"{key} {value:.3f}" for key, value in result.validation.items() if key.endswith("auc")
    )
    print(f"model: {result.model_path}")
    print(
        f"trained {result.steps} steps in {result.wall_seconds / 60:.1f} min; "
        f"validation ({'held-out' if config.validation_backgrounds else 'training'} "
        f"backgrounds, simulated anomalies): {figures}"
    )
    return 0


def _set_options(args: argparse.Namespace) -> List[str]:
    """The ``--set KEY=VALUE`` options of this run, to repeat on ``--resume``."""
    return [item for override in args.overrides for item in ("--set", override)]


@contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """An event that a first Ctrl-C sets (the run stops cleanly); a second one interrupts."""
    stop = threading.Event()

    def on_interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "\nuniadrs: stopping after this step with a checkpoint (a second Ctrl-C or stop "
            "signal: at once)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
