from __future__ import annotations

import math

import numpy as np
import pytest

from uniadrs_engine.simulation.geometry import (
    WarpParameters,
    fitted_object_shape,
    identity_indices,
    random_polygon_mask,
    random_rectangles,
    random_warp_indices,
    reflect_indices,
    resize_bilinear,
    resize_nearest,
    side_range,
)

NO_WARP = WarpParameters(max_rotation_degrees=0.0, scale_range=(1.0, 1.0), warp_strength=(0.0, 0.0))


def test_reflect_indices_mirror_without_repeating_the_edge():
    folded = reflect_indices(np.arange(-3, 9), 5)
    np.testing.assert_array_equal(folded, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(reflect_indices(np.array([-2, 0, 5]), 1), [0, 0, 0])


def test_resizing_keeps_values_and_shapes():
    image = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    up = resize_nearest(image, (8, 12))
    assert up.shape == (2, 8, 12)
    np.testing.assert_array_equal(up[:, ::2, ::2], image)
    smooth = resize_bilinear(image, (7, 9))
    assert smooth.shape == (2, 7, 9)
    assert image.min() <= smooth.min() and smooth.max() <= image.max()
    np.testing.assert_allclose(resize_bilinear(image, (4, 6)), image)


@pytest.mark.parametrize("fraction", [(0.0064, 0.0225), (0.0225, 0.5)])
def test_rectangle_sides_follow_the_area_fractions(fraction):
    shape = (100, 100)
    low, high = side_range(100 * 100, fraction, 100)
    assert (low, high) == (int(math.sqrt(fraction[0] * 1e4)), int(math.sqrt(fraction[1] * 1e4)))
    rng = np.random.default_rng(0)
    counts, sides = set(), []
    for _ in range(300):
        rectangles = random_rectangles(rng, shape, (2, 5), fraction)
        counts.add(len(rectangles))
        for top, left, height, width in rectangles:
            assert top >= 0 and top + height <= 100 and left >= 0 and left + width <= 100
            sides += [height, width]
    assert counts == {2, 3, 4, 5}
    assert min(sides) == low and max(sides) == high


def test_rectangles_in_a_small_patch_stay_inside():
    rng = np.random.default_rng(1)
    for _ in range(100):
        for top, left, height, width in random_rectangles(rng, (12, 12), (2, 5), (0.0225, 0.5)):
            assert height >= 1 and top + height <= 12 and left + width <= 12


def test_warp_indices_are_valid_and_deterministic():
    first = random_warp_indices(np.random.default_rng(5), (100, 80), (128, 128))
    again = random_warp_indices(np.random.default_rng(5), (100, 80), (128, 128))
    other = random_warp_indices(np.random.default_rng(6), (100, 80), (128, 128))
    rows, cols = first
    assert rows.shape == cols.shape == (128, 128)
    assert rows.min() >= 0 and rows.max() < 100 and cols.min() >= 0 and cols.max() < 80
    np.testing.assert_array_equal(rows, again[0])
    assert not np.array_equal(rows, other[0])


def test_warp_without_rotation_scale_or_jitter_is_a_nearest_resize():
    rows, cols = random_warp_indices(np.random.default_rng(0), (100, 100), (128, 128), NO_WARP)
    expected_rows, expected_cols = identity_indices((100, 100), (128, 128))
    assert np.abs(rows - expected_rows).max() <= 1 and np.abs(cols - expected_cols).max() <= 1


def test_warp_rotates():
    parameters = WarpParameters(
        max_rotation_degrees=90.0, scale_range=(1.0, 1.0), warp_strength=(0.0, 0.0)
    )
    rotated = 0
    for seed in range(20):
        rows, _ = random_warp_indices(np.random.default_rng(seed), (64, 64), (64, 64), parameters)
        # Along a target row the source row is constant without rotation, varies with it.
        rotated += int(np.ptp(rows[32]) > 10)
    assert rotated >= 15


@pytest.mark.parametrize(
    "shape, area, target", [((20, 10), 200, 1000.0), ((30, 30), 500, 300.0), ((9, 4), 20, 600.0)]
)
def test_fitted_object_shape_reaches_the_target_area(shape, area, target):
    height, width = fitted_object_shape(shape[0], shape[1], area, target, limit=128)
    fill = area / (shape[0] * shape[1])
    assert abs(height * width * fill - target) / target < 0.15
    assert height / width == pytest.approx(shape[0] / shape[1], rel=0.15)


def test_fitted_object_shape_never_exceeds_the_limit():
    for height, width in [(100, 10), (10, 100), (50, 50)]:
        new_height, new_width = fitted_object_shape(
            height, width, height * width, 0.5 * 128 * 128, 128
        )
        assert new_height <= 128 and new_width <= 128
    # An elongated object keeps its area by becoming less elongated.
    new_height, new_width = fitted_object_shape(100, 20, 2000, 6000.0, 128)
    assert new_height <= 128 and new_height * new_width == pytest.approx(6000, rel=0.05)


def test_random_polygons_are_non_empty_and_cropped():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = random_polygon_mask(rng, 64)
        assert mask.dtype == bool and mask.any()
        assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
        assert max(mask.shape) <= 64
