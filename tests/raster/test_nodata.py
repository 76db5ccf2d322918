"""Tests of the no-data rule: parsing, matching, and how reading a raster applies it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.raster_factory import write_paletted, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.nodata import (
    NodataRange,
    NodataRule,
    nodata_provenance,
    nodata_rule_of,
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


def test_a_value_is_rounded_as_the_band_s_own_type_stores_it() -> None:
    stored = np.array([np.float32(-9999.9), 1.0], dtype=np.float32)
    value = NodataRange(-9999.9, -9999.9)
    assert value.matches(stored).tolist() == [True, False]
    # a float32 band's values read in float64 (beside a float64 band): still float32's
    wide = stored.astype(np.float64)
    assert value.matches(wide, stored_type=np.dtype(np.float32)).tolist() == [True, False]
    # a float64 band's are compared exactly
    assert value.matches(wide).tolist() == [False, False]
    # an integer band read in float32 (values past 2**24 round together there)
    big = np.array([16777216, 16777217], dtype=np.int64)
    assert NodataRange(16777217, 16777217).matches(big).tolist() == [False, True]


def test_a_value_as_read_is_taken_back_through_scale_and_offset() -> None:
    stored = np.array([2, 3, 4], dtype=np.uint16)
    # 3 * 0.1 is 0.30000000000000004: the typed 0.3 is the stored 3 all the same
    assert NodataRange(0.3, 0.3).matches(stored, (0.1, 0.0)).tolist() == [False, True, False]
    assert NodataRange(-0.4, -0.3).matches(stored, (-0.1, 0.0)).tolist() == [False, True, True]
    below = NodataRange(-math.inf, -0.3, include_high=False)  # values as read below -0.3
    assert below.matches(stored, (-0.1, 0.0)).tolist() == [False, False, True]
    floats = np.array([np.float32(-9999.9), 0.5], dtype=np.float32)
    assert NodataRange(-19999.8, -19999.8).matches(floats, (2.0, 0.0)).tolist() == [True, False]
    assert NodataRange(7, 7).matches(stored, (0.0, 7.0)).all()  # every value reads as 7
    assert NodataRange(1e39, 1e39).matches(floats).tolist() == [False, False]  # no warning


def test_descriptions_keep_every_digit() -> None:
    assert NodataRange(-9999999, -9999999).describe() == "-9999999"
    assert NodataRange(1234567, 1234568).describe() == "1234567..1234568"
    assert NodataRange(0.1, 0.1).describe() == "0.1"


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
    path = write_paletted(tmp_path / "paletted.tif", indices)
    rule = NodataRule(ranges=parse_nodata_values("2"))
    with open_raster(path, colours=True, nodata=rule) as source:
        assert source.read_window(source.full_window()).valid[0].tolist() == [
            True,
            True,
            False,
            True,
        ]


@pytest.mark.parametrize(
    ("stored_type", "scale", "offset", "fill", "typed"),
    [
        (np.uint16, 0.1, 0.0, 3, "0.3"),
        (np.int16, 0.0001, 0.0, -28672, "-2.8672"),
        (np.uint16, 0.0001, -0.1, 1, "-0.0999"),
        (np.float32, 2.0, 0.0, np.float32(-9999.9), "-19999.8"),
        (np.int16, -0.5, 10.0, 4, "8"),
    ],
)
def test_a_scaled_band_s_fill_matches_as_if_the_file_declared_it(
    tmp_path: Path, stored_type, scale, offset, fill, typed
) -> None:
    image = np.arange(2, 26, dtype=np.float64).reshape(1, 4, 6).astype(stored_type)
    image[0, 0] = fill
    blocks = []
    for name, nodata in (("declared.tif", float(fill)), ("undeclared.tif", None)):
        path = write_raster(tmp_path / name, image, nodata=nodata)
        dataset = gdal.Open(str(path), gdal.GA_Update)
        dataset.GetRasterBand(1).SetScale(scale)
        dataset.GetRasterBand(1).SetOffset(offset)
        dataset = None
        rule = None if nodata is not None else NodataRule(ranges=parse_nodata_values(typed))
        with open_raster(path, exact=True, nodata=rule) as source:
            blocks.append(source.read_window(source.full_window()))
    declared, given = blocks
    assert not declared.valid[0].any() and declared.valid[1:].all()
    np.testing.assert_array_equal(given.valid, declared.valid)
    np.testing.assert_array_equal(given.data, declared.data)


def test_a_mixed_type_vrt_rounds_each_band_as_its_own_type(tmp_path: Path) -> None:
    """A float64 band beside a float32 one: read in float64, the float32 band's -9999.9 is
    still the -9999.900390625 it stores."""
    wide = np.full((1, 3, 4), 5.0, dtype=np.float64)
    narrow = np.full((1, 3, 4), 6.0, dtype=np.float32)
    narrow[0, 0] = np.float32(-9999.9)
    paths = [
        str(write_raster(tmp_path / "wide.tif", wide)),
        str(write_raster(tmp_path / "narrow.tif", narrow)),
    ]
    gdal.BuildVRT(str(tmp_path / "mixed.vrt"), paths, separate=True).FlushCache()
    rule = NodataRule(ranges=parse_nodata_values("-9999.9"))
    with open_raster(tmp_path / "mixed.vrt", exact=True, nodata=rule) as source:
        assert source.value_dtype == np.float64
        valid = source.read_window(source.full_window()).valid
    assert not valid[0].any() and valid[1:].all()


def test_open_ends_and_empty_ranges_are_described_as_they_match() -> None:
    below = NodataRange(-math.inf, -50, include_low=False)  # QGIS: (NaN, -50, IncludeMax)
    assert below.describe() == "..-50"
    empty = NodataRange(5, 5, include_low=False, include_high=False)
    assert empty.is_empty and not empty.matches(np.array([5.0])).any()
    rule = nodata_rule_of([empty, NodataRange(0, 0), NodataRange(0, 0)])
    assert rule is not None and rule.describe() == "0"
    assert nodata_rule_of([empty]) is None
    assert nodata_rule_of([], use_file_nodata=False).describe() == "the file's nodata ignored"
