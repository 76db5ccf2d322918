from __future__ import annotations

import numpy as np
import pytest

from tests.raster_factory import anomaly_scene, write_raster
from tests.simulation.conftest import HSI_BANDS
from uniadrs_engine.errors import InputError
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.geometry import WarpParameters
from uniadrs_engine.simulation.sample import (
    ANOMALY,
    BACKGROUND,
    IGNORE,
    LABEL_VALUES,
    LARGE_NORMAL,
)
from uniadrs_engine.simulation.spectral import SpectralSimulator, resample_bands

NO_WARP = WarpParameters(max_rotation_degrees=0.0, scale_range=(1.0, 1.0), warp_strength=(0.0, 0.0))


@pytest.fixture(scope="module")
def pool(background_tree):
    return BackgroundPool.from_paths([background_tree / "hsi"])


def assert_same_sample(a, b):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.kind, a.source) == (b.kind, b.source)


def test_sample_shapes_types_and_labels(pool):
    simulator = SpectralSimulator(pool, size=32, out_channels=270)
    rng = np.random.default_rng(0)
    for _ in range(20):
        sample = simulator.sample(rng)
        assert sample.image.shape == (270, 32, 32) and sample.image.dtype == np.float32
        assert sample.labels.shape == (32, 32) and sample.labels.dtype == np.uint8
        assert set(np.unique(sample.labels)) <= set(LABEL_VALUES)
        assert sample.kind == "spectral" and sample.source.startswith("hsi/")
        assert sample.image.max() <= 1.0 and np.isfinite(sample.image).all()
        assert sample.band_indices is not None and len(sample.band_indices) == 270


def test_same_seed_same_samples_other_seed_other_samples(pool):
    simulator = SpectralSimulator(pool, size=32)
    first = [simulator.sample(np.random.default_rng(7)) for _ in range(2)]
    assert_same_sample(first[0], first[1])
    other = simulator.sample(np.random.default_rng(8))
    assert not np.array_equal(first[0].labels, other.labels)


def test_every_sample_has_an_anomaly_and_a_normal_pixel(pool):
    simulator = SpectralSimulator(pool, size=16, out_channels=8)
    for seed in range(60):
        labels = simulator.sample(np.random.default_rng(seed)).labels
        assert (labels == ANOMALY).any()
        assert ((labels == BACKGROUND) | (labels == LARGE_NORMAL)).any()


def test_dropped_bands_are_never_picked(pool):
    simulator = SpectralSimulator(pool, size=16, out_channels=500)
    rng = np.random.default_rng(0)
    picked = set()
    for _ in range(30):
        sample = simulator.sample(rng)
        if sample.source.endswith("b.tif"):
            picked |= set(sample.band_indices.tolist())
    assert picked and not picked & {3, 7}
    assert picked <= set(range(HSI_BANDS + 2))


def test_anomalies_and_normals_hold_permuted_spectra_of_the_same_pixel(tmp_path):
    # Without rotation or warp, on a patch covering the whole image, at its own size.
    image, _ = anomaly_scene(rows=64, cols=64, bands=12, seed=4)
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "h.tif", image)])
    simulator = SpectralSimulator(pool, size=64, out_channels=None, patch_size=64, warp=NO_WARP)
    original = image / image.max()
    for seed in range(5):
        sample = simulator.sample(np.random.default_rng(seed))
        assert sample.image.max() == pytest.approx(1.0)  # scaled by the patch maximum
        np.testing.assert_array_equal(sample.band_indices, np.arange(12))
        background = sample.labels == BACKGROUND
        np.testing.assert_allclose(sample.image[:, background], original[:, background], rtol=1e-6)
        for label in (ANOMALY, LARGE_NORMAL):
            changed = sample.labels == label
            np.testing.assert_allclose(
                np.sort(sample.image[:, changed], axis=0),
                np.sort(original[:, changed], axis=0),
                rtol=1e-6,
            )
        assert not np.allclose(
            sample.image[:, sample.labels == ANOMALY], original[:, sample.labels == ANOMALY]
        )


