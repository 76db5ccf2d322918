from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from scipy import ndimage

from tests.raster_factory import DEFAULT_GEOTRANSFORM, affine_rpc, set_ground_points, write_raster
from uniadrs_engine.errors import CancelledError, InputError
from uniadrs_engine.postprocess import threshold as threshold_module
from uniadrs_engine.postprocess.threshold import (
    MASK_NODATA,
    ThresholdRule,
    _order_keys,
    _value_of_key,
    threshold_raster,
    vector_driver_for,
)
from uniadrs_engine.raster.writer import SCORE_NODATA

PIXEL_AREA = 100.0  # 10 m pixels of the default geotransform


def _scores(rows: int = 37, cols: int = 41, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 1.0, size=(rows, cols)).astype(np.float32)
    scores[5, :] = 0.25  # ties
    scores[:3, :4] = SCORE_NODATA
    return scores


def _read(path: Path) -> np.ndarray:
    dataset = gdal.Open(str(path))
    return dataset.GetRasterBand(1).ReadAsArray()


def _kth_largest(values: np.ndarray, rank: int) -> float:
    return float(np.sort(values)[::-1][rank - 1])


def _add_orthophoto(path: Path) -> Path:
    """Adds an 8x8 RGB raster table ``ortho`` to a GeoPackage (made if missing)."""
    options = ["RASTER_TABLE=ortho"] + (["APPEND_SUBDATASET=YES"] if path.exists() else [])
    raster = gdal.GetDriverByName("GPKG").Create(str(path), 8, 8, 3, gdal.GDT_Byte, options=options)
    raster.SetGeoTransform(DEFAULT_GEOTRANSFORM)
    raster = None
    return path


def test_order_keys_preserve_order_and_invert():
    values = np.array(
        [-np.inf, -3.3e38, -2.0, -1e-42, -0.0, 0.0, 1e-42, 0.5, 7.0, 3.4e38, np.inf],
        dtype=np.float32,
    )
    keys = _order_keys(values)
    assert np.all(np.diff(keys.astype(np.int64)) >= 0)
    assert [_value_of_key(int(key)) for key in keys] == [float(value) for value in values]


def test_value_rule_matches_numpy(tmp_path):
    scores = _scores()
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    report = threshold_raster(score_path, ThresholdRule("value", 0.8), mask_path=tmp_path / "m.tif")
    valid = scores != SCORE_NODATA
    expected = np.where(valid, (scores >= 0.8).astype(np.uint8), MASK_NODATA)
    np.testing.assert_array_equal(_read(tmp_path / "m.tif"), expected)
    assert report.anomaly_pixels == int(((scores >= 0.8) & valid).sum())
    assert report.valid_pixels == int(valid.sum())
    mask = gdal.Open(str(tmp_path / "m.tif"))
    assert mask.GetGeoTransform() == gdal.Open(str(score_path)).GetGeoTransform()
    assert mask.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert mask.GetRasterBand(1).GetNoDataValue() == MASK_NODATA


@pytest.mark.parametrize("percent", [0.5, 5.0, 12.5, 100.0])
@pytest.mark.parametrize("memory_mb", [0.001, 64.0])
def test_top_percent_is_exact_order_statistic(tmp_path, percent, memory_mb):
    scores = _scores()
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    report = threshold_raster(
        score_path,
        ThresholdRule("top_percent", percent),
        mask_path=tmp_path / "m.tif",
        memory_mb=memory_mb,
    )
    valid_scores = scores[scores != SCORE_NODATA]
    rank = math.ceil(percent / 100 * valid_scores.size)
    expected_cut = _kth_largest(valid_scores, rank)
    assert report.threshold == expected_cut
    assert report.inclusive
    mask = _read(tmp_path / "m.tif")
    assert (mask == 1).sum() == (valid_scores >= expected_cut).sum() >= rank


def test_top_percent_with_ties_flags_every_tied_pixel(tmp_path):
    scores = np.zeros((10, 10), dtype=np.float32)
    scores[0, :] = 2.0  # 10 % share the top score
    score_path = write_raster(tmp_path / "scores.tif", scores)
    report = threshold_raster(
        score_path, ThresholdRule("top_percent", 1.0), mask_path=tmp_path / "m.tif"
    )
    assert report.threshold == 2.0
    assert report.anomaly_pixels == 10


