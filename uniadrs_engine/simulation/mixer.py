"""The anomaly simulator the trainer draws from: spectral or spatial samples at a given share.

Determinism: every random choice comes from the ``numpy.random.Generator`` passed to
:meth:`AnomalySimulator.sample`, so saving ``rng.bit_generator.state`` with a checkpoint and
restoring it reproduces the following samples exactly. Build the object bank from its own
seeded generator (as :meth:`AnomalySimulator.from_pool` does), not from the sample stream.

Example:
    >>> pool = BackgroundPool.from_paths(["backgrounds"], exclude=["*landslide*"])  # doctest: +SKIP
    >>> simulator = AnomalySimulator.from_pool(pool, size=128, seed=0)  # doctest: +SKIP
    >>> rng = np.random.default_rng(1)  # doctest: +SKIP
    >>> batch = [simulator.sample(rng) for _ in range(4)]  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from uniadrs_engine.errors import InputError
from uniadrs_engine.orientations import ORIENTATION_COUNTS, orient
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.object_bank import ObjectBank
from uniadrs_engine.simulation.sample import SimulatedSample
from uniadrs_engine.simulation.spatial import SpatialSimulator
from uniadrs_engine.simulation.spectral import SpectralSimulator, check_probability

LOGGER = logging.getLogger(__name__)


def check_spectral_share(spectral_share: float) -> None:
    """Raises :class:`InputError` unless the share of spectral samples lies in ``[0, 1]``."""
    check_probability("spectral_share", spectral_share)


def simulator_option_names(simulator: type) -> Tuple[str, ...]:
    """The options of a simulator class: the keyword-only parameters of its constructor.

    Example:
        >>> simulator_option_names(SpatialSimulator)[:3]
        ('normal_count', 'normal_area', 'anomaly_count')
    """
    parameters = inspect.signature(simulator.__init__).parameters.values()
    return tuple(item.name for item in parameters if item.kind is item.KEYWORD_ONLY)


def check_option_names(label: str, simulator: type, options: Mapping[str, Any]) -> None:
    """Refuses option names the simulator class does not take (a misspelt one, say).

    Called whether or not the simulator is built, so that a misspelt option of a modality
    the backgrounds lack is not silently ignored.

    Args:
        label: What the options are called (``spectral_options``, ``spatial_options``).
        simulator: :class:`SpectralSimulator` or :class:`SpatialSimulator`.
        options: The options given.

    Raises:
        InputError: Naming the unknown options and the known ones.

    Example:
        >>> check_option_names("spatial_options", SpatialSimulator, {"colour": 1})
        Traceback (most recent call last):
        ...
        uniadrs_engine.errors.InputError: invalid spatial_options: unknown option(s) ['colour']; ...
    """
    known = simulator_option_names(simulator)
    unknown = sorted((name for name in options if name not in known), key=str)
    if unknown:
        raise InputError(
            f"invalid {label}: unknown option(s) {unknown}; the options are {', '.join(known)}"
        )


class AnomalySimulator:
    """Draws a spectral sample with probability ``spectral_share``, else a spatial one.

    Optionally each sample is turned into one of its first ``orientations`` orientations.
    """

    def __init__(
        self,
        spectral: Optional[SpectralSimulator],
        spatial: Optional[SpatialSimulator],
        spectral_share: float = 0.5,
        orientations: int = 1,
    ) -> None:
        """Combines the two simulators.

        Args:
            spectral: Spectral simulator, or None when there is no hyperspectral background
                (every sample is then spatial).
            spatial: Spatial simulator, or None (every sample is then spectral).
            spectral_share: Probability of a spectral sample, in ``[0, 1]``.
            orientations: 1 (samples as simulated), or 2, 4 or 8: each sample is turned
                into one of the first ``orientations`` orientations of
                :mod:`uniadrs_engine.orientations`, drawn from the sample's generator after
                the sample (so with 1 the samples are those of a simulator without it).

        Raises:
            InputError: Both simulators are None, the share is outside ``[0, 1]``, or the
                number of orientations is not 1, 2, 4 or 8.
        """
        if spectral is None and spatial is None:
            raise InputError("the anomaly simulation needs a spectral or a spatial simulator")
        check_spectral_share(spectral_share)
        if isinstance(orientations, bool) or orientations not in ORIENTATION_COUNTS:
            raise InputError(
                f"orientations must be one of {', '.join(map(str, ORIENTATION_COUNTS))}, "
                f"not {orientations!r}"
            )
        self.spectral = spectral
        self.spatial = spatial
        self.spectral_share = spectral_share
        self.orientations = orientations

    @property
    def effective_spectral_share(self) -> float:
        """The share of spectral samples once missing simulators are accounted for."""
        if self.spectral is None:
            return 0.0
        if self.spatial is None:
            return 1.0
        return self.spectral_share

    @classmethod
    def from_pool(
        cls,
        pool: BackgroundPool,
        size: int,
        seed: int = 0,
        spectral_share: float = 0.5,
        out_channels: Optional[int] = 270,
        spectral_options: Optional[Mapping[str, Any]] = None,
        spatial_options: Optional[Mapping[str, Any]] = None,
    ) -> AnomalySimulator:
        """Builds the object bank and both simulators from a pool.

        A missing modality is logged and its simulator left out.

        Args:
            pool: Backgrounds.
            size: Side of the samples (a multiple of 8).
            seed: Seed of the generator that chooses the object bank's cut-outs.
            spectral_share: Probability of a spectral sample.
            out_channels: Bands of spectral samples (see :class:`SpectralSimulator`).
            spectral_options: Extra keyword arguments of :class:`SpectralSimulator`.
            spatial_options: Extra keyword arguments of :class:`SpatialSimulator`.

        Raises:
            InputError: An option name either simulator does not take (checked even for a
                simulator left out), a bad option value, or no background for the share.
        """
        check_spectral_share(spectral_share)  # before the modalities, which depend on it
        spectral_options = dict(spectral_options or {})
        spatial_options = dict(spatial_options or {})
        # Both sets, even that of a simulator the pool does not call for: a misspelt option
        # stops the run rather than being ignored.
        check_option_names("spectral_options", SpectralSimulator, spectral_options)
        check_option_names("spatial_options", SpatialSimulator, spatial_options)
        spectral = spatial = None
        if pool.hyperspectral and spectral_share > 0.0:
            spectral = SpectralSimulator(pool, size, out_channels=out_channels, **spectral_options)
        elif spectral_share > 0.0:
            LOGGER.warning("no hyperspectral background: every sample will be spatial")
        if pool.visible and spectral_share < 1.0:
            bank = ObjectBank.from_pool(pool, np.random.default_rng(seed))
            spatial = SpatialSimulator(pool, bank, size, **spatial_options)
        elif spectral_share < 1.0:
            LOGGER.warning("no visible background: every sample will be spectral")
        if spectral is None and spatial is None:
            raise InputError(
                f"spectral share {spectral_share} needs backgrounds of a modality the pool "
                f"lacks ({pool.describe()})"
            )
        return cls(spectral, spatial, spectral_share)

    def sample(self, rng: np.random.Generator) -> SimulatedSample:
        """Draws one sample; the result depends only on ``rng``'s state."""
        use_spectral = rng.random() < self.effective_spectral_share
        if use_spectral:
            assert self.spectral is not None
            sample = self.spectral.sample(rng)
        else:
            assert self.spatial is not None
            sample = self.spatial.sample(rng)
        if self.orientations == 1:
            return sample
        return oriented(sample, int(rng.integers(self.orientations)))

    def provenance(self) -> Dict[str, Any]:
        """A JSON-ready record of the data sources and the main settings."""
        pool = self.spectral.pool if self.spectral is not None else self.spatial.pool  # type: ignore[union-attr]
        record: Dict[str, Any] = {
            "spectral_share": self.effective_spectral_share,
            "backgrounds": pool.provenance(),
        }
        if self.orientations > 1:
            record["orientations"] = self.orientations
        if self.spatial is not None:
            record["object_bank"] = self.spatial.bank.provenance()
        if self.spectral is not None:
            record["spectrum_sources"] = dict(
                zip(self.spectral.source_names, map(float, self.spectral.source_weights))
            )
            record["out_channels"] = self.spectral.out_channels
        return record


def oriented(sample: SimulatedSample, orientation: int) -> SimulatedSample:
    """The sample with its image, labels and validity in another orientation (0-7)."""
    if orientation == 0:
        return sample

    def turn(array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(orient(array, orientation))

    return replace(
        sample,
        image=turn(sample.image),
        labels=turn(sample.labels),
        valid=None if sample.valid is None else turn(sample.valid),
    )
