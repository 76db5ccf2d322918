from __future__ import annotations

import numpy as np
import pytest

from tests.raster_factory import write_raster
from tests.simulation.conftest import object_mask, visible_tile
from uniadrs_engine.errors import InputError
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.geometry import random_polygon_mask
from uniadrs_engine.simulation.object_bank import ObjectBank, ObjectCutout
from uniadrs_engine.simulation.sample import ANOMALY, BACKGROUND, IGNORE, LABEL_VALUES, LARGE_NORMAL
from uniadrs_engine.simulation.spatial import SpatialSimulator, scaled_object


@pytest.fixture(scope="module")
def pool(background_tree):
    return BackgroundPool.from_paths([background_tree / "visible"], exclude=["landslide"])


@pytest.fixture(scope="module")
def bank(pool):
    return ObjectBank.from_pool(pool, np.random.default_rng(0))


def test_sample_shapes_types_and_labels(pool, bank):
    simulator = SpatialSimulator(pool, bank, size=64)
    rng = np.random.default_rng(0)
    channels = set()
    for _ in range(30):
        sample = simulator.sample(rng)
        channels.add(sample.channels)
        assert sample.image.shape[1:] == (64, 64) and sample.image.dtype == np.float32
        assert sample.labels.shape == (64, 64) and sample.labels.dtype == np.uint8
        assert set(np.unique(sample.labels)) <= set(LABEL_VALUES)
        assert sample.kind == "spatial" and sample.band_indices is None
        assert sample.image.min() >= 0.0 and sample.image.max() == pytest.approx(1.0)
    assert channels == {1, 3}


def test_same_seed_same_samples_other_seed_other_samples(pool, bank):
    simulator = SpatialSimulator(pool, bank, size=64)
    a, b = (simulator.sample(np.random.default_rng(3)) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = simulator.sample(np.random.default_rng(4))
    assert not np.array_equal(a.labels, c.labels)


def test_every_sample_has_an_anomaly_and_a_normal_pixel(pool, bank):
    simulator = SpatialSimulator(pool, bank, size=32)
    for seed in range(60):
        labels = simulator.sample(np.random.default_rng(seed)).labels
        assert (labels == ANOMALY).any()
        assert ((labels == BACKGROUND) | (labels == LARGE_NORMAL)).any()


def test_existing_objects_are_ignored(background_tree):
    pool = BackgroundPool.from_paths([background_tree / "visible" / "tiles" / "v1.tif"])
    bank = ObjectBank(cutouts=[])  # plain polygons only
    simulator = SpatialSimulator(
        pool, bank, size=96, normal_count=0, anomaly_count=1, noise_probability=0.0
    )
    sample = simulator.sample(np.random.default_rng(0))
    # The crop is the whole tile: every object pixel not covered by the paste is ignored.
    objects = object_mask() > 0
    uncovered = sample.labels != ANOMALY
    np.testing.assert_array_equal(sample.labels[uncovered] == IGNORE, objects[uncovered])


def test_pasted_values_stay_in_the_crop_range(tmp_path):
    rng = np.random.default_rng(0)
    flat = (100 + rng.integers(0, 11, size=(3, 64, 64))).astype(np.uint8)  # values 100..110
    write_raster(tmp_path / "flat.tif", flat)
    write_raster(tmp_path / "objects.tif", visible_tile(1, rows=64, cols=64))  # 40..220
    ids = np.zeros((64, 64), np.uint16)
    ids[5:40, 5:40] = 1
    write_raster(tmp_path / "objects_objects.tif", ids)
    pool = BackgroundPool.from_paths([tmp_path])
    flat_only = BackgroundPool.from_paths([tmp_path / "flat.tif"])
    bank = ObjectBank.from_pool(pool, np.random.default_rng(0), polygon_share=0.0)
    simulator = SpatialSimulator(
        flat_only, bank, size=64, noise_probability=0.0, single_channel_probability=0.0
    )
    for seed in range(10):
        sample = simulator.sample(np.random.default_rng(seed))
        pasted = sample.labels != BACKGROUND
        crop_max = sample.image[:, ~pasted].max()
        scale = 110 / crop_max  # back to the 8-bit values of the crop
        values = sample.image[:, pasted] * scale
        assert values.min() >= 100 - 1e-3 and values.max() <= 110 + 1e-3


def test_nodata_pixels_are_ignored(tmp_path):
    tile = visible_tile(2, rows=64, cols=64)
    tile[:, :20, :] = 0
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "t.tif", tile, nodata=0)])
    simulator = SpatialSimulator(
        pool, ObjectBank([]), size=64, noise_probability=1.0, min_valid_fraction=0.0
    )
    sample = simulator.sample(np.random.default_rng(0))
    nodata = np.zeros((64, 64), bool)
    nodata[:20] = True
    unpasted = (sample.labels != ANOMALY) & (sample.labels != LARGE_NORMAL)
    assert np.all(sample.labels[nodata & unpasted] == IGNORE)
    assert np.all(sample.image[:, nodata & unpasted] == 0.0)
    # The sample says where it holds data (the tile's, or pasted objects'), for statistics
    # such as the whitening's.
    np.testing.assert_array_equal(sample.valid, ~(nodata & unpasted))


