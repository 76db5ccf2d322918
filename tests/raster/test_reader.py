"""Tests of windowed raster reading: georeference, nodata, types, formats, band selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

import uniadrs_engine.raster.reader as reader_module
from tests.raster_factory import DEFAULT_GEOTRANSFORM, write_netcdf, write_paletted, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import (
    RasterSource,
    Window,
    band_holds_value,
    describe_bands,
    open_raster,
    select_bands,
    subdataset_names,
)


def _ramp(bands: int, rows: int, cols: int, dtype: str) -> np.ndarray:
    values = np.arange(bands * rows * cols).reshape(bands, rows, cols)
    return values.astype(dtype)


def test_reads_georeference_and_metadata(make_raster) -> None:
    path = make_raster(_ramp(3, 5, 7, "float32"))
    with open_raster(path) as source:
        assert isinstance(source, RasterSource)
        assert (source.width, source.height) == (7, 5)
        assert source.band_indices == [1, 2, 3]
        assert source.band_count == 3
        assert source.dtype == np.float32
        assert source.geotransform == pytest.approx(DEFAULT_GEOTRANSFORM)
        assert "32633" in source.projection or "UTM" in source.projection
        assert source.nodata == [None, None, None]
        assert source.block_size[0] >= 1 and source.block_size[1] >= 1
        assert source.pixel_size == pytest.approx((10.0, 10.0))


def test_window_data_and_band_selection_order(make_raster) -> None:
    image = _ramp(4, 6, 8, "float32")
    path = make_raster(image)
    with open_raster(path, bands=[3, 1]) as source:
        block = source.read_window(Window(2, 1, 5, 3))
    assert block.data.dtype == np.float32
    assert block.data.shape == (2, 3, 5)
    np.testing.assert_array_equal(block.data[0], image[2, 1:4, 2:7])
    np.testing.assert_array_equal(block.data[1], image[0, 1:4, 2:7])
    assert block.valid.dtype == bool and block.valid.all()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int32", "float32", "float64"])
def test_integer_and_float_types(make_raster, dtype: str) -> None:
    image = _ramp(2, 4, 6, dtype)
    path = make_raster(image, name=f"{dtype}.tif")
    with open_raster(path) as source:
        assert source.dtype == np.dtype(dtype)
        block = source.read_window(source.full_window())
    assert block.data.dtype == np.float32
    np.testing.assert_array_equal(block.data, image.astype(np.float32))


def test_nodata_of_any_band_invalidates_the_pixel(make_raster) -> None:
    image = _ramp(2, 4, 5, "int16") + 1
    image[0, 1, 2] = -5
    image[1, 3, 4] = -5
    path = make_raster(image, nodata=-5)
    with open_raster(path) as source:
        assert source.nodata == [-5.0, -5.0]
        block = source.read_window(source.full_window())
    expected = np.ones((4, 5), dtype=bool)
    expected[1, 2] = expected[3, 4] = False
    np.testing.assert_array_equal(block.valid, expected)
    assert (block.data[:, ~expected] == 0).all()


def test_band_counts_say_where_each_band_holds_a_value(make_raster) -> None:
    image = _ramp(3, 4, 5, "float32") + 1
    image[1] = -5  # a band of nodata only
    image[2, 0, :2] = np.nan
    image[0, 3, 4] = -5
    path = make_raster(image, nodata=-5)
    with open_raster(path, bands=[3, 2, 1]) as source:
        block = source.read_window(Window(0, 0, 5, 4))
    np.testing.assert_array_equal(block.band_counts, [18, 0, 19])
    assert not block.valid.any()  # the empty band leaves no pixel with every band


def _with_internal_mask(path: Path, masked: tuple) -> Path:
    """A 4x3 two-band byte GeoTIFF of 7s whose internal mask hides the pixels ``masked``."""
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 4, 3, 2, gdal.GDT_Byte)
    for index in (1, 2):
        dataset.GetRasterBand(index).WriteArray(np.full((3, 4), 7, dtype=np.uint8))
    dataset.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask = np.full((3, 4), 255, dtype=np.uint8)
    mask[masked] = 0
    dataset.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    dataset = None
    return path


def test_band_counts_stay_inside_an_explicit_mask(tmp_path: Path) -> None:
    path = _with_internal_mask(tmp_path / "masked.tif", (0, slice(0, 3)))
    with open_raster(path) as source:
        block = source.read_window(source.full_window())
    np.testing.assert_array_equal(block.band_counts, [9, 9])
    assert block.valid.sum() == 9


def test_band_holds_value_compares_nodata_exactly() -> None:
    values = np.array([2**24, 2**24 + 1, 0], dtype=np.int32)  # one apart in float32
    np.testing.assert_array_equal(band_holds_value(values, float(2**24)), [False, True, True])
    floats = np.array([np.nan, np.inf, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(band_holds_value(floats, 3.0), [False, False, True, False])
    nan = float("nan")
    np.testing.assert_array_equal(band_holds_value(floats, nan), [False, False, True, True])
    np.testing.assert_array_equal(band_holds_value(floats, None), [False, False, True, True])


def test_a_float32_nodata_float32_cannot_hold_is_matched_as_gdal_matches_it(tmp_path) -> None:
    """-9999.9 (an ENVI header's, a hand-written VRT's) is -9999.900390625 in a float32
    band's pixels."""
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    values[:, 0, :] = np.float32(-9999.9)
    path = write_raster(tmp_path / "scene.img", values, nodata=-9999.9, driver="ENVI")
    with open_raster(path) as source:
        assert source.nodata == [float(np.float32(-9999.9))] * 2
        block = source.read_window(source.full_window())
    assert block.valid.sum() == 8 and not block.valid[0].any()
    dataset = gdal.Open(str(path))  # kept while its band is read
    gdal_mask = dataset.GetRasterBand(1).GetMaskBand().ReadAsArray()
    dataset = None
    np.testing.assert_array_equal(block.valid, gdal_mask > 0)


