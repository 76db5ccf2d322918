"""Tests of rank fusion: the histogram CDF and streaming fusion of score rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata

from tests.raster_factory import write_raster
from uniadrs_engine.errors import CancelledError, InputError
from uniadrs_engine.inference.fusion import (
    ScoreHistogram,
    check_rx_weight,
    fuse_score_arrays,
    fuse_score_rasters,
    fusion_weights,
    temporary_raster_path,
    to_unit_interval,
)
from uniadrs_engine.progress import ProgressReporter
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.writer import SCORE_NODATA, ScoreRasterWriter


def test_cdf_gives_ranks_of_distinct_scores() -> None:
    scores = np.random.default_rng(0).random(5000).astype(np.float32)
    histogram = ScoreHistogram()
    histogram.add(scores)
    assert histogram.total == 5000
    cdf = histogram.cdf(scores)
    exact = (rankdata(scores) - 0.5) / scores.size
    assert np.abs(cdf - exact).max() < 2e-3
    order = np.argsort(scores)
    assert (np.diff(cdf[order]) >= 0).all()  # the order of scores is kept
    assert cdf.min() >= 0 and cdf.max() <= 1


def test_cdf_of_ties_and_out_of_range_values() -> None:
    histogram = ScoreHistogram(bins=4)
    histogram.add(np.array([0.0, 0.0, 1.0, 1.0, np.nan]))
    assert histogram.total == 4
    np.testing.assert_allclose(histogram.cdf(np.array([-1.0, 0.5, 2.0])), [0.0, 0.5, 1.0])
    fine = ScoreHistogram()
    crowded = np.array([1e-6, 2e-6, 3e-6, 0.5, 1 - 2e-6, 1 - 1e-6])
    fine.add(crowded)
    assert list(np.argsort(fine.cdf(crowded))) == list(range(6))
    with pytest.raises(ValueError):
        ScoreHistogram().cdf(np.zeros(2))


def test_fusion_averages_ranks_not_values() -> None:
    first = np.random.default_rng(1).random((100, 100)).astype(np.float32)
    second = 0.2 * first**2  # same order, different values
    fused = fuse_score_arrays([first, second])
    single = fuse_score_arrays([first])
    assert np.abs(fused - single).max() < 1e-3
    exact = (rankdata(first) - 0.5) / first.size
    assert np.abs(fused.ravel() - exact).max() < 1e-3
    averaged = fuse_score_arrays([first, 1.0 - first])  # opposite orders cancel out
    assert np.abs(averaged - 0.5).max() < 1e-3


def test_fuse_score_rasters_streams_and_keeps_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    maps = [rng.random((30, 20)).astype(np.float32) for _ in range(2)]
    valid = np.ones((30, 20), dtype=bool)
    valid[4, 5] = False
    paths, histograms = [], []
    for index, score_map in enumerate(maps):
        stored = np.where(valid, score_map, SCORE_NODATA).astype(np.float32)
        paths.append(write_raster(tmp_path / f"s{index}.tif", stored, nodata=SCORE_NODATA))
        histogram = ScoreHistogram()
        histogram.add(score_map[valid])
        histograms.append(histogram)
    observed = []
    with open_raster(paths[0]) as like, ScoreRasterWriter(tmp_path / "fused.tif", like) as writer:
        fuse_score_rasters(
            paths, histograms, writer, memory_mb=0.001, observer=lambda v, m: observed.append(m)
        )
    assert len(observed) > 1  # several strips
    with open_raster(tmp_path / "fused.tif") as source:
        block = source.read_window(source.full_window())
    np.testing.assert_array_equal(block.valid, valid)
    expected = fuse_score_arrays(maps, valid)
    np.testing.assert_allclose(block.data[0][valid], expected[valid], atol=1e-6)


def test_fusion_cancels(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "s.tif", np.full((4, 4), 0.5, dtype=np.float32))
    histogram = ScoreHistogram()
    histogram.add(np.full(16, 0.5))
    with open_raster(path) as like:
        writer = ScoreRasterWriter(tmp_path / "fused.tif", like)
        with pytest.raises(CancelledError):
            fuse_score_rasters(
                [path], [histogram], writer, reporter=ProgressReporter(is_cancelled=lambda: True)
            )
        writer.abort()
    assert not (tmp_path / "fused.tif").exists()


def test_temporary_raster_paths_are_hidden_and_unique(tmp_path: Path) -> None:
    first = temporary_raster_path(tmp_path / "out.tif", "scale0p5")
    second = temporary_raster_path(tmp_path / "out.tif", "scale0p5")
    assert first != second and first.parent == tmp_path and first.name.startswith(".out.")


def test_unbounded_scores_keep_their_order_over_a_wide_range() -> None:
    distances = np.array([0.0, 1e-6, 0.5, 3.0, 250.0, 1e5, 5e6, np.inf])
    squashed = to_unit_interval(distances)
    assert squashed[0] == 0.0 and squashed[-1] == 1.0
    assert (np.diff(squashed) > 0).all()
    assert to_unit_interval(np.array([-2.0]))[0] == 0.0
    histogram = ScoreHistogram(unbounded=True)
    values = np.random.default_rng(2).chisquare(200, size=4000)  # RX distances of 200 bands
    histogram.add(values)
    exact = (rankdata(values) - 0.5) / values.size
    assert np.abs(histogram.cdf(values) - exact).max() < 2e-3


def test_fusion_weights() -> None:
    assert fusion_weights(1) == [1.0]
    assert fusion_weights(2) == [0.5, 0.5]
    assert fusion_weights(1, 0.5) == [0.5, 0.5]
    np.testing.assert_allclose(fusion_weights(2, 0.2), [0.4, 0.4, 0.2])
    for weight in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(InputError, match="weight of global RX"):
            check_rx_weight(weight)
    with pytest.raises(ValueError):
        fusion_weights(0, 0.5)


def test_weighted_fusion_of_a_bounded_and_an_unbounded_map() -> None:
    rng = np.random.default_rng(3)
    network = rng.random((60, 60)).astype(np.float32)
    distances = rng.chisquare(4, size=(60, 60))
    rank_network = (rankdata(network).reshape(60, 60) - 0.5) / network.size
    rank_rx = (rankdata(distances).reshape(60, 60) - 0.5) / distances.size
    fused = fuse_score_arrays([network, distances], weights=[0.75, 0.25], unbounded=[False, True])
    assert np.abs(fused - (0.75 * rank_network + 0.25 * rank_rx)).max() < 2e-3
    with pytest.raises(ValueError, match="weights"):
        fuse_score_arrays([network, distances], weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="weights"):
        fuse_score_arrays([network, distances], weights=[1.0])


def test_a_fusion_power_moves_the_fused_rank_from_the_mean_towards_the_maximum() -> None:
    rng = np.random.default_rng(7)
    maps = [rng.random((20, 30), dtype=np.float32) for _ in range(2)]
    ranks = [fuse_score_arrays([values]) for values in maps]
    mean = fuse_score_arrays(maps)
    np.testing.assert_allclose(fuse_score_arrays(maps, power=1.0), mean)
    np.testing.assert_allclose(mean, (ranks[0] + ranks[1]) / 2, atol=1e-6)
    previous = mean
    for power in (2.0, 4.0, 16.0, 64.0):
        fused = fuse_score_arrays(maps, power=power)
        assert (fused >= previous - 1e-6).all()  # a power mean grows with its power
        previous = fused
    highest = np.maximum(ranks[0], ranks[1])
    assert (previous <= highest + 1e-6).all() and np.abs(previous - highest).max() < 0.02
    expected = np.sqrt((ranks[0] ** 2 + ranks[1] ** 2) / 2)
    np.testing.assert_allclose(fuse_score_arrays(maps, power=2.0), expected, atol=1e-5)


@pytest.mark.parametrize("power", [0.5, 0.0, -1.0, 65.0, float("nan")])
def test_a_fusion_power_out_of_range_is_refused(power: float) -> None:
    with pytest.raises(InputError, match="fusion power"):
        fuse_score_arrays([np.zeros((2, 2))], power=power)


def test_rasters_are_fused_with_the_same_power_as_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    maps = [rng.random((40, 50)).astype(np.float32) for _ in range(3)]
    valid = np.ones((40, 50), dtype=bool)
    valid[:4, :6] = False
    paths, histograms = [], []
    for index, score_map in enumerate(maps):
        stored = np.where(valid, score_map, SCORE_NODATA).astype(np.float32)
        paths.append(write_raster(tmp_path / f"s{index}.tif", stored, nodata=SCORE_NODATA))
        histograms.append(ScoreHistogram())
        histograms[-1].add(score_map[valid])
    with open_raster(paths[0]) as like, ScoreRasterWriter(tmp_path / "fused.tif", like) as writer:
        fuse_score_rasters(paths, histograms, writer, memory_mb=0.001, power=4.0)
    with open_raster(tmp_path / "fused.tif") as source:
        block = source.read_window(source.full_window())
    expected = fuse_score_arrays(maps, valid, power=4.0)
    assert np.abs(expected - fuse_score_arrays(maps, valid)).max() > 0.05
    np.testing.assert_allclose(block.data[0][valid], expected[valid], atol=1e-5)
