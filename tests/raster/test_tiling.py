"""Tests of tile grids (exact coverage, halos, borders) and memory-bounded row strips."""

from __future__ import annotations

import numpy as np
import pytest

from uniadrs_engine.raster.reader import Window
from uniadrs_engine.raster.tiling import TileGrid, block_windows, pad_tile

SIZES = [(1, 1), (7, 3), (3, 7), (64, 64), (65, 33), (100, 1), (13, 29)]


def _coverage(grid: TileGrid) -> np.ndarray:
    counts = np.zeros((grid.height, grid.width), dtype=int)
    for tile in grid:
        core = tile.core
        counts[core.yoff : core.yoff + core.ysize, core.xoff : core.xoff + core.xsize] += 1
    return counts


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("tile,halo", [(1, 0), (4, 2), (16, 5), (32, 100), ((5, 3), (1, 4))])
@pytest.mark.parametrize("uniform", [False, True])
def test_cores_cover_every_pixel_once_and_pads_rebuild_the_halo(
    width: int, height: int, tile, halo, uniform: bool
) -> None:
    grid = TileGrid(width, height, tile, halo, uniform=uniform)
    assert (_coverage(grid) == 1).all()
    assert len(list(grid)) == len(grid) == grid.shape[0] * grid.shape[1]
    halo_x, halo_y = (halo, halo) if isinstance(halo, int) else halo
    tile_x, tile_y = (tile, tile) if isinstance(tile, int) else tile
    image = np.arange(height * width, dtype=np.float32).reshape(height, width)
    shapes = set()
    for item in grid:
        read, core = item.read, item.core
        assert read.xoff >= 0 and read.xoff + read.xsize <= width
        assert read.yoff >= 0 and read.yoff + read.ysize <= height
        left, top, right, bottom = item.pad
        assert min(item.pad) >= 0
        # the padded read reaches at least `halo` beyond the core on every side
        assert core.xoff - (read.xoff - left) >= halo_x
        assert core.yoff - (read.yoff - top) >= halo_y
        assert (read.xoff + read.xsize + right) - (core.xoff + core.xsize) >= halo_x
        assert (read.yoff + read.ysize + bottom) - (core.yoff + core.ysize) >= halo_y
        if not uniform:
            assert item.padded_shape == (core.ysize + 2 * halo_y, core.xsize + 2 * halo_x)
        block = image[read.yoff : read.yoff + read.ysize, read.xoff : read.xoff + read.xsize]
        padded = pad_tile(block, item.pad)
        assert padded.shape == item.padded_shape
        np.testing.assert_array_equal(
            item.crop_core(padded),
            image[core.yoff : core.yoff + core.ysize, core.xoff : core.xoff + core.xsize],
        )
        shapes.add(item.padded_shape)
    if uniform:
        assert shapes == {(min(tile_y, height) + 2 * halo_y, min(tile_x, width) + 2 * halo_x)}


def test_seven_by_three_layout() -> None:
    tiles = list(TileGrid(7, 3, tile=4, halo=2))
    assert [tile.core for tile in tiles] == [Window(0, 0, 4, 3), Window(4, 0, 3, 3)]
    assert tiles[0].read == Window(0, 0, 6, 3) and tiles[0].pad == (2, 2, 0, 2)
    assert tiles[1].read == Window(2, 0, 5, 3) and tiles[1].pad == (0, 2, 2, 2)


def test_one_by_one_with_large_halo() -> None:
    (tile,) = list(TileGrid(1, 1, tile=8, halo=5))
    assert tile.core == tile.read == Window(0, 0, 1, 1)
    assert tile.pad == (5, 5, 5, 5)
    padded = pad_tile(np.full((2, 1, 1), 3.0), tile.pad)
    assert padded.shape == (2, 11, 11) and (padded == 3.0).all()


def test_uniform_grid_shifts_the_last_tile_back_inside() -> None:
    tiles = list(TileGrid(10, 4, tile=4, halo=1, uniform=True))
    last = tiles[-1]
    assert last.core == Window(8, 0, 2, 4)
    assert last.read == Window(5, 0, 5, 4) and last.pad == (0, 1, 1, 1)
    assert last.core_offset == (3, 1)


def test_pad_tile_mirrors_without_repeating_the_edge() -> None:
    row = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(pad_tile(row, (2, 0, 1, 0)), [[3, 2, 1, 2, 3, 4, 3]])
    # a pad as long as the data falls back to edge replication on that axis
    np.testing.assert_array_equal(pad_tile(row, (4, 0, 0, 0)), [[1, 1, 1, 1, 1, 2, 3, 4]])
    assert pad_tile(row, (0, 0, 0, 0)) is row


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(width=0, height=3, tile=4),
        dict(width=3, height=3, tile=0),
        dict(width=3, height=3, tile=4, halo=-1),
        dict(width=3, height=3, tile=(1, 2, 3)),
    ],
)
def test_bad_grids(kwargs) -> None:
    with pytest.raises(ValueError):
        TileGrid(**kwargs)


def test_block_windows_fit_the_budget_and_cover_the_raster() -> None:
    windows = block_windows(width=1000, height=777, bytes_per_pixel=40, memory_mb=1)
    rows_per_strip = (1024 * 1024) // (1000 * 40)
    assert windows[0] == Window(0, 0, 1000, rows_per_strip)
    assert sum(window.ysize for window in windows) == 777
    assert all(window.ysize * 1000 * 40 <= 1024 * 1024 for window in windows)
    assert [window.yoff for window in windows] == list(range(0, 777, rows_per_strip))


def test_block_windows_align_to_block_rows_and_keep_one_row() -> None:
    windows = block_windows(1000, 100, bytes_per_pixel=40, memory_mb=1, block_size=(256, 16))
    assert windows[0].ysize == 16  # 26 rows fit; rounded down to one block of 16
    tiny = block_windows(10**7, 3, bytes_per_pixel=8, memory_mb=1)
    assert [window.ysize for window in tiny] == [1, 1, 1]
    whole = block_windows(10, 5, bytes_per_pixel=4, memory_mb=100, block_size=(10, 256))
    assert whole == [Window(0, 0, 10, 5)]
