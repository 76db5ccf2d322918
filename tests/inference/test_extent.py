from __future__ import annotations

import numpy as np
import pytest

from uniadrs_engine.inference.extent import collar_windows, valid_extent
from uniadrs_engine.raster.reader import Window


@pytest.mark.parametrize(
    "extent",
    [Window(2, 3, 5, 4), Window(0, 0, 7, 10), Window(0, 3, 10, 7), Window(9, 9, 1, 1)],
)
def test_the_collar_and_the_extent_cover_the_raster_once(extent):
    covered = np.zeros((10, 10), dtype=int)
    for part in [*collar_windows(10, 10, extent), extent]:
        covered[part.yoff : part.yoff + part.ysize, part.xoff : part.xoff + part.xsize] += 1
    assert (covered == 1).all()


class _Raster:
    width, height = 10, 8


def test_a_raster_without_a_collar_is_scored_whole():
    assert valid_extent(_Raster(), Window(0, 0, 10, 8)) is None
    assert valid_extent(_Raster(), None) is None
    assert valid_extent(_Raster(), Window(1, 0, 9, 8)) == Window(1, 0, 9, 8)