def test_top_zero_percent_flags_nothing(tmp_path):
    score_path = write_raster(tmp_path / "scores.tif", _scores(), nodata=SCORE_NODATA)
    report = threshold_raster(
        score_path, ThresholdRule("top_percent", 0.0), mask_path=tmp_path / "m.tif"
    )
    assert report.anomaly_pixels == 0
    assert math.isinf(report.threshold)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.2, 1.0])
def test_false_alarm_rate_bounds_flagged_background(tmp_path, rate):
    scores = _scores()
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    report = threshold_raster(
        score_path, ThresholdRule("false_alarm_rate", rate), mask_path=tmp_path / "m.tif"
    )
    valid_scores = scores[scores != SCORE_NODATA]
    rank = math.floor(rate * valid_scores.size) + 1
    flagged = (_read(tmp_path / "m.tif") == 1).sum()
    if rank > valid_scores.size:
        assert flagged == valid_scores.size
    else:
        assert report.threshold == _kth_largest(valid_scores, rank)
        assert not report.inclusive
        assert flagged == (valid_scores > report.threshold).sum()
    assert flagged <= rate * valid_scores.size


def test_false_alarm_rate_counts_only_the_background_mask(tmp_path):
    scores = _scores(seed=5)
    truth = np.zeros(scores.shape, dtype=np.uint8)
    truth[20:25, 20:26] = 1
    scores[truth == 1] += 5.0
    background = (1 - truth).astype(np.uint8)
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    background_path = write_raster(tmp_path / "background.tif", background)
    report = threshold_raster(
        score_path,
        ThresholdRule("false_alarm_rate", 0.05),
        mask_path=tmp_path / "m.tif",
        background_mask_path=background_path,
    )
    region = (scores != SCORE_NODATA) & (background == 1)
    rank = math.floor(0.05 * region.sum()) + 1
    assert report.threshold == _kth_largest(scores[region], rank)
    mask = _read(tmp_path / "m.tif")
    assert (mask[region] == 1).sum() <= 0.05 * region.sum()
    assert (mask[truth == 1] == 1).all()


def _labelled_objects(flags: np.ndarray) -> tuple[np.ndarray, int]:
    return ndimage.label(flags, structure=np.ones((3, 3), dtype=int))


def _polygons(path: Path) -> list[dict]:
    dataset = ogr.Open(str(path))
    layer = dataset.GetLayer(0)
    rows = []
    for feature in layer:
        row = {
            name: feature.GetField(name)
            for name in ("pixels", "area", "score_min", "score_mean", "score_max")
        }
        row["geometry_area"] = feature.GetGeometryRef().GetArea()
        rows.append(row)
    return rows


@pytest.fixture(params=["memory", "files"])
def object_table(request, monkeypatch) -> list:
    """Where the per-object figures are kept; the files hold what was stored in them."""
    stored: list = []
    if request.param == "files":  # as when millions of objects exceed the budget
        monkeypatch.setattr(threshold_module, "OBJECT_TABLE_BYTES", 10**12)
        open_memmap = np.lib.format.open_memmap

        def recording(path, *args, **kwargs):
            stored.append(Path(path).name)
            return open_memmap(path, *args, **kwargs)

        monkeypatch.setattr(np.lib.format, "open_memmap", recording)
    yield stored
    if request.param == "files":
        assert sorted(stored) == sorted(
            f"{name}.npy"
            for name in ("area", "pixels", "score_sum", "score_min", "score_max", "keep")
        )


def test_polygons_carry_per_object_figures(tmp_path, object_table):
    scores = _scores(rows=30, cols=30, seed=8)
    scores[10, 10] = scores[11, 11] = 9.0  # diagonal neighbours: one object (8-connectivity)
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    report = threshold_raster(
        score_path,
        ThresholdRule("value", 1.5),
        mask_path=tmp_path / "m.tif",
        polygons_path=tmp_path / "objects.gpkg",
        memory_mb=0.01,  # strips of a few rows: objects' figures gather over several
    )
    flags = (scores >= 1.5) & (scores != SCORE_NODATA)
    labels, count = _labelled_objects(flags)
    expected = sorted(
        (
            int((labels == index).sum()),
            float(scores[labels == index].min()),
            float(scores[labels == index].mean()),
            float(scores[labels == index].max()),
        )
        for index in range(1, count + 1)
    )
    rows = _polygons(tmp_path / "objects.gpkg")
    assert report.object_count == count == len(rows)
    found = sorted(
        (row["pixels"], row["score_min"], row["score_mean"], row["score_max"]) for row in rows
    )
    for got, want in zip(found, expected):
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1:], want[1:], rtol=1e-6)
    for row in rows:
        assert row["area"] == pytest.approx(row["pixels"] * PIXEL_AREA)
        assert row["geometry_area"] == pytest.approx(row["area"])
    mask = _read(tmp_path / "m.tif")
    np.testing.assert_array_equal(mask == 1, flags)
    dataset = ogr.Open(str(tmp_path / "objects.gpkg"))
    layer = dataset.GetLayer(0)
    assert layer.GetName() == "objects"
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32633"


