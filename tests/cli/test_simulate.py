from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import gdal

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
    assert main(["simulate", str(tmp_path / "missing"), str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