def test_a_sample_without_nodata_has_no_validity_mask(tmp_path):
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "t.tif", visible_tile(2))])
    sample = SpatialSimulator(pool, ObjectBank([]), size=32).sample(np.random.default_rng(0))
    assert sample.valid is None


@pytest.mark.parametrize("target_fraction", [0.02, 0.06, 0.2, 0.5])
def test_scaled_objects_cover_their_target_area(target_fraction):
    rng = np.random.default_rng(0)
    masks = [np.ones((12, 30), bool), random_polygon_mask(rng, 40), random_polygon_mask(rng, 64)]
    rows, cols = np.mgrid[:9, :7]
    masks.append(((rows - 4) / 4.5) ** 2 + ((cols - 3) / 3.5) ** 2 <= 1)  # a small ellipse
    for mask in masks:
        shape = mask.shape
        cutout = ObjectCutout(rng.random((3, *shape)).astype(np.float32), mask, "x")
        target = target_fraction * 64 * 64
        pixels, scaled = scaled_object(cutout, target, limit=64)
        assert pixels.shape[1:] == scaled.shape and max(scaled.shape) <= 64
        if target_fraction <= 0.2:
            assert abs(scaled.sum() - target) / target < 0.1


def test_paste_areas_fall_in_their_ranges(pool, bank):
    simulator = SpatialSimulator(
        pool, bank, size=64, normal_count=0, anomaly_count=1, noise_probability=0.0
    )
    for seed in range(30):
        area = (simulator.sample(np.random.default_rng(seed)).labels == ANOMALY).sum() / 64**2
        assert 0.02 * 0.9 <= area <= 0.06 * 1.1
    simulator = SpatialSimulator(
        pool, bank, size=64, normal_count=1, anomaly_count=1, anomaly_area=(0.001, 0.002)
    )
    for seed in range(30):
        labels = simulator.sample(np.random.default_rng(seed)).labels
        area = ((labels == LARGE_NORMAL) | (labels == ANOMALY)).sum() / 64**2
        assert 0.06 * 0.9 <= area <= 0.5 * 1.1 + 0.002


def test_options_are_checked(pool, bank, background_tree):
    with pytest.raises(InputError, match="multiple of 8"):
        SpatialSimulator(pool, bank, size=20)
    with pytest.raises(InputError, match="at least one anomaly"):
        SpatialSimulator(pool, bank, size=32, anomaly_count=0)
    hsi_only = BackgroundPool.from_paths([background_tree / "hsi"])
    with pytest.raises(InputError, match="no visible"):
        SpatialSimulator(hsi_only, bank, size=32)
    with pytest.raises(InputError, match="unknown anomaly source 'elsewhere'"):
        SpatialSimulator(pool, bank, size=32, anomaly_source="elsewhere")
    with pytest.raises(InputError, match=r"scene_share must lie in \[0, 1\], not 1.5"):
        SpatialSimulator(pool, bank, size=32, anomaly_source="mixed", scene_share=1.5)
    for share in (0.25, 0.5):
        with pytest.raises(InputError, match="scene_share goes with anomaly_source 'mixed'"):
            SpatialSimulator(pool, bank, size=32, scene_share=share)
    assert SpatialSimulator(pool, bank, size=32, anomaly_source="mixed").scene_share == 0.5


