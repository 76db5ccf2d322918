"""End-to-end tests of ``uniadrs detect``: a generated raster, a tiny lite8 model file."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal

from tests.raster_factory import anomaly_scene, write_raster
from uniadrs_engine.cli.main import EXIT_USER_ERROR, main
from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import save_model
from uniadrs_engine.model.network import UniADRS
from uniadrs_engine.raster.writer import SCORE_NODATA


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    network = UniADRS(get_config("lite8"))
    path = tmp_path / "tiny.safetensors"
    save_model(path, network, ModelCard(name="tiny-cli", config=network.config))
    return path


@pytest.fixture
def scene_path(tmp_path: Path) -> Path:
    image, _ = anomaly_scene(rows=48, cols=64, bands=4, seed=0, dtype="uint16")
    image[:, 0, 0] = 0
    return write_raster(tmp_path / "scene.tif", image, nodata=0)


def test_detect_end_to_end(model_file: Path, scene_path: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "scores.tif"
    status = main(
        [
            "detect",
            str(scene_path),
            str(output),
            "--model",
            str(model_file),
            "--bands",
            "1-3",
            "--scale",
            "0.5,1",
            "--tile",
            "32",
            "--halo",
            "8",
            "--batch",
            "2",
            "--device",
            "cpu",
            "--memory-mb",
            "256",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert f"scores: {output}" in captured.out
    assert (
        "scale 0.5, 1" in captured.out and "tiles in" in captured.out and "on cpu" in captured.out
    )
    assert "100%" in captured.err  # the progress bar
    dataset = gdal.Open(str(output))
    values = dataset.GetRasterBand(1).ReadAsArray()
    assert values.shape == (48, 64)
    assert values[0, 0] == SCORE_NODATA
    assert ((values.ravel()[1:] >= 0) & (values.ravel()[1:] <= 1)).all()


def test_detect_with_object_size(
    model_file: Path, scene_path: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "scores.tif"
    status = main(
        [
            "detect",
            str(scene_path),
            str(output),
            "--model",
            str(model_file),
            "--quiet",
            "--object-size-map-units",
            "300",
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0 and output.exists()
    assert "scale 1 |" in captured.out  # 300 m objects, 10 m pixels: 30 px, scale 1
    assert captured.err == ""


def test_detect_with_global_rx_fused(
    model_file: Path, scene_path: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "scores.tif"
    args = ["detect", str(scene_path), str(output), "--model", str(model_file), "--quiet"]
    status = main([*args, "--device", "cpu", "--rx-weight", "0.5"])
    captured = capsys.readouterr()
    assert status == 0 and output.exists()
    assert "+ global RX (weight 0.5) |" in captured.out
    line = _run_error([*args, "--rx-weight", "1"], capsys)
    assert "weight of global RX must be at least 0 and below 1" in line


def test_detect_with_tile_statistics(
    model_file: Path, scene_path: Path, tmp_path: Path, capsys
) -> None:
    args = ["detect", str(scene_path), "--model", str(model_file), "--device", "cpu", "--quiet"]
    tiling = ["--tile", "32", "--halo", "8", "--scale", "1"]
    assert main([*args[:2], str(tmp_path / "r.tif"), *args[2:], *tiling]) == 0
    assert "statistics per tile" not in capsys.readouterr().out
    scope = ["--normalisation-scope", "tile"]
    assert main([*args[:2], str(tmp_path / "t.tif"), *args[2:], *tiling, *scope]) == 0
    assert "| statistics per tile |" in capsys.readouterr().out
    raster, tile = (gdal.Open(str(tmp_path / name)).ReadAsArray() for name in ("r.tif", "t.tif"))
    assert np.abs(raster - tile).max() > 1e-4


def test_detect_with_views(model_file: Path, scene_path: Path, tmp_path: Path, capsys) -> None:
    args = ["detect", str(scene_path), "--model", str(model_file), "--device", "cpu", "--quiet"]
    assert main([*args[:2], str(tmp_path / "one.tif"), *args[2:], "--scale", "1"]) == 0
    assert " views |" not in capsys.readouterr().out
    views = ["--scale", "1", "--views", "4"]
    assert main([*args[:2], str(tmp_path / "four.tif"), *args[2:], *views]) == 0
    assert "| 4 views |" in capsys.readouterr().out
    one, four = (gdal.Open(str(tmp_path / name)).ReadAsArray() for name in ("one.tif", "four.tif"))
    assert np.abs(one - four).max() > 1e-4


def test_detect_with_a_fusion_power(
    model_file: Path, scene_path: Path, tmp_path: Path, capsys
) -> None:
    args = ["detect", str(scene_path), "--model", str(model_file), "--device", "cpu", "--quiet"]
    scales = ["--scale", "0.5,1"]
    assert main([*args[:2], str(tmp_path / "mean.tif"), *args[2:], *scales]) == 0
    assert "fusion power" not in capsys.readouterr().out
    power = [*scales, "--fusion-power", "8"]
    assert main([*args[:2], str(tmp_path / "p8.tif"), *args[2:], *power]) == 0
    assert "scale 0.5, 1 (fusion power 8) |" in capsys.readouterr().out
    mean, p8 = (gdal.Open(str(tmp_path / name)).ReadAsArray() for name in ("mean.tif", "p8.tif"))
    assert (p8 >= mean - 1e-5).all() and np.abs(p8 - mean).max() > 1e-3
    bad = [*args[:2], str(tmp_path / "bad.tif"), *args[2:], *scales, "--fusion-power", "0.5"]
    assert "fusion power must be at least 1" in _run_error(bad, capsys)


def _run_error(args: list, capsys) -> str:
    status = main(args)
    captured = capsys.readouterr()
    assert status == EXIT_USER_ERROR
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_missing_input(model_file: Path, tmp_path: Path, capsys) -> None:
    line = _run_error(
        [
            "detect",
            str(tmp_path / "nope.tif"),
            str(tmp_path / "o.tif"),
            "--model",
            str(model_file),
            "--quiet",
        ],
        capsys,
    )
    assert line.startswith("uniadrs: error: input raster not found")


def test_not_a_raster(model_file: Path, tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    line = _run_error(
        ["detect", str(text), str(tmp_path / "o.tif"), "--model", str(model_file), "--quiet"],
        capsys,
    )
    assert "not a raster" in line


def test_band_out_of_range(model_file: Path, scene_path: Path, tmp_path: Path, capsys) -> None:
    line = _run_error(
        [
            "detect",
            str(scene_path),
            str(tmp_path / "o.tif"),
            "--model",
            str(model_file),
            "--bands",
            "2,9",
            "--quiet",
        ],
        capsys,
    )
    assert "band 9 is out of range" in line
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("kind", ["pickle", "random", "missing"])
def test_foreign_model_file(scene_path: Path, tmp_path: Path, capsys, kind: str) -> None:
    model = tmp_path / "model.safetensors"
    if kind == "pickle":
        model.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    elif kind == "random":
        model.write_bytes(np.random.default_rng(0).bytes(256))
    line = _run_error(
        ["detect", str(scene_path), str(tmp_path / "o.tif"), "--model", str(model), "--quiet"],
        capsys,
    )
    assert line.startswith("uniadrs: error:") and "model" in line
    assert not (tmp_path / "o.tif").exists()


def test_unavailable_device(model_file: Path, scene_path: Path, tmp_path: Path, capsys) -> None:
    line = _run_error(
        [
            "detect",
            str(scene_path),
            str(tmp_path / "o.tif"),
            "--model",
            str(model_file),
            "--device",
            "quantum",
            "--quiet",
        ],
        capsys,
    )
    assert "unknown device" in line


def test_networks_of_a_single_network_model(
    model_file: Path, scene_path: Path, tmp_path: Path, capsys
) -> None:
    arguments = ["detect", str(scene_path), str(tmp_path / "o.tif"), "--model", str(model_file)]
    line = _run_error([*arguments, "--networks", "2", "--quiet"], capsys)
    assert "network 2 does not exist: the model has 1 network (numbered 1 to 1)" in line
    assert main([*arguments, "--networks", "1", "--quiet"]) == 0
    assert "| 1 network |" in capsys.readouterr().out


def test_bad_option_values_are_usage_errors(scene_path: Path, tmp_path: Path, capsys) -> None:
    for option in (
        ["--bands", "1-x"],
        ["--tile", "0"],
        ["--scale", "a"],
        ["--networks", "0"],
        ["--normalisation-scope", "crop"],
        ["--views", "3"],
        ["--views", "two"],
    ):
        with pytest.raises(SystemExit) as caught:
            main(["detect", str(scene_path), str(tmp_path / "o.tif"), *option])
        assert caught.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_prints_one_line(tmp_path: Path) -> None:
    """The installed entry point, in a fresh process: one line on stderr, exit 2."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uniadrs_engine",
            "detect",
            str(tmp_path / "nope.tif"),
            str(tmp_path / "o.tif"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_USER_ERROR
    assert result.stderr.strip().count("\n") == 0 and "not found" in result.stderr


def _scores_and_metadata(path: Path) -> tuple:
    dataset = gdal.Open(str(path))
    values = dataset.GetRasterBand(1).ReadAsArray()
    metadata = dataset.GetMetadata()
    dataset = None
    return values, metadata


def test_nodata_values_score_as_the_file_s_declared_nodata(
    model_file: Path, tmp_path: Path, capsys
) -> None:
    image, _ = anomaly_scene(rows=48, cols=64, bands=3, seed=1, dtype="uint16")
    image[:, :6, :] = 9  # a fill collar the first file does not declare
    undeclared = write_raster(tmp_path / "undeclared.tif", image)
    declared = write_raster(tmp_path / "declared.tif", image, nodata=9)
    options = ["--model", str(model_file), "--device", "cpu", "--quiet", "--scale", "1"]

    def detect(source: Path, name: str, *extra: str) -> tuple:
        assert main(["detect", str(source), str(tmp_path / name), *options, *extra]) == 0
        return _scores_and_metadata(tmp_path / name)

    given, metadata = detect(undeclared, "given.tif", "--nodata", "9")
    assert metadata["UNIADRS_NODATA"] == "9"
    np.testing.assert_array_equal(given, detect(declared, "declared_scores.tif")[0])
    assert (given[:6] == SCORE_NODATA).all() and (given[6:] != SCORE_NODATA).all()
    ignored, metadata = detect(declared, "ignored.tif", "--ignore-file-nodata")
    assert metadata["UNIADRS_NODATA"] == "the file's nodata ignored"
    np.testing.assert_array_equal(ignored, detect(undeclared, "plain.tif")[0])
    assert (ignored != SCORE_NODATA).all()
    assert "UNIADRS_NODATA" not in detect(declared, "again.tif")[1]
    with pytest.raises(SystemExit) as caught:
        main(["detect", str(declared), str(tmp_path / "x.tif"), "--nodata", "9,z"])
    assert caught.value.code == 2
    assert "'z' is not a number" in capsys.readouterr().err