def test_clutter_moves_the_scenes_own_spectra_and_stays_background(tmp_path):
    image, _ = anomaly_scene(rows=64, cols=64, bands=12, seed=5)
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "h.tif", image)])
    options = dict(size=64, out_channels=None, patch_size=64, warp=NO_WARP)
    plain = SpectralSimulator(pool, **options)
    cluttered = SpectralSimulator(pool, clutter_count=(4, 6), **options)
    original = image / image.max()
    known = {tuple(spectrum) for spectrum in original.reshape(12, -1).T.round(6)}
    moved_pixels = 0
    for seed in range(5):
        sample = cluttered.sample(np.random.default_rng(seed))
        background = sample.labels == BACKGROUND
        moved = background & ~np.isclose(sample.image, original, rtol=1e-6).all(axis=0)
        moved_pixels += int(moved.sum())
        # Every moved background pixel holds a spectrum of the scene itself.
        for spectrum in sample.image[:, moved].T.round(6):
            assert tuple(spectrum) in known
        assert (sample.labels == ANOMALY).any()
        # Without clutter, every background pixel keeps its own spectrum.
        without = plain.sample(np.random.default_rng(seed))
        background = without.labels == BACKGROUND
        np.testing.assert_allclose(without.image[:, background], original[:, background], rtol=1e-6)
    assert moved_pixels > 0


def test_clutter_options_are_checked(pool):
    for wrong in ((3, 1), (-1, 2), (1, 2, 3), (1.5, 2), "many", None):
        with pytest.raises(InputError, match="clutter_count"):
            SpectralSimulator(pool, size=32, clutter_count=wrong)
    assert SpectralSimulator(pool, size=32, clutter_count=3).clutter_count == (3, 3)
    with pytest.raises(InputError, match="unknown spectrum source"):
        SpectralSimulator(pool, size=32, clutter_count=(1, 2), clutter_sources={"swap": 1.0})
    simulator = SpectralSimulator(pool, size=32, anomaly_area=(0.001, 0.002), clutter_count=(1, 2))
    assert simulator.clutter_area == (0.001, 0.002)


@pytest.mark.parametrize(
    "sources",
    [{"transplant": 1.0}, {"foreign": 1.0}, {"permute": 1, "foreign": 1, "transplant": 1}],
)
def test_other_spectrum_sources_and_mixing(pool, sources):
    simulator = SpectralSimulator(
        pool, size=16, out_channels=None, spectrum_sources=sources, abundance_range=(0.3, 0.8)
    )
    rng = np.random.default_rng(0)
    for _ in range(10):
        sample = simulator.sample(rng)
        assert (sample.labels == ANOMALY).any()
        assert np.isfinite(sample.image).all() and sample.image.max() <= 1.0 + 1e-6


def test_foreign_spectra_are_resampled_along_the_bands():
    block = np.linspace(0, 1, 5, dtype=np.float32)[:, None, None] * np.ones((5, 2, 3), np.float32)
    resampled = resample_bands(block, 9)
    assert resampled.shape == (9, 2, 3)
    np.testing.assert_allclose(resampled[:, 0, 0], np.linspace(0, 1, 9), atol=1e-6)


