"""Tests of array scoring: band slicing beyond in_channels, padding, resampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.inference.conftest import tiny_network
from uniadrs_engine.inference.scoring import (
    band_slices,
    fill_from_nearest,
    pad_to_multiple,
    score_image,
    score_tiles,
)
from uniadrs_engine.inference.views import apply_view, invert_view


@pytest.mark.parametrize("band_count", [1, 3, 269, 270, 271, 300, 539, 540, 541, 1000])
def test_band_slices_cover_every_band_once(band_count: int) -> None:
    slices = band_slices(band_count, 270)
    assert len(slices) == -(-band_count // 270)
    covered = [band for start, stop in slices for band in range(start, stop)]
    assert covered == list(range(band_count))
    sizes = [stop - start for start, stop in slices]
    assert max(sizes) <= 270 and max(sizes) - min(sizes) <= 1


def test_images_with_more_bands_than_the_network_are_scored_in_slices() -> None:
    network = tiny_network(in_channels=4)
    rng = np.random.default_rng(0)
    image = rng.random((10, 16, 24), dtype=np.float32)
    assert band_slices(10, 4) == [(0, 3), (3, 7), (7, 10)]
    expected = np.mean(
        [score_image(network, image[start:stop]) for start, stop in band_slices(10, 4)], axis=0
    )
    np.testing.assert_allclose(score_image(network, image), expected, atol=1e-6)
    with pytest.raises(ValueError, match="1 to 4 bands"):
        network(torch.from_numpy(image[None]))  # the network alone refuses them


def test_pad_to_multiple_mirrors_and_replicates_tiny_images() -> None:
    batch = torch.arange(13 * 22, dtype=torch.float32).reshape(1, 1, 13, 22)
    padded = pad_to_multiple(batch)
    assert padded.shape == (1, 1, 16, 24)
    torch.testing.assert_close(padded[..., :13, :22], batch)
    torch.testing.assert_close(padded[0, 0, 13, :22], batch[0, 0, 11])  # row 13 mirrors 11
    torch.testing.assert_close(padded[0, 0, :13, 23], batch[0, 0, :, 19])
    # at least 16 x 16 (one cell at 1/8 would break instance normalisation); too small to
    # mirror: the edge is replicated
    tiny = pad_to_multiple(torch.arange(3.0).reshape(1, 1, 1, 3))
    assert tiny.shape == (1, 1, 16, 16)
    torch.testing.assert_close(tiny[0, 0, 5], torch.tensor([0.0, 1.0] + [2.0] * 14))


def test_score_image_crops_the_mirror_padding(network) -> None:
    rng = np.random.default_rng(1)
    image = rng.random((3, 13, 21), dtype=np.float32)
    scores = score_image(network, image)
    assert scores.shape == (13, 21) and scores.dtype == np.float32
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
    padded = np.pad(image, [(0, 0), (0, 3), (0, 3)], mode="reflect")
    with torch.inference_mode():
        manual = network(torch.from_numpy(padded[None])).score[0, 0, :13, :21].numpy()
    np.testing.assert_allclose(scores, manual, atol=1e-6)


def test_one_pixel_image(network) -> None:
    scores = score_image(network, np.full((2, 1, 1), 0.5, dtype=np.float32))
    assert scores.shape == (1, 1) and np.isfinite(scores).all()


def test_score_tiles_resamples_by_the_scale(network) -> None:
    rng = np.random.default_rng(2)
    tiles = rng.random((2, 3, 40, 48), dtype=np.float32)
    for scale in (0.5, 1.0, 1.5):
        scores = score_tiles(network, tiles, scale=scale)
        assert scores.shape == (2, 40, 48)
        assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1
    # a tile scored in a batch or alone: the same up to float32 reduction order
    np.testing.assert_allclose(
        score_tiles(network, tiles)[1], score_image(network, tiles[1]), atol=2e-5
    )
    assert not np.allclose(score_tiles(network, tiles, scale=0.5), score_tiles(network, tiles))


def _hole(shape) -> np.ndarray:
    valid = np.ones(shape, dtype=bool)
    valid[..., 4:14, 20:] = False
    return valid


def test_every_pixel_valid_scores_as_without_a_mask(network) -> None:
    tiles = np.random.default_rng(2).random((2, 3, 24, 40), dtype=np.float32)
    every = np.ones((2, 24, 40), dtype=bool)
    np.testing.assert_array_equal(
        score_tiles(network, tiles, valid=every), score_tiles(network, tiles)
    )
    np.testing.assert_array_equal(
        score_tiles(network, tiles, scale=0.5, views=2, valid=every),
        score_tiles(network, tiles, scale=0.5, views=2),
    )


def test_invalid_pixels_are_weighted_out_of_the_network_statistics(network) -> None:
    """The mask reaches the network as weights, resampled with the tile at its scale."""
    tiles = np.random.default_rng(3).random((2, 3, 24, 40), dtype=np.float32)
    valid = _hole((2, 24, 40))
    valid[1] = True
    for scale in (1.0, 0.5):
        scores = score_tiles(network, tiles, scale=scale, valid=valid)
        assert np.abs(scores[0] - score_tiles(network, tiles, scale=scale)[0]).max() > 1e-3
        # The second tile, every pixel valid, is scored apart, as on its own.
        np.testing.assert_array_equal(scores[1], score_tiles(network, tiles[1:], scale=scale)[0])
    # score_image fills a copy, then scores as score_tiles does: the network with weights.
    image = tiles[0]
    filled = fill_from_nearest(image.copy(), valid[0])
    expected = score_tiles(network, filled[None], valid=valid[:1])[0]
    np.testing.assert_array_equal(score_image(network, image, valid=valid[0]), expected)
    weights = torch.from_numpy(valid[:1, None].astype(np.float32))
    with torch.inference_mode():
        direct = network(torch.from_numpy(filled[None]), features=False, valid=weights)
    np.testing.assert_allclose(expected, direct.score[0, 0].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="does not match"):
        score_tiles(network, tiles, valid=valid[:1])


def test_each_view_sees_the_mask_turned_with_its_tile(network) -> None:
    """Each view's network sees the validity turned as its tile is (rows 4-13 without data:
    a mask left unturned would weight other pixels, or not fit a transposed tile)."""
    tiles = np.random.default_rng(4).random((1, 3, 24, 40), dtype=np.float32)
    valid = np.ones((1, 24, 40), dtype=bool)
    valid[:, 4:14] = False
    expected = []
    for view in range(8):
        seen = apply_view(torch.from_numpy(tiles), view).numpy().copy()
        seen_valid = apply_view(torch.from_numpy(valid), view).numpy().copy()
        scores = score_tiles(network, seen, valid=seen_valid)
        expected.append(invert_view(torch.from_numpy(scores), view).numpy())
    np.testing.assert_allclose(
        score_tiles(network, tiles, views=8, valid=valid), np.mean(expected, axis=0), atol=1e-5
    )


def test_invalid_pixels_take_their_nearest_valid_pixels_values() -> None:
    image = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    original = image.copy()
    valid = np.ones((4, 6), dtype=bool)
    valid[:, 4:] = False  # the two right columns
    assert fill_from_nearest(image, valid) is image  # in place
    np.testing.assert_array_equal(image[:, :, 4], original[:, :, 3])
    np.testing.assert_array_equal(image[:, :, 5], original[:, :, 3])
    np.testing.assert_array_equal(image[:, :, :4], original[:, :, :4])
    # Without a valid pixel, or with every pixel valid, nothing changes.
    np.testing.assert_array_equal(
        fill_from_nearest(original.copy(), ~np.ones((4, 6), bool)), original
    )
    np.testing.assert_array_equal(
        fill_from_nearest(original.copy(), np.ones((4, 6), bool)), original
    )


@pytest.mark.parametrize(("scale", "views"), [(1.0, 1), (0.5, 2)])
def test_what_invalid_pixels_hold_changes_no_score(network, scale: float, views: int) -> None:
    """Filled from their nearest valid pixels and weighted out of every instance statistic,
    pixels without data leave the scores of a whole image as they are, whatever they hold
    (the fill alone makes the two inputs equal; the last checks show each part acts)."""
    image = np.random.default_rng(5).random((3, 24, 40), dtype=np.float32)
    valid = _hole((24, 40))
    low, high = image.copy(), image.copy()
    low[:, ~valid] = 0.0
    high[:, ~valid] = 1000.0
    scores = score_image(network, low, scale=scale, views=views, valid=valid)
    np.testing.assert_array_equal(
        scores, score_image(network, high, scale=scale, views=views, valid=valid)
    )
    assert np.array_equal(low[:, ~valid], np.zeros_like(low[:, ~valid]))  # filled on a copy
    # Both parts count: the fill (weighted but unfilled, the scores differ) and the weights
    # (filled alike but weighed in, they differ too).
    unfilled = score_tiles(network, low[None], scale=scale, views=views, valid=valid[None])[0]
    assert np.abs(scores - unfilled).max() > 1e-3
    filled = fill_from_nearest(low.copy(), valid)
    assert np.abs(scores - score_image(network, filled, scale=scale, views=views)).max() > 1e-3