def test_values_are_read_in_the_units_gdal_scale_and_offset_give(tmp_path) -> None:
    """Stored integers of 0.001 units, offset by -1; the nodata test is on stored values."""
    stored = np.array([[[0, 1000, 2500], [40000, 7, 0]]], dtype=np.uint16)
    path = write_raster(tmp_path / "scaled.tif", stored, nodata=0)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    band = dataset.GetRasterBand(1)
    band.SetScale(0.001)
    band.SetOffset(-1.0)
    band = dataset = None
    with open_raster(path) as source:
        assert source.unscaling == [(0.001, -1.0)]
        block = source.read_window(source.full_window())
    np.testing.assert_array_equal(block.valid, stored[0] != 0)
    np.testing.assert_allclose(
        block.data[0][block.valid], [0.0, 1.5, 39.0, -0.993], rtol=1e-6, atol=1e-6
    )
    assert np.all(block.data[0][~block.valid] == 0.0)
    with open_raster(path, stored=True) as mask:  # a mask's values count as stored
        assert mask.unscaling == [None]
        np.testing.assert_array_equal(mask.read_window(mask.full_window()).data[0], stored[0])
    offset = tmp_path / "offset.tif"  # float32 would round 1e8 + 1 and 1e8 + 2 together
    write_raster(offset, np.array([[[1, 2, 3]]], dtype=np.uint16))
    dataset = gdal.Open(str(offset), gdal.GA_Update)
    dataset.GetRasterBand(1).SetOffset(1e8)
    dataset = None
    with open_raster(offset, exact=True) as source:
        assert source.value_dtype == np.float64
        values = source.read_window(source.full_window()).data[0, 0]
    assert values.tolist() == [1e8 + 1, 1e8 + 2, 1e8 + 3]


def test_describe_bands_joins_runs() -> None:
    assert describe_bands([7]) == "band 7"
    assert describe_bands([1, 2, 3, 9, 11, 12]) == "bands 1-3, 9, 11-12"


def test_complex_values_are_read_as_their_amplitude(tmp_path: Path) -> None:
    path = tmp_path / "slc.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 3, 2, 1, gdal.GDT_CInt16)
    values = np.array([[3 + 4j, -6 + 8j, 0j], [1j, -2, 5 - 12j]], dtype=np.complex64)
    dataset.GetRasterBand(1).WriteArray(values)
    dataset.GetRasterBand(1).SetNoDataValue(0)
    dataset = None
    with open_raster(path) as source:
        assert source.complex_bands and source.dtype.kind == "c"
        block = source.read_window(source.full_window())
    np.testing.assert_allclose(block.data[0], [[5, 10, 0], [1, 2, 13]], rtol=1e-6)
    np.testing.assert_array_equal(block.valid, [[True, True, False], [True, True, True]])
    assert block.data.dtype == np.float32


