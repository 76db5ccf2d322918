"""Streaming band statistics against numpy on whole arrays."""

from __future__ import annotations

import numpy as np
import pytest

from uniadrs_engine.errors import CancelledError, EmptyBandsError, InputError
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.statistics import (
    StatisticsAccumulator,
    compute_band_statistics,
    describe_bands_left_out,
    without_empty_bands,
)


def _reference(pixels: np.ndarray):
    pixels = pixels.astype(np.float64)
    return pixels.min(1), pixels.max(1), pixels.mean(1), np.cov(pixels, ddof=1)


def test_statistics_match_numpy_over_many_strips_and_skip_nodata(make_raster):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 37, 23)).astype(np.float32)
    image[1] += 3 * image[0]
    image[:, 5, 7] = -1.0  # nodata pixel
    image[2, 9, 9] = -1.0  # nodata in one band only: the whole pixel is invalid
    valid = np.ones((37, 23), dtype=bool)
    valid[5, 7] = valid[9, 9] = False
    path = make_raster(image, nodata=-1.0)
    with open_raster(path) as source:
        # 0.002 MiB: strips of a few rows, so dozens of merges
        statistics = compute_band_statistics(source, memory_mb=0.002, covariance=True)
    minimum, maximum, mean, covariance = _reference(image[:, valid])
    assert statistics.count == valid.sum()
    np.testing.assert_allclose(statistics.minimum, minimum)
    np.testing.assert_allclose(statistics.maximum, maximum)
    np.testing.assert_allclose(statistics.mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(statistics.covariance, covariance, rtol=1e-10, atol=1e-12)


def test_large_offsets_keep_full_precision(make_raster):
    rng = np.random.default_rng(1)
    # 16-bit radiances: a big offset, a small spread
    image = (30000 + rng.integers(0, 4, size=(3, 64, 50))).astype(np.uint16)
    path = make_raster(image)
    with open_raster(path) as source:
        statistics = compute_band_statistics(source, memory_mb=0.01, covariance=True)
    _, _, mean, covariance = _reference(image.reshape(3, -1))
    np.testing.assert_allclose(statistics.mean, mean, rtol=1e-14)
    np.testing.assert_allclose(statistics.covariance, covariance, rtol=1e-9)


def test_band_selection_and_no_covariance_by_default(make_raster):
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    with open_raster(make_raster(image), bands=[2]) as source:
        statistics = compute_band_statistics(source)
    assert statistics.covariance is None
    assert statistics.mean == pytest.approx([image[1].mean()])
    assert statistics.minimum[0] == 12 and statistics.maximum[0] == 23


def test_mask_raster_and_mask_callable_restrict_the_pixels(make_raster):
    rng = np.random.default_rng(2)
    image = rng.normal(size=(2, 20, 30)).astype(np.float32)
    background = np.zeros((20, 30), dtype=np.uint8)
    background[:, :10] = 1
    mask_path = make_raster(background, "background.tif")
    with open_raster(make_raster(image)) as source:
        from_raster = compute_band_statistics(source, 0.001, covariance=True, mask=mask_path)
        from_callable = compute_band_statistics(
            source,
            0.001,
            covariance=True,
            mask=lambda window: (
                background[
                    window.yoff : window.yoff + window.ysize,
                    window.xoff : window.xoff + window.xsize,
                ]
                > 0
            ),
        )
    _, _, mean, covariance = _reference(image[:, background > 0])
    for statistics in (from_raster, from_callable):
        assert statistics.count == 200
        np.testing.assert_allclose(statistics.mean, mean, rtol=1e-12)
        np.testing.assert_allclose(statistics.covariance, covariance, rtol=1e-10)


def test_errors(make_raster):
    image = np.full((1, 4, 5), -1.0, dtype=np.float32)
    empty = make_raster(image, "empty.tif", nodata=-1.0)
    with open_raster(empty) as source, pytest.raises(InputError, match="no valid pixel"):
        compute_band_statistics(source)
    good = make_raster(np.ones((1, 4, 5), dtype=np.float32), "good.tif")
    with open_raster(good) as source:
        with pytest.raises(InputError, match="not on the raster's grid"):
            compute_band_statistics(source, mask=make_raster(np.ones((3, 3), np.uint8), "m.tif"))
        with pytest.raises(InputError, match="no valid pixel"):
            compute_band_statistics(
                source, mask=make_raster(np.zeros((4, 5), np.uint8), "zeros.tif")
            )
        with pytest.raises(CancelledError):
            compute_band_statistics(source, reporter=ProgressReporter(is_cancelled=lambda: True))


def test_bands_that_hold_no_value_are_named_and_the_others_kept(make_raster):
    rng = np.random.default_rng(2)
    image = rng.random((5, 30, 20)).astype(np.float32)
    image[1] = -1.0  # nodata everywhere
    image[3] = np.nan  # not finite everywhere
    image[0, 4, 4] = -1.0
    path = make_raster(image, nodata=-1.0)
    expected = pytest.raises(EmptyBandsError, match="bands 2, 4 hold no valid value")
    with open_raster(path, bands=[5, 4, 3, 2, 1]) as source, expected as caught:
        compute_band_statistics(source, memory_mb=0.001)
    assert caught.value.empty_bands == (4, 2)
    assert caught.value.kept_bands == (5, 3, 1)
    with open_raster(path, bands=list(caught.value.kept_bands)) as source:
        statistics = compute_band_statistics(source)
    assert statistics.count == 30 * 20 - 1


def test_no_band_is_named_when_every_band_is_empty_or_none_is(make_raster):
    image = np.full((2, 4, 5), -1.0, dtype=np.float32)
    empty = make_raster(image, "empty.tif", nodata=-1.0)
    with open_raster(empty) as source, pytest.raises(InputError, match="no valid pixel") as caught:
        compute_band_statistics(source)
    assert not isinstance(caught.value, EmptyBandsError)
    disjoint = np.ones((2, 4, 5), dtype=np.float32)
    disjoint[0, :2] = -1.0
    disjoint[1, 2:] = -1.0  # each band holds values, never both at one pixel
    path = make_raster(disjoint, "disjoint.tif", nodata=-1.0)
    with open_raster(path) as source, pytest.raises(InputError, match="no valid pixel") as caught:
        compute_band_statistics(source)
    assert not isinstance(caught.value, EmptyBandsError)


def test_without_empty_bands_runs_again_without_them(make_raster):
    image = np.random.default_rng(3).random((3, 6, 7)).astype(np.float32)
    image[2] = -1.0
    path = make_raster(image, nodata=-1.0)
    calls = []

    def run(bands, left_out):
        calls.append((bands, left_out))
        with open_raster(path, bands=bands) as source:
            return compute_band_statistics(source).count

    assert without_empty_bands(run) == 42
    assert calls == [(None, ()), ([1, 2], (3,))]
    calls.clear()
    assert without_empty_bands(run, [2, 1]) == 42
    assert calls == [([2, 1], ())]
    assert describe_bands_left_out((3,)) == "band 3 left out: it holds no value"
    assert describe_bands_left_out(()) == ""


def test_accumulator_merges_batches_like_one_batch():
    rng = np.random.default_rng(3)
    pixels = rng.normal(size=(5, 1000)) * 100 + 1e6
    accumulator = StatisticsAccumulator(5, covariance=True)
    for start in range(0, 1000, 77):
        accumulator.add(pixels[:, start : start + 77])
    accumulator.add(pixels[:, :0])  # empty batches are harmless
    statistics = accumulator.result()
    np.testing.assert_allclose(statistics.covariance, np.cov(pixels), rtol=1e-9)
    single = StatisticsAccumulator(1, covariance=True)
    single.add(np.ones((1, 1)))
    with pytest.raises(InputError, match="single valid pixel"):
        single.result()
