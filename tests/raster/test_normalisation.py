"""Tests of the input normalisations (band_max and spectral whitening), the one definition
used for training samples and inference rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.raster_factory import write_raster
from uniadrs_engine.baselines.rx import global_rx
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.normalisation import (
    NORMALISATION_NAME,
    SOFT_WHITENING_NAME,
    WHITENING_NAME,
    BandScaling,
    SpectralWhitening,
    WindowNormalisation,
    band_max_divisors,
    check_normalisation,
    check_normalisation_scope,
    needs_covariance,
    normalise_array,
    normalise_input,
    scaling_from_statistics,
)
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.statistics import (
    BandStatistics,
    StatisticsAccumulator,
    compute_band_statistics,
)


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


# --------------------------------------------------------------------------- spectral whitening


def _correlated_image(seed: int = 0, bands: int = 5, rows: int = 40, cols: int = 50):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(bands, bands))
    pixels = mixing @ rng.normal(size=(bands, rows * cols)) + 100.0
    return pixels.reshape(bands, rows, cols).astype(np.float32)


def test_whitening_decorrelates_and_standardises_the_bands() -> None:
    image = _correlated_image()
    whitened = normalise_input(image, WHITENING_NAME)
    assert whitened.dtype == np.float32 and whitened.shape == image.shape
    covariance = np.cov(whitened.reshape(image.shape[0], -1))
    np.testing.assert_allclose(covariance, np.eye(image.shape[0]), atol=0.02)
    np.testing.assert_allclose(whitened.mean(axis=(1, 2)), 0.0, atol=1e-4)


def test_whitening_keeps_band_order_and_ignores_a_per_band_scale() -> None:
    """ZCA keeps output band k nearest to input band k, and a band-max-scaled training crop
    whitens to the same values as the raw raster."""
    image = _correlated_image(seed=1)
    image[0] += 3.0 * image[1]
    whitened = normalise_input(image, WHITENING_NAME)
    scaled = image * np.array([0.5, 10.0, 1e-3, 7.0, 1.0], dtype=np.float32)[:, None, None]
    np.testing.assert_allclose(normalise_input(scaled, WHITENING_NAME), whitened, atol=1e-3)
    for band in range(image.shape[0]):
        assert np.corrcoef(whitened[band].ravel(), image[band].ravel())[0, 1] > 0.3


def test_whitened_squared_norm_is_the_global_rx_score() -> None:
    """Without the eigenvalue floor, ``|z|^2`` is global RX's squared Mahalanobis distance."""
    image = _correlated_image(seed=2)
    image[:, 7, 9] += 5.0
    statistics = StatisticsAccumulator(image.shape[0], covariance=True)
    statistics.add(image.reshape(image.shape[0], -1))
    moments = statistics.result()
    whitening = SpectralWhitening.from_moments(moments.mean, moments.covariance, floor=0.0)
    norms = (whitening.apply(image).astype(np.float64) ** 2).sum(axis=0)
    np.testing.assert_allclose(norms, global_rx(image), rtol=1e-3, atol=1e-3)


def test_whitening_of_constant_repeated_and_invalid_bands_stays_finite() -> None:
    image = _correlated_image(seed=3, bands=3)
    image = np.concatenate([image, image[:1], np.full((1, *image.shape[1:]), 7.0, np.float32)])
    valid = np.ones(image.shape[1:], dtype=bool)
    valid[0, :4] = False
    image[:, 0, :4] = np.nan
    whitened = normalise_input(image, WHITENING_NAME, valid)
    assert np.isfinite(whitened).all()
    np.testing.assert_array_equal(whitened[:, 0, :4], 0.0)
    np.testing.assert_array_equal(whitened[4], 0.0)
    np.testing.assert_allclose(whitened[0], whitened[3], atol=1e-4)
    single = normalise_input(image[:1], WHITENING_NAME, valid)
    assert single[0][valid].std() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", [WHITENING_NAME, SOFT_WHITENING_NAME])
def test_a_gray_image_stored_in_several_bands_whitens_as_the_one_band_image(name: str) -> None:
    """Bands that hold one image up to small differences (noise at 0.3 % of the image's
    spread, one band inverted and offset, one band constant) are whitened as that image: the
    same values in every band as the one-band raster gets, not their differences raised
    towards unit variance."""
    rng = np.random.default_rng(6)
    gray = _correlated_image(seed=6, bands=1)
    spread = float(gray.std())
    bands = [gray[0] + rng.normal(0, 0.003 * spread, gray.shape[1:]) for _ in range(3)]
    bands[1] = 40.0 - 2.0 * bands[1]
    image = np.stack([*bands, np.full(gray.shape[1:], 5.0)]).astype(np.float32)
    whitened = normalise_input(image, name)
    one_band = normalise_input(gray, name)[0]
    for band in range(3):
        np.testing.assert_allclose(whitened[band], one_band, atol=0.02 * float(one_band.std()))
    np.testing.assert_array_equal(whitened[3], 0.0)
    # Their differences are not raised: without the rule they would hold most of the variance.
    assert np.corrcoef(whitened[0].ravel(), whitened[2].ravel())[0, 1] > 0.999


