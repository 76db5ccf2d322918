"""``uniadrs rx``: writes scores like the library call; bad input is one line, exit 2."""

from __future__ import annotations

import numpy as np
import pytest

from uniadrs_engine.baselines.rx import global_rx, local_rx
from uniadrs_engine.cli.main import main
from uniadrs_engine.raster.reader import open_raster


def _scores(path):
    with open_raster(path) as source:
        return source.read_window(source.full_window()).data[0]


def test_global_and_local(scene_raster, tmp_path, capsys):
    image_path, _ = scene_raster
    with open_raster(image_path) as source:
        image = source.read_window(source.full_window()).data
    assert main(["rx", str(image_path), str(tmp_path / "g.tif"), "--quiet", "--bands", "1-3"]) == 0
    np.testing.assert_allclose(_scores(tmp_path / "g.tif"), global_rx(image[:3]), rtol=1e-5)
    assert (
        main(
            [
                "rx",
                str(image_path),
                str(tmp_path / "l.tif"),
                "--mode",
                "local",
                "--inner",
                "3",
                "--outer",
                "9",
                "--memory-mb",
                "1",
            ]
        )
        == 0
    )
    np.testing.assert_allclose(_scores(tmp_path / "l.tif"), local_rx(image, 3, 9), rtol=1e-5)
    captured = capsys.readouterr()
    assert "local RX, windows 3/9 px on bands 1-5: " in captured.out


def test_bands_left_out_are_named(make_raster, tmp_path, capsys):
    image = np.random.default_rng(4).random((3, 12, 14)).astype(np.float32)
    image[0] = -32768.0
    path = make_raster(image, "dead_band.tif", nodata=-32768.0)
    assert main(["rx", str(path), str(tmp_path / "g.tif"), "--quiet"]) == 0
    np.testing.assert_allclose(_scores(tmp_path / "g.tif"), global_rx(image[1:]), rtol=1e-5)
    out = capsys.readouterr().out
    assert "global RX on bands 2-3: 14x12 px" in out
    assert out.rstrip().endswith("(band 1 left out: it holds no value)")


def test_background_mask_option(scene_raster, make_raster, tmp_path):
    image_path, mask_path = scene_raster
    background = np.ones((64, 80), dtype=np.uint8)
    background[:10] = 0
    background_path = make_raster(background, "background.tif")
    assert (
        main(
            [
                "rx",
                str(image_path),
                str(tmp_path / "b.tif"),
                "--quiet",
                "--background-mask",
                str(background_path),
            ]
        )
        == 0
    )
    with open_raster(image_path) as source:
        image = source.read_window(source.full_window()).data
    np.testing.assert_allclose(
        _scores(tmp_path / "b.tif"), global_rx(image, background=background > 0), rtol=1e-5
    )


def test_bad_input_gives_one_line_and_no_output(scene_raster, tmp_path, capsys):
    image_path, _ = scene_raster
    cases = [
        [str(tmp_path / "missing.tif"), str(tmp_path / "o.tif")],
        [str(image_path), str(tmp_path / "o.tif"), "--inner", "3"],
        [
            str(image_path),
            str(tmp_path / "o.tif"),
            "--mode",
            "local",
            "--inner",
            "9",
            "--outer",
            "5",
        ],
        [str(image_path), str(tmp_path / "o.tif"), "--bands", "7"],
        [str(image_path), str(tmp_path / "no_folder" / "o.tif")],
    ]
    for arguments in cases:
        assert main(["rx", *arguments, "--quiet"]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("uniadrs: error:")
        assert "Traceback" not in error[0]
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("command", ["rx", "evaluate"])
def test_gdal_s_block_cache_is_bounded_by_the_memory_budget(make_raster, tmp_path, command):
    from osgeo import gdal

    rng = np.random.default_rng(5)
    image = make_raster(rng.random((2, 16, 16)).astype(np.float32), "image.tif")
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:6, 4:6] = 1
    arguments = {
        "rx": ["rx", str(image), str(tmp_path / "rx.tif")],
        "evaluate": ["evaluate", str(image), str(make_raster(mask, "mask.tif"))],
    }[command]
    before = gdal.GetCacheMax()
    gdal.SetCacheMax(1024 * 1024 * 1024)
    try:
        assert main([*arguments, "--memory-mb", "256", "--quiet"]) == 0
        assert gdal.GetCacheMax() == 64 * 1024 * 1024  # a quarter of the budget
    finally:
        gdal.SetCacheMax(before)


def test_nodata_values_score_as_the_file_s_declared_nodata(make_raster, tmp_path):
    image = np.random.default_rng(8).random((3, 20, 24)).astype(np.float32)
    image[:, :, :4] = -1.0  # a fill the first file does not declare
    undeclared = make_raster(image, "undeclared.tif")
    declared = make_raster(image, "declared.tif", nodata=-1.0)
    for mode in (["--mode", "global"], ["--mode", "local", "--inner", "3", "--outer", "9"]):
        given, expected = tmp_path / "given.tif", tmp_path / "expected.tif"
        assert main(["rx", str(undeclared), str(given), "--quiet", *mode, "--nodata=..-0.5"]) == 0
        assert main(["rx", str(declared), str(expected), "--quiet", *mode]) == 0
        np.testing.assert_array_equal(_scores(given), _scores(expected))
        with open_raster(given) as scores:
            valid = scores.read_window(scores.full_window()).valid
            assert scores.dataset.GetMetadataItem("UNIADRS_NODATA") == "..-0.5"
        assert not valid[:, :4].any() and valid[:, 4:].all()


@pytest.mark.parametrize(
    "options",
    [
        ["--nodata", "-1e5", "--nodata", "-7"],  # repeated, each a number in e-notation or not
        ["--nodata", "-1e5,-7"],
        ["--nodata", "-100000..-99999", "--nodata=-7"],
        ["--nodata", "-inf..-99999,-7"],
    ],
)
def test_nodata_values_that_start_with_a_dash_and_repeats(make_raster, tmp_path, options):
    image = np.random.default_rng(9).random((2, 10, 12)).astype(np.float32)
    image[:, 0] = -1e5
    image[:, 1] = -7.0
    path = make_raster(image, "fills.tif")
    output = tmp_path / "rx.tif"
    assert main(["rx", str(path), str(output), "--quiet", *options]) == 0
    with open_raster(output) as scores:
        valid = scores.read_window(scores.full_window()).valid
    assert not valid[:2].any() and valid[2:].all()
    expected = global_rx(image[:, 2:])
    np.testing.assert_allclose(_scores(output)[2:], expected, rtol=1e-5)


def test_a_nodata_option_without_a_value_is_a_usage_error(make_raster, tmp_path, capsys):
    path = make_raster(np.random.default_rng(9).random((2, 6, 6)).astype(np.float32))
    with pytest.raises(SystemExit) as caught:
        main(["rx", str(path), str(tmp_path / "rx.tif"), "--nodata", "--quiet"])
    assert caught.value.code == 2
    assert "--nodata: expected one argument" in capsys.readouterr().err
