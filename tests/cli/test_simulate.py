from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.raster_factory import write_raster
from tests.simulation.conftest import build_background_tree
from uniadrs_engine.cli.main import EXIT_USER_ERROR, main


@pytest.fixture(scope="module")
def background_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_background_tree(tmp_path_factory.mktemp("backgrounds"))


def test_simulate_end_to_end(background_tree, tmp_path, capsys):
    out = tmp_path / "samples"
    status = main(
        [
            "simulate",
            str(background_tree / "hsi"),
            str(background_tree / "visible"),
            str(out),
            "-n",
            "4",
            "--seed",
            "3",
            "--size",
            "32",
            "--spectral-share",
            "0.5",
            "--exclude",
            "landslide",
            "nothing-matches",
        ]
    )
    assert status == 0
    assert "contact sheet" in capsys.readouterr().out
    assert (out / "contact_sheet.png").is_file()
    for index in range(4):
        labels = gdal.Open(str(out / f"sample_{index:04d}_labels.tif")).ReadAsArray()
        assert labels.shape == (32, 32) and (labels == 1).any()
    sources = (out / "samples.csv").read_text()
    assert "landslide" not in sources


def test_simulate_reports_user_errors_in_one_line(background_tree, tmp_path, capsys):
    assert (
        main(["simulate", str(background_tree), str(tmp_path / "o"), "--size", "30"])
        == EXIT_USER_ERROR
    )
    assert "multiple of 8" in capsys.readouterr().err
    assert (
        main(["simulate", str(background_tree), str(tmp_path / "o"), "--size", "8"])
        == EXIT_USER_ERROR
    )
    assert "at least 16, not 8" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing"), str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_simulate_config_writes_the_runs_samples(background_tree, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(
        "\n".join(
            [
                f"backgrounds: [{background_tree}]",
                "exclude: [landslide]",
                "model: lite8",
                "crop_size: 32",
                "spectral_share: 0.0",
                "spatial_options: {normal_count: 1, single_channel_probability: 0.0}",
                "seed: 5",
            ]
        ),
        encoding="utf-8",
    )
    out = tmp_path / "preview"
    arguments = ["simulate", str(out), "--config", str(config), "-n", "3"]
    assert main([*arguments, "--set", "crop_size=16"]) == 0
    assert "contact sheet" in capsys.readouterr().out
    for index in range(3):
        image = gdal.Open(str(out / f"sample_{index:04d}_image.tif"))
        assert (image.RasterCount, image.RasterXSize) == (3, 16)
    assert main([*arguments, "--validation"]) == 0
    assert '"samples": "validation"' in (out / "simulation.json").read_text()
    assert gdal.Open(str(out / "sample_0000_image.tif")).RasterXSize == 32
    capsys.readouterr()
    # the validation set holds 2 samples: the progress counts those, not the 5 asked for
    assert main([*arguments[:-1], "5", "--validation", "--set", "validation_samples=2"]) == 0
    err = capsys.readouterr().err
    assert "simulating: 2/2 samples" in err and "/5 samples" not in err
    assert sorted(path.name for path in out.glob("sample_*_image.tif")) == [
        "sample_0000_image.tif",
        "sample_0001_image.tif",
    ]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "64"], "drop --size"),
        (["--seed", "1", "--spectral-share", "0.2"], "drop --seed, --spectral-share"),
        (["--exclude", "landslide"], "drop --exclude"),
        (["--set", "spatial_options={colour: 1}"], "invalid spatial_options"),
        (
            ["--set", "spatial_options={anomaly_area: [0.5, 0.1]}"],
            "invalid spatial_options: anomaly_area must be two numbers",
        ),
        (["--set", "spatial_options={normal_count: abc}"], "invalid spatial_options: normal_count"),
        (
            ["--set", "spectral_options={abundance_range: 5}"],
            "invalid spectral_options: abundance_range must be two numbers",
        ),
        (
            ["--set", "spectral_share=0", "--set", "spectral_options={abundance_rnage: [0.5, 1]}"],
            "invalid spectral_options: unknown option(s) ['abundance_rnage']",
        ),
    ],
)
def test_simulate_config_refuses_conflicting_settings(
    background_tree, tmp_path, capsys, extra, message
):
    config = tmp_path / "run.yaml"
    config.write_text(f"backgrounds: [{background_tree}]\ncrop_size: 32\n", encoding="utf-8")
    status = main(["simulate", str(tmp_path / "o"), "--config", str(config), *extra])
    assert status == EXIT_USER_ERROR
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and len(error.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_simulate_needs_backgrounds_or_a_config(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "or --config" in capsys.readouterr().err
    assert main(["simulate", "a", str(tmp_path / "o"), "--validation"]) == EXIT_USER_ERROR
    assert "go with --config" in capsys.readouterr().err


def test_simulate_refuses_to_write_into_its_backgrounds(background_tree, tmp_path, capsys):
    visible = background_tree / "visible"
    before = sorted(path.name for path in visible.rglob("*"))
    for out in (visible, visible / "samples"):
        status = main(["simulate", str(visible), str(out), "-n", "2", "--size", "32"])
        assert status == EXIT_USER_ERROR
        assert "overlap: samples written there would be read as backgrounds" in (
            capsys.readouterr().err
        )
    assert sorted(path.name for path in visible.rglob("*")) == before
    samples = tmp_path / "samples"
    assert main(["simulate", str(visible), str(samples), "-n", "1", "--size", "32"]) == 0
    sample = samples / "sample_0000_image.tif"
    assert main(["simulate", str(sample), str(samples), "-n", "1", "--size", "32"]) == (
        EXIT_USER_ERROR
    )


def test_nodata_options_leave_a_fill_out_of_the_backgrounds(tmp_path, capsys):
    image = np.random.default_rng(3).integers(40, 200, (3, 64, 64)).astype(np.uint8)
    image[:, :, :32] = 0  # half the tile is an undeclared fill
    (tmp_path / "backgrounds").mkdir()
    write_raster(tmp_path / "backgrounds" / "ortho.tif", image)
    out = tmp_path / "samples"
    arguments = ["simulate", str(tmp_path / "backgrounds"), str(out), "-n", "4", "--size", "32"]
    assert main([*arguments, "--nodata", "0"]) == 0
    assert '"nodata": "0"' in (out / "simulation.json").read_text()
    for index in range(4):
        labels = gdal.Open(str(out / f"sample_{index:04d}_labels.tif")).ReadAsArray()
        images = gdal.Open(str(out / f"sample_{index:04d}_image.tif")).ReadAsArray()
        # a pixel of the fill is never simulated on as a valid background pixel
        assert not ((images == 0).all(axis=0) & (labels == 0)).any()
    config = tmp_path / "run.yaml"
    config.write_text(f"backgrounds: [{tmp_path / 'backgrounds'}]\ncrop_size: 32\n")
    capsys.readouterr()
    assert main(["simulate", str(out), "--config", str(config), "--nodata", "0"]) == 2
    assert "--set nodata=0); drop --nodata" in capsys.readouterr().err