def test_ordinary_correlated_bands_are_whitened_band_by_band() -> None:
    """The one-image rule leaves bands alone that differ by more than 1 % of their variance."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(1, 40, 50))
    image = np.concatenate([base, base + rng.normal(0, 0.15, base.shape)]).astype(np.float32)
    assert np.corrcoef(image.reshape(2, -1))[0, 1] > 0.98
    whitened = normalise_input(image, WHITENING_NAME).reshape(2, -1)
    assert abs(np.corrcoef(whitened)[0, 1]) < 0.1


def test_soft_whitening_damps_weak_directions_and_equalises_strong_ones() -> None:
    """Two strong sources and a weak noise direction (correlation eigenvalues about 2.6, 0.35
    and 0.011): whitening raises the noise direction to (nearly) unit variance, soft whitening
    leaves it at about 0.011 / (0.011 + 0.1), while both bring the strong ones near 1."""
    rng = np.random.default_rng(5)
    sources = rng.normal(size=(2, 4000)) * np.array([[10.0], [6.0]])
    mixing = np.array([[1.0, 0.6], [0.8, -0.7], [0.9, 0.1]])
    noise = rng.normal(size=(3, 4000))
    image = (mixing @ sources + noise + 50.0).reshape(3, 40, 100).astype(np.float32)
    for name, weakest, middle in (
        (WHITENING_NAME, (0.85, 1.0), (0.95, 1.0)),
        (SOFT_WHITENING_NAME, (0.05, 0.15), (0.7, 0.85)),
    ):
        whitened = normalise_input(image, name).reshape(3, -1).astype(np.float64)
        eigenvalues = np.linalg.eigvalsh(np.cov(whitened))
        assert weakest[0] <= eigenvalues[0] <= weakest[1], (name, eigenvalues)
        assert middle[0] <= eigenvalues[1] <= middle[1], (name, eigenvalues)
        assert 0.95 <= eigenvalues[2] <= 1.0, (name, eigenvalues)
    assert needs_covariance(SOFT_WHITENING_NAME)


@pytest.mark.parametrize("name", [WHITENING_NAME, SOFT_WHITENING_NAME])
def test_whitening_from_streamed_raster_statistics_equals_the_in_memory_one(
    tmp_path: Path, name: str
) -> None:
    image = _correlated_image(seed=4, rows=300, cols=70)
    path = write_raster(tmp_path / "w.tif", image)
    with open_raster(path) as source:
        statistics = compute_band_statistics(source, memory_mb=0.05, covariance=True)
        whitening = scaling_from_statistics(name, statistics, "w.tif")
        block = source.read_window(source.full_window())
    assert isinstance(whitening, SpectralWhitening)
    np.testing.assert_allclose(
        whitening.apply(block.data, block.valid), normalise_input(image, name), atol=1e-4
    )
    with pytest.raises(ValueError, match="covariance"):
        SpectralWhitening.from_statistics(BandStatistics(10, *([np.zeros(2)] * 3)))
    with pytest.raises(InputError, match="fewer than two"):
        normalise_input(image[:, :1, :1], WHITENING_NAME)


def test_normalisation_names() -> None:
    assert needs_covariance(WHITENING_NAME) and not needs_covariance(NORMALISATION_NAME)
    assert isinstance(
        scaling_from_statistics(
            NORMALISATION_NAME, BandStatistics(3, np.zeros(1), np.ones(1), np.zeros(1))
        ),
        BandScaling,
    )
    with pytest.raises(ValueError, match="unknown input normalisation 'pca'"):
        check_normalisation("pca")


@pytest.mark.parametrize("name", [NORMALISATION_NAME, WHITENING_NAME])
def test_window_normalisation_uses_the_window_s_own_valid_pixels(name: str) -> None:
    rng = np.random.default_rng(3)
    window = rng.normal(5.0, 2.0, size=(3, 12, 10)).astype(np.float32)
    valid = np.ones((12, 10), dtype=bool)
    valid[:3] = False
    window[:, :3] = 1e6  # nodata values stay out of the statistics
    result = WindowNormalisation(name, 3).apply(window, valid)
    np.testing.assert_allclose(result, normalise_input(window, name, valid), atol=1e-6)
    assert np.abs(result[:, 3:]).max() < 100


def test_window_normalisation_of_a_window_without_statistics_is_zeros() -> None:
    window = np.ones((2, 4, 4), dtype=np.float32)
    valid = np.zeros((4, 4), dtype=bool)
    valid[0, 0] = True
    result = WindowNormalisation(WHITENING_NAME, 2).apply(window, valid)
    assert result.shape == (2, 4, 4) and not result.any()
    with pytest.raises(ValueError, match="expected 2 bands"):
        WindowNormalisation(WHITENING_NAME, 2).apply(np.ones((3, 4, 4), np.float32))


def test_normalisation_scopes() -> None:
    assert check_normalisation_scope("tile") == "tile"
    with pytest.raises(InputError, match="unknown normalisation scope 'crop'"):
        check_normalisation_scope("crop")


def test_whitening_raster_statistics_of_too_few_pixels_warns(caplog):
    image = np.random.default_rng(3).random((40, 6, 6))  # 36 pixels of 40 bands
    accumulator = StatisticsAccumulator(40, covariance=True)
    accumulator.add(image.reshape(40, -1))
    statistics = accumulator.result("the chip")
    with caplog.at_level("WARNING"):
        SpectralWhitening.from_statistics(statistics, "chip.tif")
    assert "chip.tif: the spectral whitening estimates the covariance of 40 bands" in caplog.text
    caplog.clear()
    accumulator = StatisticsAccumulator(3, covariance=True)
    accumulator.add(image[:3].reshape(3, -1))
    with caplog.at_level("WARNING"):
        SpectralWhitening.from_statistics(accumulator.result("the chip"), "chip.tif")
    assert caplog.text == ""