def test_area_filter_removes_objects_from_mask_and_polygons(tmp_path, object_table):
    scores = np.zeros((40, 40), dtype=np.float32)
    scores[2:4, 2:4] = 1.0  # 4 px = 400 m2
    scores[10:16, 10:16] = 1.0  # 36 px = 3600 m2
    scores[25:39, 20:39] = 1.0  # 266 px = 26600 m2
    score_path = write_raster(tmp_path / "scores.tif", scores)
    report = threshold_raster(
        score_path,
        ThresholdRule("value", 0.5),
        mask_path=tmp_path / "m.tif",
        polygons_path=tmp_path / "objects.shp",
        min_object_area=500.0,
        max_object_area=10000.0,
    )
    assert report.object_count == 1
    assert report.objects_removed == 2
    assert report.anomaly_pixels == 36
    mask = _read(tmp_path / "m.tif")
    assert (mask == 1).sum() == 36 and mask[10:16, 10:16].all()
    rows = _polygons(tmp_path / "objects.shp")
    assert [row["pixels"] for row in rows] == [36]
    leftovers = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert leftovers == []


def test_polygons_only_in_geojson(tmp_path):
    scores = np.zeros((12, 12), dtype=np.float32)
    scores[3:5, 3:6] = 2.0
    score_path = write_raster(tmp_path / "scores.tif", scores)
    report = threshold_raster(
        score_path, ThresholdRule("value", 1.0), polygons_path=tmp_path / "o.geojson"
    )
    assert report.mask_path is None and report.object_count == 1
    assert _polygons(tmp_path / "o.geojson")[0]["pixels"] == 6


def test_polygons_of_a_raster_without_anomalies_are_an_empty_layer(tmp_path):
    score_path = write_raster(tmp_path / "scores.tif", _scores(), nodata=SCORE_NODATA)
    report = threshold_raster(
        score_path, ThresholdRule("value", 50.0), polygons_path=tmp_path / "o.gpkg"
    )
    assert report.object_count == 0 and report.anomaly_pixels == 0
    assert _polygons(tmp_path / "o.gpkg") == []


def test_polygons_when_most_strips_hold_no_object(tmp_path):
    scores = np.zeros((64, 16), dtype=np.float32)
    scores[40:43, 5:8] = 3.0
    score_path = write_raster(tmp_path / "scores.tif", scores)
    report = threshold_raster(
        score_path,
        ThresholdRule("value", 1.0),
        mask_path=tmp_path / "m.tif",
        polygons_path=tmp_path / "o.gpkg",
        memory_mb=0.0001,  # one-row strips: every strip but three holds no object
    )
    assert report.object_count == 1 and report.anomaly_pixels == 9
    [row] = _polygons(tmp_path / "o.gpkg")
    assert row["pixels"] == 9 and row["score_max"] == pytest.approx(3.0)


def test_outputs_never_overwrite_an_input(tmp_path):
    score_path = write_raster(tmp_path / "scores.tif", _scores(), nodata=SCORE_NODATA)
    before = score_path.read_bytes()
    with pytest.raises(InputError, match="would overwrite the input"):
        threshold_raster(score_path, ThresholdRule("value", 1.0), mask_path=score_path)
    background = write_raster(tmp_path / "bg.tif", np.ones((37, 41), dtype=np.uint8))
    with pytest.raises(InputError, match="would overwrite the input"):
        threshold_raster(
            score_path,
            ThresholdRule("false_alarm_rate", 0.01),
            mask_path=background,
            background_mask_path=background,
        )
    assert score_path.read_bytes() == before


