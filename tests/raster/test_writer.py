"""Tests of score raster writing: grid and CRS copied, nodata, temp-then-rename, abort."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from tests.raster_factory import affine_rpc, write_raster
from uniadrs_engine.errors import InputError
from uniadrs_engine.raster import writer
from uniadrs_engine.raster.reader import Window, open_raster
from uniadrs_engine.raster.writer import (
    SCORE_NODATA,
    ScoreRasterWriter,
    check_geotiff_path,
    check_not_an_input,
    check_output_folder,
    overview_levels,
)


def _read(path: Path) -> gdal.Dataset:
    return gdal.Open(str(path))


def _band_values(path: Path, band: int = 1) -> np.ndarray:
    dataset = gdal.Open(str(path))  # keep the dataset alive while its band is read
    return dataset.GetRasterBand(band).ReadAsArray()


@pytest.fixture
def source_path(make_raster) -> Path:
    return make_raster(np.ones((2, 6, 9), dtype=np.int16), name="input.tif")


def test_copies_grid_and_crs_and_writes_windows(source_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "scores.tif"
    with open_raster(source_path) as source:
        with ScoreRasterWriter(output, source) as writer:
            assert not output.exists()
            writer.write(Window(0, 0, 9, 4), np.full((4, 9), 0.25, dtype=np.float64))
            writer.write(Window(0, 4, 9, 2), np.full((2, 9), 0.75, dtype=np.float32))
        geotransform, projection = source.geotransform, source.projection
    dataset = _read(output)
    assert (dataset.RasterXSize, dataset.RasterYSize, dataset.RasterCount) == (9, 6, 1)
    assert dataset.GetGeoTransform() == pytest.approx(geotransform)
    assert dataset.GetProjection() == projection
    band = dataset.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Float32
    assert band.GetNoDataValue() == SCORE_NODATA
    structure = dataset.GetMetadata("IMAGE_STRUCTURE")
    assert structure.get("COMPRESSION") == "DEFLATE"
    assert band.GetBlockSize() == [256, 256]
    values = band.ReadAsArray()
    np.testing.assert_array_equal(values[:4], 0.25)
    np.testing.assert_array_equal(values[4:], 0.75)
    assert [item.name for item in tmp_path.iterdir() if "partial" in item.name] == []


def test_invalid_and_non_finite_pixels_become_nodata(source_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "scores.tif"
    values = np.full((6, 9), 0.5, dtype=np.float32)
    values[0, 0] = np.nan
    valid = np.ones((6, 9), dtype=bool)
    valid[5, 8] = False
    with open_raster(source_path) as source, ScoreRasterWriter(output, source) as writer:
        writer.write(Window(0, 0, 9, 6), values, valid)
    written = _band_values(output)
    assert written[0, 0] == SCORE_NODATA and written[5, 8] == SCORE_NODATA
    assert (written == 0.5).sum() == 6 * 9 - 2


def test_multi_band_output(source_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "multi.tif"
    source = open_raster(source_path)
    with ScoreRasterWriter(output, source, band_count=2, band_descriptions=["a", "b"]) as out:
        out.write(Window(0, 0, 9, 6), np.stack([np.zeros((6, 9)), np.ones((6, 9))]))
    dataset = _read(output)
    assert dataset.RasterCount == 2
    assert dataset.GetRasterBand(2).GetDescription() == "b"
    np.testing.assert_array_equal(dataset.GetRasterBand(2).ReadAsArray(), 1.0)


def test_mask_writer_from_explicit_grid(tmp_path: Path) -> None:
    output = tmp_path / "mask.tif"
    geotransform = (10.0, 2.0, 0.0, 50.0, 0.0, -2.0)
    mask = np.array([[0, 1, 1], [1, 0, 0]], dtype=np.uint8)
    valid = np.array([[True, True, False], [True, True, True]])
    with ScoreRasterWriter.for_grid(
        output, 3, 2, geotransform, "", dtype=np.uint8, nodata=255
    ) as writer:
        writer.write(Window(0, 0, 3, 2), mask, valid)
    dataset = _read(output)
    band = dataset.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte
    assert band.GetNoDataValue() == 255
    assert dataset.GetGeoTransform() == pytest.approx(geotransform)
    np.testing.assert_array_equal(band.ReadAsArray(), [[0, 1, 255], [1, 0, 0]])


def test_exception_leaves_nothing(source_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "scores.tif"
    source = open_raster(source_path)
    with pytest.raises(RuntimeError, match="boom"), ScoreRasterWriter(output, source) as writer:
        writer.write(Window(0, 0, 9, 6), np.zeros((6, 9)))
        assert writer.temp_path.exists()
        raise RuntimeError("boom")
    source.close()
    assert sorted(item.name for item in tmp_path.iterdir()) == ["input.tif"]


@pytest.mark.parametrize("step", ["set_georeference", "SetNoDataValue", "SetDescription"])
def test_a_stop_while_the_writer_is_set_up_leaves_nothing(
    source_path: Path, tmp_path: Path, monkeypatch, step: str
) -> None:
    """Ctrl-C (or a stop signal) after the file exists, before any ``with`` holds the writer."""

    def interrupted(*_args, **_kwargs):
        assert any(item.name.endswith(".partial.tif") for item in tmp_path.iterdir())
        raise KeyboardInterrupt

    if step == "set_georeference":
        monkeypatch.setattr(writer, "set_georeference", interrupted)
    else:
        monkeypatch.setattr(gdal.Band, step, interrupted)
    _deleting_an_open_file_fails(monkeypatch)
    with open_raster(source_path) as source, pytest.raises(KeyboardInterrupt):
        ScoreRasterWriter(tmp_path / "scores.tif", source, band_descriptions=["scores"])
    assert sorted(item.name for item in tmp_path.iterdir()) == ["input.tif"]


def _deleting_an_open_file_fails(monkeypatch) -> None:
    """Makes ``Path.unlink`` refuse a file this process holds open, as Windows does (Linux)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    unlink = Path.unlink

    def windows_unlink(self, *args, **kwargs):
        held = set()
        for entry in Path("/proc/self/fd").iterdir():
            with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                held.add(os.readlink(entry))
        if str(self.absolute()) in held:
            raise PermissionError(13, "the file is in use", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", windows_unlink)


def test_a_failure_while_a_writer_commits_closes_and_deletes_its_file(
    source_path: Path, tmp_path: Path, monkeypatch
) -> None:
    """Interrupted while GDAL builds the overviews: the traceback still holds the dataset."""

    def interrupted(dataset, *_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gdal.Dataset, "BuildOverviews", interrupted)
    _deleting_an_open_file_fails(monkeypatch)
    with open_raster(source_path) as source:
        writer = ScoreRasterWriter(tmp_path / "scores.tif", source, overviews="AVERAGE")
        monkeypatch.setattr(writer, "width", 5000)  # so that overviews are due
        with pytest.raises(KeyboardInterrupt):
            writer.commit()
    assert sorted(item.name for item in tmp_path.iterdir()) == ["input.tif"]


def test_a_temporary_file_that_cannot_be_deleted_does_not_hide_the_error(
    source_path: Path, tmp_path: Path, monkeypatch
) -> None:
    def refused(self, *args, **kwargs):
        raise PermissionError(13, "in use", str(self))

    monkeypatch.setattr(writer, "set_georeference", lambda *_: 1 / 0)
    monkeypatch.setattr(Path, "unlink", refused)
    with open_raster(source_path) as source, pytest.raises(ZeroDivisionError):
        ScoreRasterWriter(tmp_path / "scores.tif", source)


def test_abort_leaves_nothing_and_keeps_an_older_output(source_path: Path, tmp_path: Path) -> None:
    output = write_raster(tmp_path / "scores.tif", np.full((2, 2), 3.0, dtype=np.float32))
    with open_raster(source_path) as source:
        writer = ScoreRasterWriter(output, source)
        writer.write(Window(0, 0, 9, 6), np.zeros((6, 9)))
        writer.abort()
    assert not writer.temp_path.exists()
    assert _read(output).RasterXSize == 2  # the older file is untouched
    assert sorted(item.name for item in tmp_path.iterdir()) == ["input.tif", "scores.tif"]


def test_commit_replaces_an_older_output_and_its_stale_statistics(
    source_path: Path, tmp_path: Path
) -> None:
    output = write_raster(tmp_path / "scores.tif", np.full((40, 40), 3.0, dtype=np.float32))
    stale = Path(f"{output}.aux.xml")
    stale.write_text("<PAMDataset/>")
    dataset = gdal.Open(str(output))  # read-only: external overviews, as QGIS's pyramids
    dataset.BuildOverviews("NEAREST", [2, 4])
    dataset = None
    assert Path(f"{output}.ovr").is_file()
    Path(f"{output}.msk").write_bytes(b"")
    with open_raster(source_path) as source:
        writer = ScoreRasterWriter(output, source)
        writer.write(Window(0, 0, 9, 6), np.zeros((6, 9)))
        assert writer.commit() == output
    assert _read(output).RasterXSize == 9
    assert sorted(path.name for path in tmp_path.iterdir() if "scores" in path.name) == [
        "scores.tif"
    ]


def test_shape_mismatch_raises(source_path: Path, tmp_path: Path) -> None:
    with open_raster(source_path) as source, ScoreRasterWriter(tmp_path / "s.tif", source) as out:
        with pytest.raises(ValueError):
            out.write(Window(0, 0, 9, 6), np.zeros((5, 9)))
        with pytest.raises(ValueError):
            out.write(Window(5, 0, 9, 6), np.zeros((6, 9)))
        out.write(Window(0, 0, 9, 6), np.zeros((6, 9)))


def test_missing_output_folder(source_path: Path, tmp_path: Path) -> None:
    with open_raster(source_path) as source, pytest.raises(InputError, match="folder"):
        ScoreRasterWriter(tmp_path / "nowhere" / "scores.tif", source)


@pytest.mark.parametrize("name", ["scores.png", "scores.img", "scores", "scores.tif.aux"])
def test_an_output_name_of_another_format_is_refused(tmp_path, name) -> None:
    with pytest.raises(InputError, match="must end in .tif or .tiff"):
        check_geotiff_path(tmp_path / name)
    assert check_geotiff_path(tmp_path / "a.TIF") == tmp_path / "a.TIF"
    assert check_geotiff_path(tmp_path / "a.tiff") == tmp_path / "a.tiff"


@pytest.mark.parametrize("resampling, expected", [("AVERAGE", 2.5), ("NEAREST", 1.0)])
def test_a_large_output_gets_overviews_that_skip_nodata(tmp_path, resampling, expected) -> None:
    width, height = 2100, 6
    values = np.tile(np.array([1.0, 4.0], dtype=np.float32), (height, width // 2))
    valid = np.ones((height, width), dtype=bool)
    valid[:2, :2] = False
    with ScoreRasterWriter.for_grid(
        tmp_path / "wide.tif", width, height, overviews=resampling
    ) as writer:
        writer.write(Window(0, 0, width, height), values, valid)
    dataset = _read(tmp_path / "wide.tif")  # kept: a band outliving its dataset crashes
    band = dataset.GetRasterBand(1)
    assert band.GetOverviewCount() == len(overview_levels(width, height)) == 4
    first = band.GetOverview(0)
    assert (first.XSize, first.YSize) == (1050, 3)
    coarse = first.ReadAsArray()
    assert coarse[0, 0] == SCORE_NODATA  # every pixel under it is nodata
    assert coarse[1, 1] == pytest.approx(expected)


def test_no_overviews_for_small_or_intermediate_outputs(tmp_path) -> None:
    with ScoreRasterWriter.for_grid(tmp_path / "small.tif", 300, 200, overviews="AVERAGE") as out:
        out.write(Window(0, 0, 300, 200), np.ones((200, 300), dtype=np.float32))
    with ScoreRasterWriter.for_grid(tmp_path / "temp.tif", 2100, 4) as out:
        out.write(Window(0, 0, 2100, 4), np.ones((4, 2100), dtype=np.float32))
    for name in ("small.tif", "temp.tif"):
        dataset = _read(tmp_path / name)
        assert dataset.GetRasterBand(1).GetOverviewCount() == 0


def test_ground_control_points_are_passed_on(tmp_path) -> None:
    source_path = tmp_path / "gcps.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(source_path), 20, 10, 1, gdal.GDT_UInt16)
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    corners = [(0, 0, 10.0, 50.0), (20, 0, 10.2, 50.0), (0, 10, 10.0, 49.9)]
    points = [gdal.GCP(x, y, 0, pixel, line) for pixel, line, x, y in corners]
    dataset.SetGCPs(points, wgs84.ExportToWkt())
    dataset = None
    with open_raster(source_path) as source:
        assert len(source.gcps) == 3 and "WGS 84" in source.gcp_projection
        with ScoreRasterWriter(tmp_path / "scores.tif", source) as writer:
            writer.write(Window(0, 0, 20, 10), np.ones((10, 20), dtype=np.float32))
    written = _read(tmp_path / "scores.tif")
    points = written.GetGCPs()
    assert [(p.GCPPixel, p.GCPLine, p.GCPX, p.GCPY) for p in points] == corners
    assert "WGS 84" in written.GetGCPProjection()


def test_rational_polynomial_coefficients_are_passed_on(tmp_path) -> None:
    source_path = tmp_path / "rpc.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(source_path), 100, 100, 1, gdal.GDT_UInt16)
    dataset.SetMetadata(affine_rpc(), "RPC")
    dataset = None
    with open_raster(source_path) as source:
        assert source.rpc["LAT_OFF"] == "45"
        with ScoreRasterWriter(tmp_path / "scores.tif", source) as writer:
            writer.write(Window(0, 0, 100, 100), np.ones((100, 100), dtype=np.float32))
    written = _read(tmp_path / "scores.tif")
    assert written.GetMetadata("RPC")["LAT_OFF"] == "45"
    assert written.GetMetadata("RPC")["LINE_NUM_COEFF"].split()[2] in ("-1", "-1.0", "-1.000000")
    assert written.GetGeoTransform(can_return_null=True) is None


def test_an_output_that_is_an_input_or_a_file_it_reads_is_refused(tmp_path) -> None:
    source = write_raster(tmp_path / "source.tif", np.ones((4, 5), dtype=np.float32))
    virtual = tmp_path / "view.vrt"
    gdal.Translate(str(virtual), str(source), format="VRT")
    with pytest.raises(InputError, match="would overwrite the input .*source.tif$"):
        check_not_an_input(source, source)
    with pytest.raises(InputError, match=r"source.tif \(a file .*view.vrt reads\)"):
        check_not_an_input(source, None, virtual)
    check_not_an_input(tmp_path / "new.tif", virtual)  # not there yet: nothing to destroy
    check_not_an_input(virtual, source)  # the source does not read the VRT


def test_an_input_without_georeferencing_gives_an_output_without_it(tmp_path) -> None:
    source_path = tmp_path / "plain.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(source_path), 20, 10, 1, gdal.GDT_Byte)
    del dataset  # closes it
    with (
        open_raster(source_path) as source,
        ScoreRasterWriter(tmp_path / "scores.tif", source) as writer,
    ):
        writer.write(Window(0, 0, 20, 10), np.ones((10, 20), dtype=np.float32))
    written = _read(tmp_path / "scores.tif")
    # GDAL's placeholder (0, 1, 0, 0, 0, 1) written out would flip it against its input
    assert written.GetGeoTransform(can_return_null=True) is None
    assert written.GetProjection() == "" and written.GetGCPCount() == 0


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch) -> None:
    # The tests run as root, for whom every folder is writable: os.access stands in.
    monkeypatch.setattr(writer.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(InputError, match=f"cannot write to the output folder {tmp_path}"):
        check_output_folder(tmp_path / "scores.tif")
    with pytest.raises(InputError, match="output folder does not exist"):
        check_output_folder(tmp_path / "missing" / "scores.tif")
    (tmp_path / "folder.tif").mkdir()
    monkeypatch.undo()
    with pytest.raises(InputError, match="output path is a folder"):
        check_geotiff_path(tmp_path / "folder.tif")