@pytest.mark.parametrize(
    "options, message",
    [
        ({"anomaly_area": (0.5, 0.1)}, r"anomaly_area must be two numbers .*not \[0.5, 0.1\]"),
        ({"anomaly_area": 0.05}, "anomaly_area must be two numbers"),
        ({"anomaly_area": (0.01,)}, "anomaly_area must be two numbers"),
        ({"anomaly_area": (0.01, float("nan"))}, "anomaly_area"),
        ({"normal_area": (0.1, 1.5)}, r"normal_area must be two numbers .*<= 1"),
        ({"normal_area": ("a", "b")}, "normal_area"),
        ({"normal_count": "abc"}, "normal_count must be a whole number >= 0, not 'abc'"),
        ({"normal_count": -1}, "normal_count must be a whole number"),
        ({"normal_count": 1.5}, "normal_count must be a whole number"),
        ({"anomaly_count": "2"}, "anomaly_count must be a whole number"),
        ({"crop_scale": (2, 1)}, r"crop_scale must be two numbers \[low, high\] with 0 < low"),
        ({"crop_scale": (0, 1)}, "crop_scale"),
        ({"noise_std": (-0.1, 0.1)}, "noise_std"),
        ({"noise_probability": 1.5}, r"noise_probability must lie in \[0, 1\], not 1.5"),
        ({"single_channel_probability": "often"}, "single_channel_probability"),
        ({"area_tolerance": -0.1}, "area_tolerance must be a number >= 0"),
        ({"per_band_scaling": "yes"}, "per_band_scaling must be true or false"),
        ({"min_valid_fraction": 2}, "min_valid_fraction"),
        ({"anomaly_source": ["bank"]}, "unknown anomaly source"),
        ({"anomaly_source": "mixed", "scene_share": "half"}, "scene_share must lie in"),
    ],
)
def test_bad_option_values_are_refused_in_one_line(pool, bank, options, message):
    with pytest.raises(InputError, match=message):
        SpatialSimulator(pool, bank, size=32, **options)


def test_checked_options_keep_their_values(pool, bank):
    simulator = SpatialSimulator(
        pool, bank, size=32, anomaly_area=[0.01, 0.03], crop_scale=(1, 2), normal_count=np.int64(3)
    )
    assert simulator.anomaly_area == (0.01, 0.03) and simulator.crop_scale == (1.0, 2.0)
    assert simulator.normal_count == 3
    simulator.sample(np.random.default_rng(0))


def own_pixel_shifts(sample, size: int):
    """Shifts that map the anomaly's pixels onto identical pixels elsewhere in the sample."""
    rows, cols = np.nonzero(sample.labels == ANOMALY)
    return [
        (dy, dx)
        for dy in range(-size + 1, size)
        for dx in range(-size + 1, size)
        if (dy, dx) != (0, 0)
        and (rows + dy >= 0).all()
        and (rows + dy < size).all()
        and (cols + dx >= 0).all()
        and (cols + dx < size).all()
        and np.array_equal(sample.image[:, rows, cols], sample.image[:, rows + dy, cols + dx])
    ]


def one_anomaly_simulator(pool, bank, source: str, **options) -> SpatialSimulator:
    return SpatialSimulator(
        pool,
        bank,
        size=32,
        normal_count=0,
        anomaly_count=1,
        noise_probability=0.0,
        single_channel_probability=0.0,
        anomaly_source=source,
        **options,
    )


def test_scene_anomalies_are_the_crops_own_pixels_moved(pool, bank):
    simulator = one_anomaly_simulator(pool, bank, "scene")
    for seed in range(5):
        sample = simulator.sample(np.random.default_rng(seed))
        # The source place is left as it was, so some shift maps the anomaly onto it.
        shifts = own_pixel_shifts(sample, 32)
        assert shifts, f"seed {seed}: the anomaly's pixels are nowhere else in the crop"
        rows, cols = np.nonzero(sample.labels == ANOMALY)
        assert (sample.labels[rows + shifts[0][0], cols + shifts[0][1]] == BACKGROUND).all()


def test_bank_anomalies_come_from_elsewhere_and_mixed_gives_both(pool, bank):
    bank_simulator = one_anomaly_simulator(pool, bank, "bank")
    assert not own_pixel_shifts(bank_simulator.sample(np.random.default_rng(0)), 32)
    mixed = one_anomaly_simulator(pool, bank, "mixed")
    kinds = {
        bool(own_pixel_shifts(mixed.sample(np.random.default_rng(seed)), 32)) for seed in range(12)
    }
    assert kinds == {True, False}


def test_the_scene_share_sets_the_odds_of_mixed(pool, bank):
    def scene_count(share: float) -> int:
        mixed = one_anomaly_simulator(pool, bank, "mixed", scene_share=share)
        return sum(
            bool(own_pixel_shifts(mixed.sample(np.random.default_rng(seed)), 32))
            for seed in range(16)
        )

    assert scene_count(0.0) == 0
    assert scene_count(1.0) == 16
    assert 0 < scene_count(0.25) < scene_count(0.75) < 16
