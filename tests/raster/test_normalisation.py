"""Tests of the band_max input normalisation (the one definition used for inference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.raster_factory import write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.normalisation import BandScaling, band_max_divisors, normalise_array
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.statistics import BandStatistics, compute_band_statistics


def test_divisors_use_the_largest_absolute_value_and_keep_constant_bands_finite() -> None:
    divisors = band_max_divisors(
        np.array([-8.0, 1.0, 0.0, 0.0, -np.inf]), np.array([2.0, 4.0, 0.0, 0.0, 1.0])
    )
    np.testing.assert_array_equal(divisors, [8.0, 4.0, 1.0, 1.0, 1.0])


def test_scaling_from_statistics_fills_invalid_pixels_with_the_normalised_mean() -> None:
    statistics = BandStatistics(
        count=10,
        minimum=np.array([0.0, -2.0]),
        maximum=np.array([200.0, 1.0]),
        mean=np.array([50.0, -1.0]),
    )
    scaling = BandScaling.from_statistics(statistics)
    data = np.array([[[100.0, 0.0]], [[1.0, 0.0]]], dtype=np.float32)
    valid = np.array([[True, False]])
    normalised = scaling.apply(data, valid)
    assert normalised.dtype == np.float32
    np.testing.assert_allclose(normalised, [[[0.5, 0.25]], [[0.5, -0.5]]])
    with pytest.raises(InputError, match="no valid pixel"):
        BandScaling.from_statistics(BandStatistics(0, np.zeros(1), np.zeros(1), np.zeros(1)))


def test_whole_raster_scaling_equals_the_in_memory_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, size=(3, 37, 23)).astype(np.int16)
    image[2] = 0  # an all-zero band stays finite
    image[:, 3, 4] = -1
    path = write_raster(tmp_path / "in.tif", image, nodata=-1)
    with open_raster(path) as source:
        statistics = compute_band_statistics(source, memory_mb=0.01)
        block = source.read_window(source.full_window())
    scaling = BandScaling.from_statistics(statistics)
    streamed = scaling.apply(block.data, block.valid)
    in_memory = normalise_array(image.astype(np.float32), valid=block.valid)
    np.testing.assert_allclose(streamed, in_memory, rtol=1e-6, atol=1e-7)
    assert np.isfinite(streamed).all()
    assert np.abs(streamed[:, block.valid]).max() == pytest.approx(1.0)
    np.testing.assert_array_equal(streamed[2], 0.0)


def test_normalise_array_treats_non_finite_values_as_invalid() -> None:
    image = np.array([[[1.0, 2.0, np.nan, 4.0]]], dtype=np.float32)
    np.testing.assert_allclose(normalise_array(image), [[[0.25, 0.5, 7 / 12, 1.0]]])
    with pytest.raises(InputError, match="no valid pixel"):
        normalise_array(np.full((1, 2, 2), np.nan, dtype=np.float32))