def test_no_valid_pixel_is_an_input_error(tmp_path):
    scores = np.full((8, 8), SCORE_NODATA, dtype=np.float32)
    score_path = write_raster(tmp_path / "scores.tif", scores, nodata=SCORE_NODATA)
    with pytest.raises(InputError, match="no valid score pixel"):
        threshold_raster(
            score_path, ThresholdRule("top_percent", 1.0), mask_path=tmp_path / "m.tif"
        )
    assert not (tmp_path / "m.tif").exists()


def test_cancel_leaves_nothing_behind(tmp_path):
    score_path = write_raster(tmp_path / "scores.tif", _scores(), nodata=SCORE_NODATA)
    calls = iter(range(100))

    def cancel_late() -> bool:
        return next(calls) > 3

    with pytest.raises(CancelledError):
        threshold_raster(
            score_path,
            ThresholdRule("top_percent", 5.0),
            mask_path=tmp_path / "m.tif",
            polygons_path=tmp_path / "o.gpkg",
            memory_mb=0.001,
            is_cancelled=cancel_late,
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tif"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: ThresholdRule("median", 1.0), "unknown threshold method"),
        (lambda: ThresholdRule("top_percent", 150.0), r"\[0, 100\]"),
        (lambda: ThresholdRule("false_alarm_rate", 2.0), r"\[0, 1\]"),
        (lambda: ThresholdRule("value", float("nan")), "finite"),
    ],
)
def test_bad_rules_are_input_errors(rule, message):
    with pytest.raises(InputError, match=message):
        rule()


def test_bad_area_limits_and_formats(tmp_path):
    score_path = write_raster(tmp_path / "scores.tif", _scores(), nodata=SCORE_NODATA)
    with pytest.raises(InputError, match="area limits"):
        threshold_raster(
            score_path,
            ThresholdRule("value", 0.0),
            mask_path=tmp_path / "m.tif",
            min_object_area=10.0,
            max_object_area=5.0,
        )
    with pytest.raises(InputError, match="no vector format"):
        vector_driver_for(tmp_path / "objects.xyz")
    assert vector_driver_for(tmp_path / "objects.gpkg").ShortName == "GPKG"


def test_objects_joined_at_a_corner_are_valid_multipolygons(tmp_path):
    scores = np.zeros((8, 8), dtype=np.float32)
    for row, col in ((1, 1), (2, 2), (1, 3), (3, 1), (3, 3)):  # an X: five pixels by corners
        scores[row, col] = 1.0
    score_path = write_raster(tmp_path / "scores.tif", scores)
    for name in ("o.gpkg", "o.kml"):
        report = threshold_raster(
            score_path, ThresholdRule("value", 0.5), polygons_path=tmp_path / name
        )
        assert report.object_count == 1
        dataset = ogr.Open(str(tmp_path / name))
        (feature,) = list(dataset.GetLayer(0))
        geometry = feature.GetGeometryRef()
        assert ogr.GT_Flatten(geometry.GetGeometryType()) == ogr.wkbMultiPolygon
        assert geometry.IsValid()
        assert geometry.GetGeometryCount() == 5
        dataset = None
    rows = _polygons(tmp_path / "o.gpkg")
    assert rows[0]["pixels"] == 5 and rows[0]["area"] == pytest.approx(5 * PIXEL_AREA)


@pytest.mark.parametrize("name", ["o.csv", "o.txt"])
def test_a_format_that_cannot_hold_the_polygons_is_refused(tmp_path, name):
    scores = np.zeros((8, 8), dtype=np.float32)
    scores[2:4, 2:4] = 1.0
    score_path = write_raster(tmp_path / "scores.tif", scores)
    with pytest.raises(InputError, match="format (stores no polygons|cannot store)"):
        threshold_raster(score_path, ThresholdRule("value", 0.5), polygons_path=tmp_path / name)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tif"]


#: (pixel, line, longitude, latitude): pixels of 0.01 degrees from 10 E, 50 N.
GCP_CORNERS = [(0, 0, 10.0, 50.0), (30, 0, 10.3, 50.0), (0, 20, 10.0, 49.8)]

#: The WGS 84 ellipsoid: semi-major axis (m) and flattening.
WGS84_A, WGS84_F = 6_378_137.0, 1 / 298.257223563


