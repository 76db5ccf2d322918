from __future__ import annotations

import numpy as np

from tests.raster_factory import write_raster
from uniadrs_engine.inference.extent import ExtentView, ExtentWriter, valid_extent
from uniadrs_engine.raster.reader import Window, open_raster
from uniadrs_engine.raster.writer import ScoreRasterWriter


class _Raster:
    width, height = 10, 8


def test_a_raster_without_a_collar_is_scored_whole():
    assert valid_extent(_Raster(), Window(0, 0, 10, 8)) is None
    assert valid_extent(_Raster(), None) is None
    assert valid_extent(_Raster(), Window(1, 0, 9, 8)) == Window(1, 0, 9, 8)


def test_an_extent_reads_and_writes_in_its_own_pixels_and_the_rest_is_nodata(tmp_path):
    image = np.arange(3 * 10 * 12, dtype=np.float32).reshape(3, 10, 12)
    path = write_raster(tmp_path / "scene.tif", image)
    extent = Window(4, 2, 5, 6)
    with open_raster(path) as source:
        view = ExtentView(source, extent)
        assert (view.width, view.height, view.band_count) == (5, 6, 3)
        block = view.read_window(Window(1, 1, 2, 3))
        np.testing.assert_array_equal(block.data, image[:, 3:6, 5:7])
        with ScoreRasterWriter(tmp_path / "scores.tif", source) as writer:
            ExtentWriter(writer, extent).write(Window(0, 0, 5, 6), np.ones((6, 5), np.float32))
    with open_raster(tmp_path / "scores.tif") as scores:
        written = scores.read_window(scores.full_window())
    inside = np.zeros((10, 12), dtype=bool)
    inside[2:8, 4:9] = True
    np.testing.assert_array_equal(written.valid, inside)  # nothing written: nodata
    assert (written.data[0][inside] == 1.0).all()
