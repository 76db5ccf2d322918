"""Builds the training and validation simulators of a run from its configuration.

Validation backgrounds are removed from the training pool, so the validation set is drawn
from scenes the network never trains on. Each pool gets its own object bank, built from its
own object masks (and random polygons) with a seed derived from the run's seed.

Example:
    >>> held_out_patterns(["/data/a.tif"])
    ['/data/a.tif', '/data/a.tif/*']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import numpy as np

from uniadrs_engine.errors import InputError, TrainingError
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.mixer import AnomalySimulator, check_option_names
from uniadrs_engine.simulation.object_bank import ObjectBank
from uniadrs_engine.simulation.spatial import SpatialSimulator
from uniadrs_engine.simulation.spectral import SpectralSimulator
from uniadrs_engine.training.config import TrainingConfig

#: Seed offsets of the object banks (kept apart from step and validation seeds).
TRAINING_BANK_SEED = 7_000_001
VALIDATION_BANK_SEED = 7_000_002


@dataclass
class SimulationSetup:
    """The simulators of one run and the files behind them."""

    training: Any
    validation: Any
    training_files: List[Path]
    validation_files: List[Path]


def held_out_patterns(paths: Sequence[str]) -> List[str]:
    """Exclude patterns that remove the given files or folders from a pool."""
    patterns: List[str] = []
    for path in paths:
        absolute = Path(path).expanduser().resolve().as_posix()
        patterns += [absolute, f"{absolute}/*"]
    return patterns


def simulator_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Simulator keyword options from YAML, with lists (ranges) made tuples.

    Example:
        >>> simulator_options({"anomaly_area": [0.001, 0.01], "normal_count": 4})
        {'anomaly_area': (0.001, 0.01), 'normal_count': 4}
    """
    return {
        key: tuple(value) if isinstance(value, list) else value for key, value in options.items()
    }


def simulator_for(
    pool: BackgroundPool, config: TrainingConfig, bank_seed: int, orientations: int = 1
) -> Any:
    """An :class:`AnomalySimulator` over ``pool`` with the run's crop size and share.

    ``orientations``: random orientations of its samples (1 for none).

    Raises:
        TrainingError: An option name of ``spectral_options`` or ``spatial_options`` that
            its simulator does not take (checked even for a simulator the pool does not call
            for), a bad option value (both naming the options), or no background fits the
            share.
    """
    check_simulator_options(config)
    in_channels = config.model_config().in_channels
    share = config.spectral_share
    spectral = None
    spatial = None
    if pool.hyperspectral and share > 0.0:
        options = simulator_options(config.spectral_options)
        spectral = _built(
            "spectral_options",
            lambda: SpectralSimulator(
                pool, size=config.crop_size, out_channels=in_channels, **options
            ),
        )
    if pool.visible and share < 1.0:
        bank = ObjectBank.from_pool(pool, np.random.default_rng([config.seed, bank_seed]))
        options = simulator_options(config.spatial_options)
        spatial = _built(
            "spatial_options",
            lambda: SpatialSimulator(pool, bank, size=config.crop_size, **options),
        )
    if spectral is None and spatial is None:
        raise TrainingError(
            f"no background fits the simulation ({pool.describe()}, spectral share {share})"
        )
    if spectral is None:
        share = 0.0
    elif spatial is None:
        share = 1.0
    return AnomalySimulator(spectral, spatial, spectral_share=share, orientations=orientations)


def check_simulator_options(config: TrainingConfig) -> None:
    """Refuses option names that the spectral or the spatial simulator does not take.

    Both sets are checked, also that of a simulator the run's backgrounds or share leave
    out: a misspelt option stops the run at its start instead of being ignored.

    Raises:
        TrainingError: Naming the options and the unknown names.
    """
    for label, simulator, options in (
        ("spectral_options", SpectralSimulator, config.spectral_options),
        ("spatial_options", SpatialSimulator, config.spatial_options),
    ):
        try:
            check_option_names(label, simulator, options)
        except InputError as error:
            raise TrainingError(str(error)) from error


def _built(label: str, build: Callable[[], Any]) -> Any:
    """``build()``, whose errors over its options' values become one-line training errors.

    The simulators check their options (:class:`InputError`); a value they do not foresee
    that still fails (a ``TypeError``, ``ValueError`` or ``IndexError``) is reported the same
    way, naming the options, rather than as a traceback.
    """
    try:
        return build()
    except (InputError, TypeError, ValueError, IndexError) as error:
        raise TrainingError(f"invalid {label}: {error}") from error


def build_simulation(config: TrainingConfig) -> SimulationSetup:
    """Training simulator (backgrounds minus held-out ones) and validation simulator.

    Only the training simulator turns its samples (``config.orientations``): the validation
    set stays the one the same seed gives without it.
    """
    rule = config.nodata_rule()
    training_pool = BackgroundPool.from_paths(
        config.backgrounds,
        exclude=list(config.exclude) + held_out_patterns(config.validation_backgrounds),
        nodata=rule,
    )
    if config.validation_backgrounds:
        validation_pool = BackgroundPool.from_paths(
            config.validation_backgrounds, exclude=config.exclude, nodata=rule
        )
    else:
        validation_pool = training_pool
    return SimulationSetup(
        training=simulator_for(training_pool, config, TRAINING_BANK_SEED, config.orientations),
        validation=simulator_for(validation_pool, config, VALIDATION_BANK_SEED),
        training_files=[item.path for item in training_pool.files],
        validation_files=[item.path for item in validation_pool.files],
    )


def training_batch(simulator: Any, seed: int, step: int, batch_size: int) -> List[Any]:
    """The samples of training step ``step``: they depend only on ``seed`` and ``step``."""
    generator = np.random.default_rng([seed, step])
    return [simulator.sample(generator) for _ in range(batch_size)]
