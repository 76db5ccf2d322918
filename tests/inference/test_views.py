"""Tests of test-time views: the eight orientations, their inverses and the averaged score."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
import torch

from tests.inference.conftest import tiny_network
from uniadrs_engine.errors import InputError
from uniadrs_engine.inference.scoring import score_image, score_tiles
from uniadrs_engine.inference.views import (
    VIEW_COUNTS,
    apply_view,
    check_views,
    invert_view,
    score_views,
)


def _batch() -> torch.Tensor:
    return torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)


@pytest.mark.parametrize("view", range(8))
def test_each_view_is_undone_by_its_inverse(view: int) -> None:
    batch = _batch()
    seen = apply_view(batch, view)
    assert seen.shape[-2:] == ((5, 4) if view >= 4 else (4, 5))
    assert torch.equal(invert_view(seen, view), batch)


@pytest.mark.parametrize("bad", [0, 3, 5, 16, -1, 2.5, True])
def test_only_the_listed_view_counts_are_accepted(bad) -> None:
    with pytest.raises(InputError, match="number of views"):
        check_views(bad)
    assert [check_views(count) for count in VIEW_COUNTS] == [1, 2, 4, 8]


def test_out_of_range_views_are_refused() -> None:
    with pytest.raises(ValueError):
        apply_view(_batch(), 8)
    with pytest.raises(ValueError):
        invert_view(_batch(), -1)


@pytest.mark.parametrize("views", VIEW_COUNTS)
def test_an_orientation_blind_score_is_unchanged_by_views(views: int) -> None:
    batch = torch.rand(2, 3, 6, 10)

    def channel_mean(tensor: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
        return tensor.mean(dim=1)

    torch.testing.assert_close(score_views(channel_mean, batch, views), channel_mean(batch, None))


def test_the_views_scores_are_mapped_back_and_averaged() -> None:
    """A score that depends on position: each view's map is turned back before averaging."""
    batch = torch.rand(1, 2, 4, 6)

    def left_weighted(tensor: torch.Tensor, valid: Optional[torch.Tensor]) -> torch.Tensor:
        ramp = torch.linspace(1.0, 0.0, tensor.shape[-1])
        return tensor.sum(dim=1) * ramp

    mirrored = torch.flip(left_weighted(torch.flip(batch, (-1,)), None), (-1,))
    expected = (left_weighted(batch, None) + mirrored) / 2
    torch.testing.assert_close(score_views(left_weighted, batch, 2), expected)
    # Left-right mirroring turns the ramp around: the average weighs every column equally.
    torch.testing.assert_close(score_views(left_weighted, batch, 2), batch.sum(dim=1) * 0.5)


@pytest.mark.parametrize("views", [2, 8])
def test_score_tiles_averages_the_network_over_the_views(views: int) -> None:
    network = tiny_network()
    rng = np.random.default_rng(1)
    tiles = rng.random((2, 3, 24, 40), dtype=np.float32)
    turned = [apply_view(torch.from_numpy(tiles), view).numpy().copy() for view in range(views)]
    expected = np.mean(
        [
            invert_view(torch.from_numpy(score_tiles(network, seen)), view).numpy()
            for view, seen in enumerate(turned)
        ],
        axis=0,
    )
    scores = score_tiles(network, tiles, views=views)
    assert scores.shape == (2, 24, 40)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert np.abs(scores - score_tiles(network, tiles)).max() > 1e-4
    np.testing.assert_allclose(score_image(network, tiles[0], views=views), scores[0], atol=1e-5)
