"""Runs the simulation over ../shared/backgrounds (opt-in: ``pytest -m benchmark``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.mixer import AnomalySimulator
from uniadrs_engine.simulation.sample import LABEL_VALUES, has_both_classes

SHARED_BACKGROUNDS = Path(__file__).resolve().parents[3] / "shared" / "backgrounds"
DEFAULT_EXCLUDE = ["cas-hokkaido-landslide", "bijie-landslide"]

pytestmark = [
    pytest.mark.benchmark,
    pytest.mark.skipif(not SHARED_BACKGROUNDS.is_dir(), reason="../shared/backgrounds is absent"),
]


@pytest.fixture(scope="module")
def pool():
    return BackgroundPool.from_paths([SHARED_BACKGROUNDS], exclude=DEFAULT_EXCLUDE)


def test_shared_pool_is_read_as_described_by_its_manifest(pool):
    assert len(pool.hyperspectral) == 8
    assert not any("landslide" in item.name for item in pool.files)
    for item in pool.hyperspectral:
        if "enmap" in item.name:
            assert item.band_count == 224 and item.channels == 218
            assert not set(range(129, 135)) & set(item.bands)  # bands 130-135 (1-based)
    assert sum(item.objects_path is not None for item in pool.visible) > 0


def test_samples_are_valid_and_fast(pool):
    simulator = AnomalySimulator.from_pool(pool, 128, seed=0)
    rng = np.random.default_rng(0)
    simulator.sample(rng)
    start = time.process_time()  # CPU time: the machine is shared, wall time is noisy
    samples = [simulator.sample(rng) for _ in range(100)]
    seconds_per_sample = (time.process_time() - start) / len(samples)
    for sample in samples:
        assert set(np.unique(sample.labels)) <= set(LABEL_VALUES)
        assert has_both_classes(sample.labels) and np.isfinite(sample.image).all()
        assert sample.image.max() <= 1.0 + 1e-6
    assert {sample.kind for sample in samples} == {"spectral", "spatial"}
    assert seconds_per_sample < 0.05