def test_nodata_is_per_selected_band(make_raster) -> None:
    image = _ramp(2, 3, 3, "int16") + 1
    image[1, 0, 0] = -5
    path = make_raster(image, nodata=-5)
    with open_raster(path, bands=[1]) as source:
        assert source.read_window(source.full_window()).valid.all()
    with open_raster(path, bands=[2]) as source:
        assert not source.read_window(source.full_window()).valid[0, 0]


def test_non_finite_values_are_invalid(make_raster) -> None:
    image = np.ones((2, 3, 4), dtype=np.float32)
    image[0, 0, 0] = np.nan
    image[1, 2, 3] = np.inf
    path = make_raster(image, nodata=np.nan)
    with open_raster(path) as source:
        block = source.read_window(source.full_window())
    assert block.valid.sum() == 10
    assert not block.valid[0, 0] and not block.valid[2, 3]
    assert np.isfinite(block.data).all()


def test_large_integer_nodata_compared_exactly(make_raster) -> None:
    """16777217 is not a float32 value: the comparison must happen before the cast."""
    image = np.full((1, 2, 2), 16777216, dtype=np.int32)
    image[0, 0, 0] = 16777217
    path = make_raster(image, nodata=16777217)
    with open_raster(path) as source:
        valid = source.read_window(source.full_window()).valid
    np.testing.assert_array_equal(valid, [[False, True], [True, True]])


def test_float64_values_beyond_float32_are_invalid(make_raster) -> None:
    image = np.ones((1, 2, 2), dtype=np.float64)
    image[0, 1, 1] = 1e300
    path = make_raster(image)
    with open_raster(path) as source:
        block = source.read_window(source.full_window())
    assert not block.valid[1, 1] and block.valid.sum() == 3
    assert np.isfinite(block.data).all()


def test_zero_valid_pixels_reads_an_empty_mask(make_raster) -> None:
    path = make_raster(np.zeros((2, 3, 3), dtype=np.uint8), nodata=0)
    with open_raster(path) as source:
        block = source.read_window(source.full_window())
    assert not block.valid.any()


def test_envi_format(tmp_path: Path) -> None:
    image = _ramp(3, 4, 5, "int16")
    path = write_raster(tmp_path / "scene.img", image, driver="ENVI", nodata=7)
    assert (tmp_path / "scene.hdr").exists()
    with open_raster(path, bands=[2, 3]) as source:
        assert source.dtype == np.int16
        assert source.geotransform == pytest.approx(DEFAULT_GEOTRANSFORM)
        assert source.nodata == [7.0, 7.0]
        block = source.read_window(Window(1, 1, 3, 2))
    np.testing.assert_array_equal(block.data, image[1:, 1:3, 1:4].astype(np.float32))
    assert block.valid.all()


def _envi_with_bad_bands(tmp_path: Path, bbl: str, bands: int = 5) -> Path:
    path = write_raster(tmp_path / "cube.img", _ramp(bands, 4, 5, "float32"), driver="ENVI")
    header = tmp_path / "cube.hdr"
    header.write_text(header.read_text().rstrip() + f"\nbbl = {bbl}\n")
    return path


def test_an_envi_bad_band_list_leaves_its_bands_out_of_the_default_selection(
    tmp_path: Path,
) -> None:
    path = _envi_with_bad_bands(tmp_path, "{1, 1, 0, 1, 0}")
    assert select_bands(path) == ([1, 2, 4], (3, 5))
    assert select_bands(path, [5, 3]) == ([5, 3], ())  # a selection is kept as asked


@pytest.mark.parametrize("bbl", ["{0, 0, 0}", "{1, 0}", "{1, a, 0}", "{}"])
def test_a_bad_band_list_that_marks_every_band_or_does_not_fit_is_ignored(
    tmp_path: Path, bbl: str
) -> None:
    assert select_bands(_envi_with_bad_bands(tmp_path, bbl, bands=3)) == (None, ())


def _rgba(path: Path) -> Path:
    image = _ramp(4, 4, 5, "uint8")
    image[3] = 255
    image[3, 0, :2] = 0  # transparent
    write_raster(path, image)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    dataset = None
    return path


