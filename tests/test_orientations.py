"""Tests of the eight orientations of a square image, on NumPy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uniadrs_engine.orientations import ORIENTATION_COUNTS, ORIENTATIONS, orient, unorient


def test_the_orientations_are_the_eight_symmetries_of_the_square() -> None:
    image = np.arange(16).reshape(4, 4)
    expected = {
        np.rot90(flipped, turns).tobytes()
        for flipped in (image, image[:, ::-1])
        for turns in range(4)
    }
    seen = {np.ascontiguousarray(orient(image, k)).tobytes() for k in range(ORIENTATIONS)}
    assert seen == expected and len(seen) == ORIENTATIONS
    # The first four keep the shape: they only mirror (1 left-right, 2 top-bottom).
    np.testing.assert_array_equal(orient(image, 1), image[:, ::-1])
    np.testing.assert_array_equal(orient(image, 2), image[::-1])


@pytest.mark.parametrize("orientation", range(ORIENTATIONS))
def test_numpy_and_torch_agree_and_each_orientation_is_undone(orientation: int) -> None:
    array = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    turned = orient(array, orientation)
    assert turned.shape == ((2, 5, 3) if orientation >= 4 else (2, 3, 5))
    np.testing.assert_array_equal(orient(torch.from_numpy(array), orientation).numpy(), turned)
    np.testing.assert_array_equal(unorient(turned, orientation), array)


@pytest.mark.parametrize("count", ORIENTATION_COUNTS)
def test_each_allowed_count_is_closed_under_composition(count: int) -> None:
    """The first 1, 2, 4 or 8 orientations form a group: a random choice among them is
    unbiased whichever orientation the image started in."""
    image = np.arange(9).reshape(3, 3)
    members = {np.ascontiguousarray(orient(image, k)).tobytes() for k in range(count)}
    for first in range(count):
        for second in range(count):
            both = np.ascontiguousarray(orient(orient(image, first), second)).tobytes()
            assert both in members


def test_out_of_range_orientations_are_refused() -> None:
    with pytest.raises(ValueError):
        orient(np.zeros((2, 2)), ORIENTATIONS)
    with pytest.raises(ValueError):
        unorient(np.zeros((2, 2)), -1)