def _box_area(west: float, east: float, south: float, north: float) -> float:
    """The area of a longitude-latitude box on the WGS 84 ellipsoid, in square metres.

    The closed form of the area between two parallels (an independent check of the
    engine's integration along the outline).
    """
    e2 = WGS84_F * (2 - WGS84_F)
    e = math.sqrt(e2)
    b2 = (WGS84_A * (1 - WGS84_F)) ** 2

    def q(latitude: float) -> float:
        sine = math.sin(math.radians(latitude))
        return sine / (1 - e2 * sine**2) + math.log((1 + e * sine) / (1 - e * sine)) / (2 * e)

    return b2 / 2 * math.radians(east - west) * (q(north) - q(south))


def _gcp_scores(path: Path, scores: np.ndarray, corners: list) -> Path:
    rows, cols = scores.shape
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), cols, rows, 1, gdal.GDT_Float32)
    dataset.GetRasterBand(1).WriteArray(scores)
    dataset = None
    return set_ground_points(path, corners)


def test_polygons_of_a_raster_with_ground_points_only_are_carried_into_their_crs(tmp_path, caplog):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    path = _gcp_scores(tmp_path / "gcps.tif", scores, GCP_CORNERS)
    with caplog.at_level("WARNING"):
        threshold_raster(path, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    assert "ground control points" not in caplog.text
    objects = ogr.Open(str(tmp_path / "o.gpkg"))
    layer = objects.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "4326"
    (feature,) = list(layer)
    west, east, south, north = feature.GetGeometryRef().GetEnvelope()
    # columns 2-4 and lines 3-5: where GDAL's (and QGIS's) warp of the raster puts them
    assert (west, east, south, north) == pytest.approx((10.02, 10.05, 49.94, 49.97), abs=1e-9)
    assert feature.GetField("pixels") == 9
    expected = _box_area(west, east, south, north)  # square metres, not degrees
    assert feature.GetField("area") == pytest.approx(expected, rel=1e-5)


def test_with_too_few_ground_points_polygons_lie_where_qgis_draws_the_raster(tmp_path, caplog):
    scores = np.zeros((20, 30), dtype=np.float32)
    scores[3:6, 2:5] = 1.0
    path = _gcp_scores(tmp_path / "gcps.tif", scores, GCP_CORNERS[:2])
    with caplog.at_level("WARNING"):
        threshold_raster(path, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    assert "ground control points give no transform (" in caplog.text
    assert "Not enough points" in caplog.text  # GDAL's reason, whether its exceptions are on
    objects = ogr.Open(str(tmp_path / "o.gpkg"))  # kept open while its layer is read
    (feature,) = list(objects.GetLayer(0))
    # QGIS draws such a raster unreferenced: one unit per pixel, rows going down from 0
    assert feature.GetGeometryRef().GetEnvelope() == (2.0, 5.0, -6.0, -3.0)
    assert feature.GetField("area") == 9.0  # pixels


def test_object_areas_are_square_metres_on_a_geographic_crs(tmp_path):
    scores = np.zeros((40, 40), dtype=np.float32)
    scores[2, 2] = 1.0  # one pixel
    scores[10:13, 10:13] = 1.0  # nine pixels
    step = 0.001  # degrees, about 56 m x 111 m at 60 N
    geotransform = (20.0, step, 0.0, 60.0, 0.0, -step)
    score_path = write_raster(tmp_path / "scores.tif", scores, geotransform=geotransform, epsg=4326)
    one_pixel = _box_area(20.0, 20.0 + step, 60.0 - step, 60.0)
    report = threshold_raster(
        score_path,
        ThresholdRule("value", 0.5),
        polygons_path=tmp_path / "o.gpkg",
        min_object_area=3 * one_pixel,
    )
    assert report.object_count == 1 and report.objects_removed == 1
    (row,) = _polygons(tmp_path / "o.gpkg")
    assert row["pixels"] == 9
    nine_pixels = _box_area(20.0 + 10 * step, 20.0 + 13 * step, 60.0 - 13 * step, 60.0 - 10 * step)
    assert row["area"] == pytest.approx(nine_pixels, rel=1e-5)


def test_polygons_of_a_raster_with_polynomial_coefficients_only_are_in_longitude_latitude(
    tmp_path,
):
    scores = np.zeros((100, 100), dtype=np.float32)
    scores[40:43, 60:64] = 1.0
    path = tmp_path / "rpc.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 100, 100, 1, gdal.GDT_Float32)
    dataset.GetRasterBand(1).WriteArray(scores)
    dataset.SetMetadata(affine_rpc(), "RPC")
    dataset = None
    threshold_raster(path, ThresholdRule("value", 0.5), polygons_path=tmp_path / "o.gpkg")
    objects = ogr.Open(str(tmp_path / "o.gpkg"))
    layer = objects.GetLayer(0)
    assert layer.GetSpatialRef().IsGeographic()
    (feature,) = list(layer)
    # GDAL's RPC transform (QGIS draws the raster with it): pixel centres at half pixels
    expected = (7.0 + 9.5e-3, 7.0 + 13.5e-3, 45.0 + 7.5e-3, 45.0 + 10.5e-3)
    assert feature.GetGeometryRef().GetEnvelope() == pytest.approx(expected, abs=1e-7)
    assert feature.GetField("area") == pytest.approx(_box_area(*expected), rel=1e-5)


def test_float64_scores_are_cut_at_their_own_precision(tmp_path):
    rng = np.random.default_rng(5)
    scores = 1.0 / (1.0 + np.exp(-rng.normal(18.0, 2.0, (64, 64))))  # ties in float32
    assert len(np.unique(scores.astype(np.float32))) < len(np.unique(scores)) // 2
    score_path = write_raster(tmp_path / "scores64.tif", scores.astype(np.float64))
    top = threshold_raster(
        score_path, ThresholdRule("top_percent", 1.0), mask_path=tmp_path / "top.tif"
    )
    rank = math.ceil(0.01 * scores.size)
    assert top.threshold == _kth_largest(scores.ravel(), rank)
    assert top.anomaly_pixels == rank == int((scores >= top.threshold).sum())
    rate = threshold_raster(
        score_path, ThresholdRule("false_alarm_rate", 0.01), mask_path=tmp_path / "far.tif"
    )
    assert rate.anomaly_pixels == int(np.floor(0.01 * scores.size))


def test_polygons_never_replace_a_file_holding_other_layers(tmp_path):
    """A project's GeoPackage with its roads and orthophoto is refused whole; an earlier
    output of the same name is replaced."""
    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    project = tmp_path / "project.gpkg"
    store = ogr.GetDriverByName("GPKG").CreateDataSource(str(project))
    store.CreateLayer("roads", geom_type=ogr.wkbLineString)
    store = None
    _add_orthophoto(project)
    before = project.read_bytes()
    with pytest.raises(InputError, match=r"already holds ortho, roads: .* file of their own"):
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=project)
    assert project.read_bytes() == before
    own = tmp_path / "objects.gpkg"
    for run in range(2):  # the second run replaces the first's output, and its saved style
        report = threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=own)
        assert len(_polygons(own)) == report.object_count > 0
        if run == 0:  # what QGIS's "Save as Default" style writes into the file
            store = ogr.Open(str(own), 1)
            store.CreateLayer("layer_styles", geom_type=ogr.wkbNone)
            store = None