def test_options_are_checked(pool, background_tree):
    with pytest.raises(InputError, match="multiple of 8"):
        SpectralSimulator(pool, size=30)
    with pytest.raises(InputError, match="unknown spectrum source"):
        SpectralSimulator(pool, size=32, spectrum_sources={"swap": 1.0})
    with pytest.raises(InputError, match="abundance"):
        SpectralSimulator(pool, size=32, abundance_range=(0.5, 1.5))
    visible_only = BackgroundPool.from_paths([background_tree / "visible"])
    with pytest.raises(InputError, match="no hyperspectral"):
        SpectralSimulator(visible_only, size=32)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"abundance_range": 5}, r"abundance_range must be two numbers .*<= 1, not 5"),
        ({"abundance_range": (0.8, 0.2)}, "abundance_range"),
        ({"anomaly_area": (0.5, 0.1)}, "anomaly_area must be two numbers"),
        ({"normal_area": 0.1}, "normal_area must be two numbers"),
        ({"clutter_count": 2, "clutter_area": (0.1,)}, "clutter_area must be two numbers"),
        ({"normal_count": (5, 2)}, "normal_count must be a range of counts"),
        ({"normal_count": "abc"}, "normal_count must be a whole number or a range of two"),
        ({"anomaly_count": 0}, "at least one anomaly rectangle"),
        ({"anomaly_count": (0, 3)}, "anomaly_count must start from 1"),
        ({"clutter_count": True}, "clutter_count"),
        ({"patch_size": "abc"}, "patch_size must be a whole number >= 2, not 'abc'"),
        ({"patch_size": 1}, "patch_size"),
        ({"warp": "strong"}, "warp must be a mapping"),
        ({"warp": {"twist": 1}}, r"unknown warp option\(s\) \['twist'\]"),
        ({"warp": {"scale_range": (0, 1)}}, "warp scale_range must be two numbers"),
        ({"warp": {"warp_grid": 0}}, "warp warp_grid must be a whole number >= 1"),
        ({"warp": {"max_rotation_degrees": "a"}}, "warp max_rotation_degrees"),
        ({"spectrum_sources": ["permute"]}, "spectrum_sources must map spectrum sources"),
        ({"spectrum_sources": {"permute": "a"}}, "spectrum_sources: spectrum source weights"),
        ({"clutter_sources": {"transplant": 0}}, "clutter_sources: spectrum source weights"),
        ({"polygon_share": "x"}, r"polygon_share must lie in \[0, 1\]"),
        ({"per_band_scaling": 1}, "per_band_scaling must be true or false"),
        ({"min_valid_fraction": -0.1}, "min_valid_fraction"),
        ({"out_channels": "3"}, "out_channels must be at least 1"),
    ],
)
def test_bad_option_values_are_refused_in_one_line(pool, options, message):
    with pytest.raises(InputError, match=message):
        SpectralSimulator(pool, size=32, **options)


def test_warp_may_be_a_mapping_of_some_of_its_fields(pool):
    simulator = SpectralSimulator(pool, size=16, warp={"max_rotation_degrees": 0, "warp_grid": 3})
    assert simulator.warp == WarpParameters(max_rotation_degrees=0.0, warp_grid=3)
    assert SpectralSimulator(pool, size=16, normal_count=3).normal_count == (3, 3)
    assert (simulator.sample(np.random.default_rng(0)).labels == ANOMALY).any()


@pytest.mark.parametrize("polygon_share", [0.0, 1.0])
def test_regions_are_rectangles_or_polygons(pool, polygon_share):
    simulator = SpectralSimulator(
        pool,
        size=64,
        out_channels=4,
        patch_size=64,
        warp=NO_WARP,
        normal_count=(0, 0),
        anomaly_count=(1, 1),
        anomaly_area=(0.05, 0.1),
        polygon_share=polygon_share,
    )
    fills = []
    for seed in range(10):
        sample = simulator.sample(np.random.default_rng(seed))
        if not sample.source.endswith("a.tif"):  # a.tif is 64 x 64: no resize
            continue
        rows, cols = np.nonzero(sample.labels == ANOMALY)
        box = (rows.ptp() + 1) * (cols.ptp() + 1)
        fills.append(len(rows) / box)
    assert fills
    if polygon_share == 0.0:
        assert all(fill == 1.0 for fill in fills)
    else:
        assert all(fill < 0.95 for fill in fills)


def test_a_sample_says_where_its_background_held_data(tmp_path):
    """Without warp the validity mask is the nodata region of the patch; nodata pixels are
    ignored and 0."""
    image, _ = anomaly_scene(rows=64, cols=64, bands=12, seed=4)
    image[:, :, :16] = -9999.0
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "h.tif", image, nodata=-9999.0)])
    simulator = SpectralSimulator(pool, size=64, out_channels=None, patch_size=64, warp=NO_WARP)
    sample = simulator.sample(np.random.default_rng(1))
    expected = np.ones((64, 64), bool)
    expected[:, :16] = False
    np.testing.assert_array_equal(sample.valid, expected)
    assert np.all(sample.labels[~expected] == IGNORE) and np.all(sample.image[:, ~expected] == 0)
    full = BackgroundPool.from_paths([write_raster(tmp_path / "f.tif", image[:, :, 16:])])
    assert SpectralSimulator(full, size=32).sample(np.random.default_rng(1)).valid is None
