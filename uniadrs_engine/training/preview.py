"""Writes the samples a training configuration simulates, for a person to look at.

``uniadrs simulate --config CONFIG OUT_DIR`` writes the first samples the run would train on
(step 0's batch, then step 1's, ...: the samples of :func:`training_batch`, identical to the
run's), or with ``--validation`` its fixed validation samples (those the validation AUC is
measured on), in the folder layout of :mod:`uniadrs_engine.simulation.export`.

Example:
    >>> config = TrainingConfig.from_yaml("configs/default_model.yaml")  # doctest: +SKIP
    >>> simulate_config_to_dir(config, "preview", n=16, validation=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Union

import numpy as np

from uniadrs_engine.progress import CancelCheck, ProgressCallback, ProgressReporter
from uniadrs_engine.simulation.export import (
    check_outside_backgrounds,
    check_sample_count,
    write_samples_to_dir,
)
from uniadrs_engine.simulation.sample import SimulatedSample
from uniadrs_engine.training.config import TrainingConfig
from uniadrs_engine.training.simulators import build_simulation, training_batch
from uniadrs_engine.training.validation import validation_seed

LOGGER = logging.getLogger(__name__)


def simulate_config_to_dir(
    config: TrainingConfig,
    out_dir: Union[str, Path],
    n: int,
    validation: bool = False,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
) -> List[Path]:
    """Writes ``n`` of the configuration's training (or validation) samples to ``out_dir``.

    Args:
        config: The training configuration (its backgrounds, held-out backgrounds, seed,
            crop size, spectral share and simulator options).
        out_dir: Output folder (created if needed; files of the same names are replaced).
        n: Number of samples (at least 1); of validation samples, at most the
            configuration's ``validation_samples`` (those the validation AUC scores).
        validation: Write the validation samples instead of the training samples.
        progress: ``progress(fraction, message)``, or None.
        is_cancelled: Returns True to stop, or None.

    Returns:
        The files written (see :func:`~uniadrs_engine.simulation.export.simulate_to_dir`).

    Raises:
        TrainingError: The configuration's backgrounds or options do not work.
        InputError: ``n`` is below 1 or ``out_dir`` cannot be written.
        CancelledError: ``is_cancelled`` returned True (nothing is left behind).
    """
    check_sample_count(n)
    if validation and n > config.validation_samples:
        LOGGER.warning(
            "the validation set holds %d samples: writing those, not %d",
            config.validation_samples,
            n,
        )
        n = config.validation_samples
    check_outside_backgrounds(
        out_dir, [*config.backgrounds, *(config.validation_backgrounds or [])]
    )
    reporter = ProgressReporter(progress, is_cancelled)
    reporter.update(0.0, "reading backgrounds")
    setup = build_simulation(config)
    simulator = setup.validation if validation else setup.training
    draw: Callable[[int], SimulatedSample]
    if validation:

        def draw(index: int) -> SimulatedSample:
            return simulator.sample(np.random.default_rng(validation_seed(config.seed, index)))

    else:
        samples = _training_samples(simulator, config)

        def draw(index: int) -> SimulatedSample:
            return next(samples)

    settings = {
        "n": n,
        "samples": "validation" if validation else "training",
        "config": config.to_dict(),
        "simulator": simulator.provenance(),
    }
    return write_samples_to_dir(draw, n, out_dir, settings, reporter)


def _training_samples(simulator: object, config: TrainingConfig) -> Iterator[SimulatedSample]:
    """The run's training samples in order: step 0's batch, step 1's, ..."""
    step = 0
    while True:
        yield from training_batch(simulator, config.seed, step, config.batch_size)
        step += 1