def test_a_value_is_cut_in_the_units_of_a_scaled_score_raster(tmp_path):
    """Scores stored as integers of 0.001 (GDAL's scale): the cut is in their units."""
    stored = np.arange(400, dtype=np.uint16).reshape(20, 20) * 100  # 0 .. 39.9
    score_path = write_raster(tmp_path / "scaled.tif", stored)
    dataset = gdal.Open(str(score_path), gdal.GA_Update)
    dataset.GetRasterBand(1).SetScale(0.001)
    dataset = None
    report = threshold_raster(
        score_path, ThresholdRule("value", 38.05), mask_path=tmp_path / "m.tif"
    )
    assert report.anomaly_pixels == 19  # 38.1 .. 39.9


def test_an_older_output_that_cannot_be_deleted_stops_the_run(tmp_path, monkeypatch):
    """A locked .dbf of an earlier Shapefile must not survive beside the new shapes (it
    would lend them its attributes): its error stops the run."""
    scores = np.zeros((40, 40), dtype=np.float32)
    scores[2:4, 2:4] = 1.0
    score_path = write_raster(tmp_path / "scores.tif", scores)
    output = tmp_path / "objects.shp"
    threshold_raster(score_path, ThresholdRule("value", 0.5), polygons_path=output)
    scores[10:30, 10:30] = 1.0
    score_path = write_raster(tmp_path / "scores2.tif", scores)
    unlink = Path.unlink

    def locked(self, *args, **kwargs):
        if self.name == "objects.dbf":
            raise PermissionError(13, "in use", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", locked)
    monkeypatch.setattr(gdal.Driver, "Delete", lambda *_: 1)  # GDAL's own delete fails too
    with pytest.raises(PermissionError):
        threshold_raster(score_path, ThresholdRule("value", 0.5), polygons_path=output)
    monkeypatch.undo()
    # no new shapes beside the old attributes: the old output (or what of it went) only
    assert not output.exists() or [row["pixels"] for row in _polygons(output)] == [4]
    assert (tmp_path / "objects.dbf").exists()


def test_the_object_table_and_a_strip_share_the_budget(tmp_path, monkeypatch):
    """The figures go to files once they would take more than half the budget."""
    scores = np.zeros((40, 40), dtype=np.float32)
    scores[::2, ::2] = 9.0  # 400 objects of one pixel
    score_path = write_raster(tmp_path / "scores.tif", scores)
    table_bytes = 401 * threshold_module.OBJECT_TABLE_BYTES
    opened: list = []
    open_memmap = np.lib.format.open_memmap

    def recording(path, *args, **kwargs):
        opened.append(Path(path).name)
        return open_memmap(path, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "open_memmap", recording)
    for budget_share, in_files in ((2.5, False), (1.5, True)):
        opened.clear()
        report = threshold_raster(
            score_path,
            ThresholdRule("value", 1.0),
            polygons_path=tmp_path / f"objects{budget_share}.gpkg",
            memory_mb=table_bytes * budget_share / 2**20,
        )
        assert report.object_count == 400
        assert bool(opened) == in_files, (budget_share, opened)
    # and the strips of the object passes take the other half
    budgets: list = []
    block_windows = threshold_module.block_windows

    def recording(*args, **kwargs):
        budgets.append(args[3])
        return block_windows(*args, **kwargs)

    monkeypatch.setattr(threshold_module, "block_windows", recording)
    threshold_raster(
        score_path,
        ThresholdRule("value", 1.0),
        polygons_path=tmp_path / "halves.gpkg",
        memory_mb=8.0,
    )
    assert budgets == [8.0, 4.0]  # the score cut's strips, then the object passes'


def test_a_value_is_compared_in_float64(tmp_path):
    """A float32 score of 0.5 lies below a cut of 0.50000001 (float32 would round it to 0.5)."""
    scores = np.zeros((10, 10), dtype=np.float32)
    scores[4, 4] = 0.5
    score_path = write_raster(tmp_path / "scores.tif", scores)
    above = threshold_raster(
        score_path, ThresholdRule("value", 0.50000001), mask_path=tmp_path / "above.tif"
    )
    assert above.anomaly_pixels == 0 and above.threshold == 0.50000001
    assert (_read(tmp_path / "above.tif") == 1).sum() == 0
    below = threshold_raster(
        score_path,
        ThresholdRule("value", 0.49999999),
        mask_path=tmp_path / "below.tif",
        polygons_path=tmp_path / "below.gpkg",
    )
    assert below.anomaly_pixels == below.object_count == 1
    with pytest.raises(InputError, match="area limits"):
        threshold_raster(
            score_path,
            ThresholdRule("value", 0.5),
            mask_path=tmp_path / "nan.tif",
            min_object_area=float("nan"),
        )


@pytest.mark.parametrize("name", ["objects.gpkg", "objects.shp", "objects.geojson"])
def test_cancel_while_polygons_are_written_leaves_nothing_behind(tmp_path, name):
    """A cancel asked once the polygons are being written stops them, and leaves no file."""
    scores = np.zeros((90, 90), dtype=np.float32)
    scores[::2, ::2] = 1.0  # 2025 objects of one pixel
    score_path = write_raster(tmp_path / "scores.tif", scores)
    reported: list = []

    def progress(fraction: float, message: str) -> None:
        reported.append((fraction, message))

    def cancel_while_writing() -> bool:
        return bool(reported) and reported[-1][0] > 0.9  # a part of the polygons is written

    with pytest.raises(CancelledError):
        threshold_raster(
            score_path,
            ThresholdRule("value", 0.5),
            mask_path=tmp_path / "m.tif",
            polygons_path=tmp_path / name,
            progress=progress,
            is_cancelled=cancel_while_writing,
        )
    assert reported[-1][1] == "writing anomaly polygons" and 0.9 < reported[-1][0] < 1.0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scores.tif"]


def test_an_upper_case_shapefile_name_is_written_and_replaced(tmp_path):
    """GDAL writes a Shapefile's files in lower case; the files take the name asked for."""
    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    folder = tmp_path / "up"
    folder.mkdir()
    output = folder / "OUT.SHP"
    for _ in range(2):  # the second run replaces the first's files
        report = threshold_raster(
            score_path, ThresholdRule("top_percent", 5.0), polygons_path=output
        )
        assert report.polygons_path == output
        assert sorted(path.name for path in folder.iterdir()) == [
            "OUT.DBF",
            "OUT.PRJ",
            "OUT.SHP",
            "OUT.SHX",
        ]
        assert len(_polygons(output)) == report.object_count > 0


@pytest.mark.parametrize("extension", ["geojson", "fgb", "kml", "gml"])
def test_a_file_of_one_layer_is_replaced_whatever_the_layer_s_name(tmp_path, extension):
    """``ogr2ogr old.geojson poly.gpkg`` names the layer poly: the file holds nothing else."""
    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    poly = tmp_path / "poly.gpkg"
    threshold_raster(score_path, ThresholdRule("top_percent", 1.0), polygons_path=poly)
    old = tmp_path / f"old.{extension}"
    gdal.VectorTranslate(str(old), str(poly), layerName="poly")
    layers = ogr.Open(str(old))
    assert [layers.GetLayer(index).GetName() for index in range(layers.GetLayerCount())] == ["poly"]
    layers = None
    report = threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=old)
    assert len(_polygons(old)) == report.object_count > len(_polygons(poly))
    # no temporary left (a GML file's .xsd schema was), no stale sidecar of the old file
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_a_file_with_another_layer_or_a_raster_beside_the_polygons_is_refused(tmp_path):
    """An earlier output to which a layer was added, or a GeoPackage holding a raster only
    (named as the file), is not replaced."""
    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    own = tmp_path / "objects.gpkg"
    threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=own)
    store = ogr.Open(str(own), 1)
    store.CreateLayer("roads", geom_type=ogr.wkbLineString)
    store = None
    with pytest.raises(InputError, match=r"already holds roads: "):
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=own)
    ortho = _add_orthophoto(tmp_path / "ortho.gpkg")
    before = ortho.read_bytes()
    with pytest.raises(InputError, match=r"already holds ortho: "):
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=ortho)
    assert ortho.read_bytes() == before
    # a GeoPackage of one layer of another name: a project's roads, not earlier polygons
    roads = tmp_path / "network.gpkg"
    gdal.VectorTranslate(str(roads), str(own), layerName="roads", layers=["roads"])
    with pytest.raises(InputError, match=r"already holds roads: "):
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=roads)


