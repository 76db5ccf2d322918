from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.raster_factory import write_raster
from tests.simulation.conftest import HSI_BANDS, object_mask, visible_tile
from uniadrs_engine.errors import InputError
from uniadrs_engine.simulation import backgrounds
from uniadrs_engine.simulation.backgrounds import HYPERSPECTRAL, VISIBLE, BackgroundPool


def names(pool: BackgroundPool) -> set:
    return {item.name.split("/", 1)[1] for item in pool.files}


def test_folders_are_searched_recursively_and_object_masks_are_not_backgrounds(background_tree):
    pool = BackgroundPool.from_paths([background_tree])
    assert names(pool) == {
        "hsi/a.tif",
        "hsi/b.tif",
        "visible/tiles/v1.tif",
        "visible/tiles/v2.tif",
        "visible/landslide/slide.tif",
    }
    by_name = {item.path.name: item for item in pool.files}
    assert by_name["v1.tif"].objects_path == background_tree / "visible/tiles/v1_objects.tif"
    assert by_name["v2.tif"].objects_path is None
    assert all(item.name.startswith(background_tree.name + "/") for item in pool.files)


@pytest.mark.parametrize(
    "patterns, left_out",
    [
        (["landslide"], {"visible/landslide/slide.tif"}),
        (["*slide*"], {"visible/landslide/slide.tif"}),
        (["visible/tiles"], {"visible/tiles/v1.tif", "visible/tiles/v2.tif"}),
        (["v2.tif", "hsi"], {"visible/tiles/v2.tif", "hsi/a.tif", "hsi/b.tif"}),
        (["*/hsi/a.tif"], {"hsi/a.tif"}),
    ],
)
def test_exclude_patterns_leave_out_folders_and_files(background_tree, patterns, left_out):
    everything = names(BackgroundPool.from_paths([background_tree]))
    pool = BackgroundPool.from_paths([background_tree], exclude=patterns)
    assert names(pool) == everything - left_out


def test_a_pool_whose_every_raster_is_left_out_says_so(background_tree):
    with pytest.raises(InputError, match=r"2 raster\(s\) there are left out by the exclusions"):
        BackgroundPool.from_paths([background_tree / "hsi"], exclude=["hsi"])


def test_empty_and_constant_bands_are_dropped(background_tree):
    pool = BackgroundPool.from_paths([background_tree / "hsi"])
    b = next(item for item in pool.files if item.path.name == "b.tif")
    assert b.band_count == HSI_BANDS + 2
    assert 3 not in b.bands and 7 not in b.bands
    assert b.channels == HSI_BANDS
    assert b.provenance()["bands_dropped_1based"] == [4, 8]
    window = pool.read(b)
    assert window.image.shape == (HSI_BANDS, 48, 56)
    assert window.image.min() > -1.0


def test_an_envi_bad_band_list_drops_its_bands(tmp_path):
    image = np.random.default_rng(1).uniform(1.0, 2.0, size=(12, 16, 18)).astype(np.float32)
    path = write_raster(tmp_path / "cube.img", image, driver="ENVI")
    header = tmp_path / "cube.hdr"
    flags = ", ".join("0" if band in (2, 11) else "1" for band in range(1, 13))
    header.write_text(header.read_text().rstrip() + f"\nbbl = {{{flags}}}\n")
    pool = BackgroundPool.from_paths([tmp_path])
    (cube,) = pool.files
    assert cube.path == path
    assert cube.provenance()["bands_dropped_1based"] == [2, 11]
    np.testing.assert_array_equal(pool.read(cube).image, image[[0, *range(2, 10), 11]])


def test_an_alpha_band_is_not_a_channel(tmp_path, monkeypatch):
    image = np.random.default_rng(2).integers(0, 255, size=(4, 16, 18)).astype(np.uint8)
    image[3] = np.where(np.arange(18) < 9, 0, 255)[None, :]
    path = write_raster(tmp_path / "rgba.tif", image)
    dataset = gdal.Open(str(path), gdal.GA_Update)
    dataset.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    dataset = None
    pool = BackgroundPool.from_paths([path])
    (tile,) = pool.files
    assert tile.channels == 3
    assert tile.provenance()["bands_dropped_1based"] == [4]
    transparent = image[3] == 0
    window = pool.read(tile)
    np.testing.assert_array_equal(window.valid, ~transparent)
    assert not window.image[:, transparent].any()
    monkeypatch.setattr(backgrounds, "CACHE_FILE_BYTES", 0)  # read from the file each time
    (uncached,) = BackgroundPool.from_paths([path]).files
    np.testing.assert_array_equal(BackgroundPool([uncached]).read(uncached).valid, ~transparent)


def test_a_paletted_image_is_skipped_with_a_warning(tmp_path, caplog):
    write_raster(tmp_path / "rgb.tif", np.random.default_rng(3).random((3, 16, 18)))
    dataset = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "p.tif"), 18, 16, 1)
    table = gdal.ColorTable()
    table.SetColorEntry(0, (10, 20, 30, 255))
    table.SetColorEntry(1, (200, 20, 30, 255))
    dataset.GetRasterBand(1).SetRasterColorTable(table)
    dataset.GetRasterBand(1).SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    dataset.GetRasterBand(1).WriteArray(np.eye(16, 18, dtype=np.uint8))
    dataset = None
    with caplog.at_level("WARNING"):
        pool = BackgroundPool.from_paths([tmp_path])
    assert [background.path.name for background in pool.files] == ["rgb.tif"]
    assert "p.tif: a paletted image" in caplog.text


