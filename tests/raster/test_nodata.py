"""Tests of the no-data rule: parsing, matching, and how reading a raster applies it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.raster.test_reader import _paletted
from tests.raster_factory import write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.nodata import (
    NodataRange,
    NodataRule,
    nodata_provenance,
    parse_nodata_values,
)
from uniadrs_engine.raster.reader import open_raster


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", [(0.0, 0.0)]),
        ("0, 255", [(0.0, 0.0), (255.0, 255.0)]),
        ("-9999;0 255", [(-9999.0, -9999.0), (0.0, 0.0), (255.0, 255.0)]),
        ("..-1000", [(-math.inf, -1000.0)]),
        ("250..", [(250.0, math.inf)]),
        ("-10 .. -5, 3", [(-10.0, -5.0), (3.0, 3.0)]),
        ("", []),
        ("  ", []),
    ],
)
def test_parse_values_and_ranges(text, expected) -> None:
    parsed = parse_nodata_values(text)
    assert [(item.low, item.high) for item in parsed] == expected
    assert all(item.include_low and item.include_high for item in parsed)


@pytest.mark.parametrize("text", ["abc", "0,x", "nan", "5..1", "..", "1..2..3"])
def test_bad_lists_are_refused_naming_the_item(text) -> None:
    with pytest.raises(InputError, match="no-data"):
        parse_nodata_values(text)


def test_a_range_matches_its_bounds_as_they_are_included() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert NodataRange(2, 4).matches(values).tolist() == [False, True, True, True, False]
    exclusive = NodataRange(2, 4, include_low=False, include_high=False)
    assert exclusive.matches(values).tolist() == [False, False, True, False, False]
    assert NodataRange(-math.inf, 2).matches(values).tolist() == [True, True, False, False, False]
    assert exclusive.describe() == "2..4 (bounds excluded: both)"
    assert NodataRange(-math.inf, 2).describe() == "..2"


def test_a_float32_value_matches_the_value_float32_stores_for_it() -> None:
    stored = np.array([np.float32(-9999.9), 1.0], dtype=np.float32)
    assert NodataRange(-9999.9, -9999.9).matches(stored).tolist() == [True, False]
    # in float64 the value is compared exactly
    assert NodataRange(-9999.9, -9999.9).matches(stored.astype(np.float64)).tolist() == [
        False,
        False,
    ]


def test_rule_description_and_provenance() -> None:
    rule = NodataRule(ranges=parse_nodata_values("0,..-1000"), use_file_nodata=False)
    assert rule.describe() == "0, ..-1000; the file's nodata ignored"
    assert nodata_provenance(rule) == {"nodata": "0, ..-1000; the file's nodata ignored"}
    assert nodata_provenance(NodataRule()) == {}
    assert not NodataRule().changes_anything


def _collared(tmp_path: Path, nodata=None) -> Path:
    """Three uint8 bands with a black collar (rows 0-1) and one real pixel whose band 1 is 0."""
    image = np.full((3, 6, 5), 100, dtype=np.uint8)
    image[:, :2, :] = 0
    image[0, 4, 2] = 0
    image[:, 5, 4] = 7
    return write_raster(tmp_path / "collar.tif", image, nodata=nodata)


def test_added_values_invalidate_the_pixels_of_any_band_holding_one(tmp_path: Path) -> None:
    path = _collared(tmp_path)
    with open_raster(path, nodata=NodataRule(ranges=parse_nodata_values("0"))) as source:
        block = source.read_window(source.full_window())
    expected = np.ones((6, 5), dtype=bool)
    expected[:2] = False
    expected[4, 2] = False  # as with a file's nodata, one band holding it is enough
    np.testing.assert_array_equal(block.valid, expected)
    assert block.band_counts.tolist() == [19, 20, 20]
    assert np.all(block.data[:, ~expected] == 0)
    with open_raster(path) as plain:  # without a rule every pixel holds data
        assert plain.read_window(plain.full_window()).valid.all()


def test_the_file_s_nodata_can_be_set_aside_or_kept_beside_added_values(tmp_path: Path) -> None:
    path = _collared(tmp_path, nodata=7)
    with open_raster(path) as source:
        assert source.nodata == [7.0] * 3
        assert not source.read_window(source.full_window()).valid[5, 4]
    ignoring = NodataRule(use_file_nodata=False)
    with open_raster(path, nodata=ignoring) as source:
        assert source.nodata == [None] * 3
        assert source.read_window(source.full_window()).valid.all()
    both = NodataRule(ranges=parse_nodata_values("0"))
    with open_raster(path, nodata=both) as source:
        valid = source.read_window(source.full_window()).valid
    assert not valid[5, 4] and not valid[0].any() and valid.sum() == 30 - 10 - 1 - 1


def test_added_values_are_compared_after_scale_and_offset(tmp_path: Path) -> None:
    """As QGIS compares a layer's additional no data values (the file's nodata is stored)."""
    stored = np.array([[[10, 20, 30]]], dtype=np.uint16)
    path = write_raster(tmp_path / "scaled.tif", stored)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.GetRasterBand(1).SetScale(0.5)
    dataset = None
    with open_raster(path, nodata=NodataRule(ranges=parse_nodata_values("10"))) as source:
        assert source.read_window(source.full_window()).valid[0].tolist() == [True, False, True]


def test_a_paletted_image_s_rule_compares_its_indices(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    path = _paletted(tmp_path / "paletted.tif", indices)
    rule = NodataRule(ranges=parse_nodata_values("2"))
    with open_raster(path, colours=True, nodata=rule) as source:
        assert source.read_window(source.full_window()).valid[0].tolist() == [
            True,
            True,
            False,
            True,
        ]