def test_an_alpha_band_masks_the_others_and_is_left_out_of_the_default_selection(
    tmp_path: Path,
) -> None:
    path = _rgba(tmp_path / "rgba.tif")
    assert select_bands(path) == ([1, 2, 3], ())  # not a bad band: nothing to warn about
    assert select_bands(path, [1, 4]) == ([1, 4], ())
    with open_raster(path, bands=[1, 2, 3]) as source:
        block = source.read_window(source.full_window())
    assert not block.valid[0, :2].any() and block.valid[1:].all()


def test_an_alpha_band_masks_the_others_whatever_the_band_count(tmp_path: Path) -> None:
    image = _ramp(5, 4, 5, "uint8")
    image[4] = 255
    image[4, 2, 1:4] = 0  # transparent
    path = write_raster(tmp_path / "rgbn_alpha.tif", image)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.GetRasterBand(5).SetColorInterpretation(gdal.GCI_AlphaBand)
    dataset = None
    bands, _ = select_bands(path)
    assert bands == [1, 2, 3, 4]
    with open_raster(path, bands=bands) as source:  # GDAL itself masks only 2 or 4 bands
        block = source.read_window(source.full_window())
    expected = np.ones((4, 5), dtype=bool)
    expected[2, 1:4] = False
    np.testing.assert_array_equal(block.valid, expected)


def test_a_paletted_raster_is_read_as_its_colours(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2, 3, 2], [3, 2, 1, 0, 1]], dtype=np.uint8)
    path = write_paletted(tmp_path / "paletted.tif", indices, nodata=3)
    with open_raster(path, colours=True) as source:
        assert source.band_count == 3 and source.dtype == np.uint8
        assert source.nodata == [None, None, None]
        block = source.read_window(source.full_window())
    colours = np.array([[0, 60, 120, 180], [255, 195, 135, 75], [0, 10, 20, 30]], np.float32)
    valid = indices != 3
    np.testing.assert_array_equal(block.valid, valid)
    np.testing.assert_array_equal(block.data[:, valid], colours[:, indices[valid]])
    with open_raster(path, bands=[3, 1], colours=True) as source:
        block = source.read_window(Window(0, 0, 3, 1))
    np.testing.assert_array_equal(block.data[:, 0], [[0, 10, 20], [0, 60, 120]])
    with pytest.raises(InputError, match=r"band 4 is out of range .*3 band\(s\) \(colours"):
        open_raster(path, bands=[4], colours=True)
    assert select_bands(path) == (None, ())
    with open_raster(path) as source:  # a mask or a class map: its indices are what it says
        assert source.band_count == 1 and source.nodata == [3.0]
        block = source.read_window(source.full_window())
    np.testing.assert_array_equal(block.data[0][valid], indices[valid])


def test_a_container_names_its_subdatasets(tmp_path: Path) -> None:
    path = write_netcdf(tmp_path / "multi.nc", {name: np.ones((4, 5)) for name in "abcd"})
    with pytest.raises(InputError) as caught:
        open_raster(path)
    message = str(caught.value)
    assert "has no raster band of its own: pass one of its subdatasets instead" in message
    assert f'NETCDF:"{path}":a' in message and message.endswith("and 1 more")


def test_subdatasets_are_named_in_gdal_order_past_nine(tmp_path: Path) -> None:
    names = [f"v{number}" for number in range(1, 13)]
    path = write_netcdf(tmp_path / "many.nc", {name: np.ones((2, 3)) for name in names})
    with pytest.raises(InputError) as caught:
        open_raster(path)
    message = str(caught.value)
    shown = ", ".join(f'NETCDF:"{path}":{name}' for name in names[:3])
    assert message.endswith(f"{shown} and 9 more")
    assert subdataset_names(gdal.Open(str(path)))[9:] == [
        f'NETCDF:"{path}":v{n}' for n in (10, 11, 12)
    ]


def test_raster_without_georeference(make_raster) -> None:
    path = make_raster(np.ones((1, 3, 3), dtype=np.float32), epsg=None)
    with open_raster(path) as source:
        assert source.projection == ""


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_raster(tmp_path / "missing.tif")