def test_nodata_pixels_are_masked_and_zeroed(tmp_path):
    image = np.random.default_rng(0).uniform(1.0, 2.0, size=(12, 20, 24)).astype(np.float32)
    image[:, 5:8, 4:9] = -9999.0
    image[2, 0, 0] = np.nan
    path = write_raster(tmp_path / "scene.tif", image, nodata=-9999.0)
    pool = BackgroundPool.from_paths([path])
    window = pool.read(pool.files[0])
    expected = np.ones((20, 24), dtype=bool)
    expected[5:8, 4:9] = False
    expected[0, 0] = False
    np.testing.assert_array_equal(window.valid, expected)
    assert np.all(window.image[:, ~expected] == 0.0)
    np.testing.assert_array_equal(window.image[:, expected], image[:, expected])


@pytest.mark.parametrize(
    "bands, modality", [(1, VISIBLE), (3, VISIBLE), (9, VISIBLE), (10, HYPERSPECTRAL)]
)
def test_modality_follows_the_usable_band_count(tmp_path, bands, modality):
    image = np.random.default_rng(bands).uniform(0, 1, size=(bands, 16, 16)).astype(np.float32)
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "x.tif", image)])
    assert pool.files[0].modality == modality


def test_large_files_are_read_by_windows_with_the_same_result(background_tree, monkeypatch):
    cached = BackgroundPool.from_paths([background_tree / "visible" / "tiles"])
    monkeypatch.setattr(backgrounds, "CACHE_FILE_BYTES", 0)
    monkeypatch.setattr(backgrounds, "OBJECT_STRIP_ROWS", 7)
    windowed = BackgroundPool.from_paths([background_tree / "visible" / "tiles"])
    assert not windowed._cache and cached._cache
    for small, large in zip(cached.files, windowed.files):
        assert small == large
        a = cached.read(small, (5, 9, 40, 30), objects=True)
        b = windowed.read(large, (5, 9, 40, 30), objects=True)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.valid, b.valid)
        if small.objects_path is not None:
            np.testing.assert_array_equal(a.objects, b.objects)
        assert cached.object_boxes(small) == windowed.object_boxes(large)


def test_object_boxes(background_tree):
    pool = BackgroundPool.from_paths([background_tree / "visible" / "tiles" / "v1.tif"])
    assert pool.object_boxes(pool.files[0]) == {
        1: (10, 10, 30, 25),
        2: (50, 40, 60, 80),
        3: (70, 5, 90, 20),
        4: (2, 90, 4, 92),
    }


def test_object_mask_of_another_size_is_ignored(tmp_path):
    write_raster(tmp_path / "t.tif", visible_tile(0, rows=40, cols=40))
    write_raster(tmp_path / "t_objects.tif", object_mask())
    pool = BackgroundPool.from_paths([tmp_path])
    assert pool.files[0].objects_path is None


def test_random_window_prefers_valid_pixels(tmp_path):
    image = np.random.default_rng(0).uniform(1, 2, size=(3, 64, 64)).astype(np.float32)
    image[:, :, :32] = -1.0
    pool = BackgroundPool.from_paths([write_raster(tmp_path / "s.tif", image, nodata=-1.0)])
    rng = np.random.default_rng(3)
    once = [pool.random_window(rng, pool.files[0], 16, 16, 0.9, attempts=1) for _ in range(20)]
    retried = [pool.random_window(rng, pool.files[0], 16, 16, 0.9, attempts=30) for _ in range(20)]
    assert min(window.valid_fraction for window in once) < 0.9
    assert all(window.valid_fraction >= 0.9 for window in retried)


def test_bad_paths_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        BackgroundPool.from_paths([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable background"):
        BackgroundPool.from_paths([tmp_path / "empty"])
    text = tmp_path / "x.tif"
    text.write_text("not a raster")
    with pytest.raises(InputError, match="cannot read"):
        BackgroundPool.from_paths([text])


def test_provenance_records_every_file(background_tree):
    pool = BackgroundPool.from_paths([background_tree], exclude=["landslide"])
    records = pool.provenance()
    assert [record["name"] for record in records] == [item.name for item in pool.files]
    assert {record["modality"] for record in records} == {HYPERSPECTRAL, VISIBLE}
    assert all(Path(str(record["path"])).is_file() for record in records)
    assert "2 hyperspectral, 2 visible" in pool.describe()


@pytest.mark.parametrize("cached", [True, False])
def test_a_nodata_rule_leaves_an_undeclared_collar_out(tmp_path, monkeypatch, cached):
    from uniadrs_engine.raster.nodata import NodataRule, parse_nodata_values

    if not cached:  # read window by window
        monkeypatch.setattr(backgrounds, "CACHE_FILE_BYTES", 0)
    image = np.random.default_rng(3).integers(40, 200, (3, 40, 50)).astype(np.uint8)
    image[:, :, :6] = 0  # an orthophoto's black collar, not declared
    path = write_raster(tmp_path / "ortho.tif", image)
    plain = BackgroundPool.from_paths([path])
    assert plain.read(plain.files[0]).valid.all()
    ruled = BackgroundPool.from_paths([path], nodata=NodataRule(parse_nodata_values("0")))
    window = ruled.read(ruled.files[0])
    assert not window.valid[:, :6].any() and window.valid[:, 6:].all()
    declared_path = write_raster(tmp_path / "declared.tif", image, nodata=0)
    declared = BackgroundPool.from_paths([declared_path])
    np.testing.assert_array_equal(window.valid, declared.read(declared.files[0]).valid)
    np.testing.assert_array_equal(window.image, declared.read(declared.files[0]).image)
