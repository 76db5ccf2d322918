from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from osgeo import gdal

from uniadrs_engine.errors import CancelledError
from uniadrs_engine.simulation.export import simulate_to_dir


def read(path):
    dataset = gdal.Open(str(path))
    array = dataset.ReadAsArray()
    return dataset, array


def test_writes_image_label_pairs_a_contact_sheet_and_an_index(background_tree, tmp_path):
    calls = []
    written = simulate_to_dir(
        [background_tree / "hsi", background_tree / "visible"],
        tmp_path / "out",
        n=6,
        seed=2,
        size=32,
        exclude=["landslide"],
        progress=lambda fraction, message: calls.append(fraction),
    )
    out = tmp_path / "out"
    assert [path.name for path in written[:4]] == [
        "sample_0000_image.tif",
        "sample_0000_labels.tif",
        "sample_0001_image.tif",
        "sample_0001_labels.tif",
    ]
    assert {path.name for path in written[-3:]} == {
        "contact_sheet.png",
        "samples.csv",
        "simulation.json",
    }
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in written)
    assert calls[-1] == 1.0
    with open(out / "samples.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    for index, row in enumerate(rows):
        image, pixels = read(out / f"sample_{index:04d}_image.tif")
        labels, classes = read(out / f"sample_{index:04d}_labels.tif")
        assert image.GetRasterBand(1).DataType == gdal.GDT_Float32
        assert labels.GetRasterBand(1).DataType == gdal.GDT_Byte
        assert labels.GetRasterBand(1).GetRasterColorTable() is not None
        assert (image.RasterXSize, image.RasterYSize) == (32, 32) == classes.shape
        assert set(np.unique(classes)) <= {0, 1, 2, 3} and (classes == 1).any()
        assert image.GetMetadata()["UNIADRS_KIND"] == row["kind"]
        assert int(row["channels"]) == image.RasterCount
        if row["kind"] == "spectral":  # every usable band, in order
            descriptions = [
                image.GetRasterBand(b + 1).GetDescription() for b in range(image.RasterCount)
            ]
            assert descriptions[0] == "source band 1" and image.RasterCount == 20
    settings = json.loads((out / "simulation.json").read_text())
    assert settings["seed"] == 2 and len(settings["simulator"]["backgrounds"]) == 4
    header = (out / "contact_sheet.png").read_bytes()[:8]
    assert header == b"\x89PNG\r\n\x1a\n"


def test_same_seed_writes_the_same_samples(background_tree, tmp_path):
    for name in ("a", "b"):
        simulate_to_dir([background_tree], tmp_path / name, n=3, seed=5, size=32, out_channels=16)
    for index in range(3):
        for suffix in ("image", "labels"):
            _, first = read(tmp_path / "a" / f"sample_{index:04d}_{suffix}.tif")
            _, second = read(tmp_path / "b" / f"sample_{index:04d}_{suffix}.tif")
            np.testing.assert_array_equal(first, second)


def test_a_shorter_run_into_the_same_folder_leaves_no_stale_samples(background_tree, tmp_path):
    simulate_to_dir([background_tree], tmp_path, n=4, seed=5, size=32, out_channels=16)
    (tmp_path / "sample_notes.tif").write_text("a file of the user's")
    simulate_to_dir([background_tree], tmp_path, n=2, seed=6, size=32, out_channels=16)
    samples = sorted(path.name for path in tmp_path.glob("sample_*"))
    assert samples == [
        "sample_0000_image.tif",
        "sample_0000_labels.tif",
        "sample_0001_image.tif",
        "sample_0001_labels.tif",
        "sample_notes.tif",
    ]


def test_cancelling_leaves_nothing_behind(background_tree, tmp_path):
    checks = []

    def is_cancelled():
        checks.append(1)
        return len(checks) > 3

    with pytest.raises(CancelledError):
        simulate_to_dir(
            [background_tree], tmp_path / "out", n=10, seed=0, size=32, is_cancelled=is_cancelled
        )
    assert not (tmp_path / "out").exists()  # made for the run, not left behind empty
    existing = tmp_path / "mine"
    existing.mkdir()
    checks.clear()
    with pytest.raises(CancelledError):
        simulate_to_dir(
            [background_tree], existing, n=10, seed=0, size=32, is_cancelled=is_cancelled
        )
    assert existing.is_dir() and list(existing.iterdir()) == []  # the user's folder stays