@pytest.mark.parametrize("output_name", ["roads.gpkg", "roads.geojson"])
def test_replacing_polygons_keeps_another_format_s_files_of_that_name(tmp_path, output_name):
    """A user's roads.shp (.dbf, .shx, .prj) beside the polygons' roads.gpkg is not theirs."""
    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    shapefile = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource(str(tmp_path / "roads.shp"))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    shapefile.CreateLayer("roads", srs=srs, geom_type=ogr.wkbLineString)
    shapefile = None
    roads = sorted(path.name for path in tmp_path.glob("roads.*"))
    assert roads == ["roads.dbf", "roads.prj", "roads.shp", "roads.shx"]
    for _ in range(2):  # written, then replaced
        threshold_raster(
            score_path, ThresholdRule("top_percent", 5.0), polygons_path=tmp_path / output_name
        )
    assert sorted(path.name for path in tmp_path.glob("roads.*")) == sorted([*roads, output_name])


def test_a_sqlite_database_with_other_tables_is_refused(tmp_path):
    import sqlite3

    score_path = write_raster(tmp_path / "scores.tif", _scores(seed=4), nodata=SCORE_NODATA)
    own = tmp_path / "objects.sqlite"
    for _ in range(2):  # its own earlier output is replaced
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=own)
    connection = sqlite3.connect(own)
    connection.execute("CREATE TABLE customers (name TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(InputError, match=r"already holds customers: "):
        threshold_raster(score_path, ThresholdRule("top_percent", 5.0), polygons_path=own)