def test_not_a_raster(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("this is not a raster\n")
    with pytest.raises(InputError, match="not a raster"):
        open_raster(path)


def test_folder_is_not_a_raster(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder"):
        open_raster(tmp_path)


def test_zero_size_raster(tmp_path: Path) -> None:
    """GDAL itself refuses 0x0 rasters; the user still gets one line, no traceback."""
    path = tmp_path / "empty.vrt"
    path.write_text('<VRTDataset rasterXSize="0" rasterYSize="0"></VRTDataset>')
    with pytest.raises(InputError) as caught:
        open_raster(path)
    assert "\n" not in str(caught.value)


def test_vector_file_has_no_bands(tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
        ' "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}]}'
    )
    with pytest.raises(InputError, match="no raster band"):
        open_raster(path)


@pytest.mark.parametrize("bands", [[0], [4], [1, 5], []])
def test_band_out_of_range(make_raster, bands: list) -> None:
    path = make_raster(np.ones((3, 2, 2), dtype=np.float32))
    with pytest.raises(InputError) as caught:
        open_raster(path, bands=bands)
    message = str(caught.value)
    assert "\n" not in message
    assert "band" in message


def test_window_outside_raster(make_raster) -> None:
    path = make_raster(np.ones((1, 3, 3), dtype=np.float32))
    with open_raster(path) as source, pytest.raises(InputError, match="outside"):
        source.read_window(Window(2, 0, 2, 1))


def test_closed_source_raises(make_raster) -> None:
    path = make_raster(np.ones((1, 3, 3), dtype=np.float32))
    source = open_raster(path)
    source.close()
    with pytest.raises(InputError, match="closed"):
        source.read_window(Window(0, 0, 1, 1))


def test_reads_gdal_virtual_names(tmp_path: Path) -> None:
    image = _ramp(1, 3, 4, "float32")
    path = write_raster(tmp_path / "a.tif", image)
    vsi_path = "/vsimem/uniadrs_reader_test.tif"
    gdal.Translate(vsi_path, str(path))
    try:
        with open_raster(vsi_path) as source:
            block = source.read_window(source.full_window())
        np.testing.assert_array_equal(block.data, image)
    finally:
        gdal.Unlink(vsi_path)


def test_internal_mask_and_alpha_band_invalidate_pixels(tmp_path: Path) -> None:
    path = _with_internal_mask(tmp_path / "masked.tif", (1, 2))
    with open_raster(path) as source:
        valid = source.read_window(source.full_window()).valid
    assert not valid[1, 2] and valid.sum() == 11

    rgba = np.full((4, 3, 4), 9, dtype=np.uint8)
    rgba[3] = 255
    rgba[3, 0, 0] = 0
    alpha_path = tmp_path / "rgba.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(alpha_path), 4, 3, 4, gdal.GDT_Byte, options=["PHOTOMETRIC=RGB", "ALPHA=YES"]
    )
    for index in range(4):
        dataset.GetRasterBand(index + 1).WriteArray(rgba[index])
    dataset = None
    with open_raster(alpha_path, bands=[1, 2, 3]) as source:
        block = source.read_window(Window(0, 0, 2, 2))
    assert not block.valid[0, 0] and block.valid.sum() == 3
    assert block.data[:, 0, 0].tolist() == [0.0, 0.0, 0.0]


def test_a_raster_that_cannot_be_read_for_permissions_says_so(tmp_path, monkeypatch) -> None:
    path = tmp_path / "private.tif"
    path.write_bytes(b"not readable by this user")  # GDAL cannot open what it cannot read
    # The tests run as root, who may read every file: os.access stands in for a user.
    monkeypatch.setattr(reader_module.os, "access", lambda name, mode: Path(name) != path)
    with pytest.raises(InputError, match="cannot read .*private.tif: permission denied"):
        open_raster(path)


def test_a_crs_given_replaces_the_file_s(tmp_path: Path) -> None:
    from tests.raster_factory import set_ground_points

    path = write_raster(tmp_path / "no_crs.tif", np.ones((1, 4, 5), np.float32), epsg=None)
    with open_raster(path) as source:
        assert source.projection == ""
    with open_raster(path, crs="EPSG:32633") as source:
        reference = osr.SpatialReference(wkt=source.projection)
        assert reference.GetAuthorityCode(None) == "32633"
    with pytest.raises(InputError, match="not a coordinate reference system"):
        open_raster(path, crs="EPSG:not-a-code")
    points = set_ground_points(
        write_raster(tmp_path / "gcps.tif", np.ones((1, 10, 20), np.float32), epsg=None),
        [(0, 0, 10.0, 50.0), (20, 0, 10.2, 50.0), (0, 10, 10.0, 49.9)],
        epsg=None,
    )
    with open_raster(points, crs="EPSG:4326") as source:  # the points' CRS, then
        assert "WGS 84" in source.gcp_projection and source.projection == ""
