from __future__ import annotations

import numpy as np
import pytest

from tests.simulation.conftest import object_mask
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.object_bank import POLYGON_SOURCE, ObjectBank, match_channels


@pytest.fixture(scope="module")
def pool(background_tree):
    return BackgroundPool.from_paths([background_tree / "visible" / "tiles"])


def test_cutouts_come_from_the_object_mask(pool):
    bank = ObjectBank.from_pool(pool, np.random.default_rng(0), min_area=16)
    ids = object_mask()
    # Instance 4 (4 pixels) is below the minimum area.
    assert sorted(cutout.source for cutout in bank.cutouts) == [
        f"{pool.files[0].name}#{i}" for i in (1, 2, 3)
    ]
    v1 = pool.read(pool.files[0])
    for cutout in bank.cutouts:
        object_id = int(cutout.source.split("#")[1])
        rows, cols = np.nonzero(ids == object_id)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        np.testing.assert_array_equal(cutout.mask, ids[box] == object_id)
        expected = v1.image[:, box[0], box[1]] / pool.files[0].value_max
        np.testing.assert_allclose(cutout.pixels, expected, rtol=1e-6)
        assert cutout.pixels.max() <= 1.0
    assert bank.provenance()["cutouts"] == 3


def test_large_cutouts_are_shrunk_and_files_capped(pool):
    bank = ObjectBank.from_pool(pool, np.random.default_rng(0), max_side=8, max_per_file=2)
    assert len(bank) == 2
    assert all(max(cutout.mask.shape) <= 8 and cutout.mask.any() for cutout in bank.cutouts)


def test_draws_are_deterministic_and_have_the_requested_channels(pool):
    bank = ObjectBank.from_pool(pool, np.random.default_rng(0), polygon_share=0.5)
    kinds = set()
    for channels in (1, 3, 4):
        a = [bank.draw(np.random.default_rng(seed), channels) for seed in range(20)]
        b = [bank.draw(np.random.default_rng(seed), channels) for seed in range(20)]
        for first, second in zip(a, b):
            np.testing.assert_array_equal(first.pixels, second.pixels)
            np.testing.assert_array_equal(first.mask, second.mask)
            assert first.pixels.shape == (channels, *first.mask.shape)
            assert first.mask.any() and np.isfinite(first.pixels).all()
            kinds.add(first.source == POLYGON_SOURCE)
    assert kinds == {True, False}


def test_without_object_masks_every_draw_is_a_polygon(background_tree):
    pool = BackgroundPool.from_paths([background_tree / "visible" / "landslide"])
    bank = ObjectBank.from_pool(pool, np.random.default_rng(0))
    assert len(bank) == 0 and bank.polygon_share == 1.0
    rng = np.random.default_rng(1)
    draws = [bank.draw(rng, 3) for _ in range(20)]
    assert all(draw.source == POLYGON_SOURCE and draw.mask.any() for draw in draws)
    assert all(draw.pixels.min() >= 0.0 and draw.pixels.max() <= 1.0 + 1e-6 for draw in draws)


def test_match_channels():
    pixels = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    np.testing.assert_array_equal(match_channels(pixels, 1)[0], pixels.mean(axis=0))
    np.testing.assert_array_equal(match_channels(pixels, 5), pixels[[0, 1, 2, 0, 1]])
    assert match_channels(pixels, 3) is pixels
