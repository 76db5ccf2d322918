"""Anomaly simulation: the training data of UniADRS (METHOD §6).

The network is trained only on simulated anomalies pasted into real backgrounds:

* :class:`BackgroundPool` (``backgrounds``): the background rasters, their usable bands and
  modality, read by windows;
* :class:`ObjectBank` (``object_bank``): cut-outs from ``*_objects`` masks and random polygons;
* :class:`SpectralSimulator` (``spectral``) and :class:`SpatialSimulator` (``spatial``), mixed
  by :class:`AnomalySimulator` (``mixer``), each returning a :class:`SimulatedSample`
  (``sample``);
* :func:`simulate_to_dir` (``export``): samples and a contact sheet on disk.

Example:
    >>> import numpy as np
    >>> pool = BackgroundPool.from_paths(["backgrounds"], exclude=["*landslide*"])  # doctest: +SKIP
    >>> simulator = AnomalySimulator.from_pool(pool, size=128, seed=0)  # doctest: +SKIP
    >>> sample = simulator.sample(np.random.default_rng(1))  # doctest: +SKIP
"""

from uniadrs_engine.simulation.backgrounds import BackgroundFile, BackgroundPool, BackgroundWindow
from uniadrs_engine.simulation.export import simulate_to_dir
from uniadrs_engine.simulation.geometry import WarpParameters
from uniadrs_engine.simulation.mixer import AnomalySimulator
from uniadrs_engine.simulation.object_bank import ObjectBank, ObjectCutout
from uniadrs_engine.simulation.sample import (
    ANOMALY,
    BACKGROUND,
    IGNORE,
    LARGE_NORMAL,
    SimulatedSample,
    repeat_channels,
)
from uniadrs_engine.simulation.spatial import SpatialSimulator
from uniadrs_engine.simulation.spectral import SpectralSimulator

__all__ = [
    "ANOMALY",
    "BACKGROUND",
    "IGNORE",
    "LARGE_NORMAL",
    "AnomalySimulator",
    "BackgroundFile",
    "BackgroundPool",
    "BackgroundWindow",
    "ObjectBank",
    "ObjectCutout",
    "SimulatedSample",
    "SpatialSimulator",
    "SpectralSimulator",
    "WarpParameters",
    "repeat_channels",
    "simulate_to_dir",
]
