"""Global and local RX: against direct formulas, brute-force windows, and on rasters."""

from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr
from sklearn.covariance import OAS

from uniadrs_engine.baselines.rx import (
    VARIANCE_FLOOR,
    box_sum,
    global_rx,
    local_rx,
    local_windows_from_map_units,
    odd_window_pixels,
    rx_raster,
)
from uniadrs_engine.errors import CancelledError, InputError
from uniadrs_engine.raster.reader import open_raster
from uniadrs_engine.raster.writer import SCORE_NODATA


def _image(bands=3, rows=20, cols=24, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(bands, bands))
    image = np.einsum("ij,jhw->ihw", mixing, rng.normal(size=(bands, rows, cols)))
    return (image * 20 + 500).astype(np.float32)


def _direct_rx(pixels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    mean = reference.astype(np.float64).mean(axis=1)
    inverse = np.linalg.pinv(np.cov(reference.astype(np.float64), ddof=1), rcond=1e-12)
    centred = pixels.astype(np.float64) - mean[:, None]
    return np.einsum("ij,ik,kj->j", centred, inverse, centred)


def test_global_rx_is_the_mahalanobis_distance_with_pinv():
    image = _image().astype(np.float64)
    image[2] = image[0]  # a repeated band: a singular covariance, so pinv, not inv
    valid = np.ones(image.shape[1:], dtype=bool)
    valid[3, 4] = False
    background = np.zeros_like(valid)
    background[:, :12] = True
    scores = global_rx(image, valid=valid, background=background)
    expected = _direct_rx(image[:, valid], image[:, valid & background])
    assert np.isnan(scores[3, 4])
    np.testing.assert_allclose(scores[valid], expected, rtol=1e-6, atol=1e-6)
    default = global_rx(image)
    np.testing.assert_allclose(
        default.ravel(), _direct_rx(image.reshape(3, -1), image.reshape(3, -1)), rtol=1e-6
    )


def test_global_rx_finds_an_implanted_target():
    image = _image()
    image[:, 10, 10] += 200
    assert np.nanargmax(global_rx(image)) == 10 * 24 + 10


def test_box_sum_is_a_clipped_window_sum():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(2, 9, 11))
    summed = box_sum(values, 5)
    for r in range(9):
        for c in range(11):
            window = values[:, max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3]
            np.testing.assert_allclose(summed[:, r, c], window.sum(axis=(1, 2)), atol=1e-12)


def _brute_force_local_rx(image, inner, outer, used, shrinkage):
    """Per pixel: ring pixels in whitened space, a shrunk covariance, a solve."""
    pixels = image[:, used].astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels))
    projection = eigenvectors.T / np.sqrt(eigenvalues)[:, None]
    whitened = np.einsum(
        "kc,chw->khw", projection, image.astype(np.float64) - pixels.mean(axis=1)[:, None, None]
    )
    bands, rows, cols = image.shape
    scores = np.full((rows, cols), np.nan)
    ro, ri = outer // 2, inner // 2
    for r in range(rows):
        for c in range(cols):
            ring = np.zeros((rows, cols), dtype=bool)
            ring[max(r - ro, 0) : r + ro + 1, max(c - ro, 0) : c + ro + 1] = True
            ring[max(r - ri, 0) : r + ri + 1, max(c - ri, 0) : c + ri + 1] = False
            ring &= used
            if ring.sum() < 2:
                continue
            samples = whitened[:, ring]
            if shrinkage is None:
                covariance = OAS().fit(samples.T).covariance_
            else:
                empirical = np.cov(samples, bias=True)
                target = np.trace(empirical) / bands * np.eye(bands)
                covariance = (1 - shrinkage) * empirical + shrinkage * target
            covariance = covariance + VARIANCE_FLOOR * np.eye(bands)
            deviation = whitened[:, r, c] - samples.mean(axis=1)
            scores[r, c] = deviation @ np.linalg.solve(covariance, deviation)
    return scores


@pytest.mark.parametrize(
    ("with_background", "shrinkage"), [(False, None), (True, None), (False, 0.3)]
)
def test_local_rx_matches_brute_force_windows(with_background, shrinkage):
    image = _image(bands=3, rows=14, cols=17, seed=2)
    background = None
    used = np.ones(image.shape[1:], dtype=bool)
    if with_background:
        background = np.ones_like(used)
        background[5:8, 6:10] = False
        used = background
    scores = local_rx(image, inner=3, outer=7, background=background, shrinkage=shrinkage)
    expected = _brute_force_local_rx(image, 3, 7, used, shrinkage)
    np.testing.assert_allclose(scores, expected, rtol=1e-7, atol=1e-9)


def test_local_rx_without_shrinkage_is_affine_invariant_mahalanobis():
    image = _image(bands=2, rows=12, cols=12, seed=3)
    scores = local_rx(image, inner=1, outer=9, shrinkage=0.0)
    r, c = 6, 5
    ring = np.zeros((12, 12), dtype=bool)
    ring[2:11, 1:10] = True
    ring[r, c] = False
    samples = image[:, ring].astype(np.float64)
    deviation = image[:, r, c] - samples.mean(axis=1)
    expected = deviation @ np.linalg.solve(np.cov(samples, bias=True), deviation)
    assert scores[r, c] == pytest.approx(expected, rel=1e-4)  # only the 1e-6 floor differs


def test_local_rx_handles_invalid_pixels_flat_windows_and_many_bands():
    rng = np.random.default_rng(4)
    latent = rng.normal(size=(6, 30, 30))
    latent[:, 15, 15] = 6.0  # an atypical mixture of the background's own sources
    image = np.einsum("cl,lhw->chw", rng.normal(size=(40, 6)), latent)
    image = (image + rng.normal(scale=0.01, size=image.shape)).astype(np.float32)
    valid = np.ones((30, 30), dtype=bool)
    valid[0, :] = False
    scores = local_rx(image, inner=3, outer=9, valid=valid)  # 40 bands -> 20 components
    assert np.isnan(scores[0]).all() and np.isfinite(scores[1:]).all()
    assert np.nanargmax(scores) == 15 * 30 + 15
    flat = np.zeros((1, 10, 10), dtype=np.float32)
    flat[0, :, :5] = 3.0
    flat[0, 5, 2] = 4.0
    flat_scores = local_rx(flat, inner=1, outer=3)
    assert np.isfinite(flat_scores).all()
    assert np.argmax(flat_scores) == 5 * 10 + 2


def test_window_size_checks():
    image = _image()
    for inner, outer in [(2, 7), (3, 8), (5, 5), (7, 3), (0, 3)]:
        with pytest.raises(InputError):
            local_rx(image, inner=inner, outer=outer)
    with pytest.raises(InputError, match="shrinkage"):
        local_rx(image, inner=3, outer=5, shrinkage=1.5)


def test_map_units_to_odd_pixels():
    geotransform = (0.0, 10.0, 0.0, 0.0, 0.0, -10.0)
    assert odd_window_pixels(50.0, geotransform) == 5
    assert odd_window_pixels(100.0, geotransform) == 11  # 10 px: halves round up
    assert odd_window_pixels(1.0, geotransform) == 1
    assert local_windows_from_map_units(30.0, 90.0, geotransform) == (3, 9)
    assert local_windows_from_map_units(30.0, 31.0, geotransform) == (3, 5)
    with pytest.raises(InputError):
        local_windows_from_map_units(90.0, 30.0, geotransform)
    with pytest.raises(InputError, match="not georeferenced: give the windows in pixels"):
        local_windows_from_map_units(30.0, 90.0, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    degrees = (10.0, 0.0001, 0.0, 50.0, 0.0, -0.0001)
    with pytest.raises(InputError, match=r"geographic.*give the windows in pixels.*11.1 m"):
        local_windows_from_map_units(30.0, 90.0, degrees, wgs84.ExportToWkt())
    with pytest.raises(InputError):
        odd_window_pixels(-5.0, geotransform)


def _read_scores(path):
    with open_raster(path) as source:
        block = source.read_window(source.full_window())
    scores = block.data[0].astype(np.float64)
    scores[~block.valid] = np.nan
    return scores, source


def test_rx_raster_global_matches_the_array_function(make_raster, tmp_path):
    image = _image(bands=4, rows=40, cols=33, seed=5)
    image[:, 2, 3] = -1  # nodata
    background = np.ones(image.shape[1:], dtype=np.uint8)
    background[10:20, 10:20] = 0
    path = make_raster(image, "image.tif", nodata=-1)
    mask_path = make_raster(background, "background.tif")
    valid = np.ones(image.shape[1:], dtype=bool)
    valid[2, 3] = False
    report = rx_raster(
        path, tmp_path / "rx.tif", memory_mb=0.01, background_mask_path=mask_path, bands=[1, 2, 4]
    )
    scores, source = _read_scores(tmp_path / "rx.tif")
    expected = global_rx(image[[0, 1, 3]], valid=valid, background=background > 0)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, equal_nan=True)
    assert report.mode == "global" and report.bands == [1, 2, 4]
    assert report.background_pixels == (valid & (background > 0)).sum()
    with open_raster(tmp_path / "rx.tif") as output:
        assert output.nodata == [SCORE_NODATA]
        assert output.geotransform == source.geotransform


@pytest.mark.parametrize("mode", ["global", "local"])
def test_rx_raster_leaves_out_bands_that_hold_no_value(make_raster, tmp_path, mode):
    image = _image(bands=4, rows=30, cols=26, seed=8)
    image[1] = np.nan  # not finite everywhere
    path = make_raster(image, "image.tif", nodata=-1)
    report = rx_raster(path, tmp_path / "rx.tif", mode=mode)
    reference = rx_raster(path, tmp_path / "ref.tif", mode=mode, bands=[1, 3, 4])
    scores, _ = _read_scores(tmp_path / "rx.tif")
    expected, _ = _read_scores(tmp_path / "ref.tif")
    np.testing.assert_array_equal(scores, expected)
    assert report.bands == [1, 3, 4] and report.bands_left_out == (2,)
    assert reference.bands_left_out == ()
    assert report.describe_bands_left_out() == "band 2 left out: it holds no value"


@pytest.mark.parametrize("mode", ["global", "local"])
def test_a_large_rx_raster_has_overviews(make_raster, tmp_path, mode):
    path = make_raster(_image(bands=3, rows=8, cols=2100, seed=10), "wide.tif")
    rx_raster(path, tmp_path / "rx.tif", mode=mode, inner=3, outer=5)
    dataset = gdal.Open(str(tmp_path / "rx.tif"))
    assert dataset.GetRasterBand(1).GetOverviewCount() == 4


def test_rx_raster_leaves_out_the_bands_of_an_envi_bad_band_list(make_raster, tmp_path):
    image = _image(bands=4, rows=16, cols=18, seed=9)
    path = make_raster(image, "cube.img", driver="ENVI")
    header = tmp_path / "cube.hdr"
    header.write_text(header.read_text().rstrip() + "\nbbl = {1, 1, 0, 1}\n")
    report = rx_raster(path, tmp_path / "rx.tif")
    scores, _ = _read_scores(tmp_path / "rx.tif")
    np.testing.assert_allclose(scores, global_rx(image[[0, 1, 3]]), rtol=1e-5)
    assert report.bands == [1, 2, 4] and report.bad_bands == (3,)
    assert report.describe_bands_left_out() == "band 3 left out: the bad band list marks it"


@pytest.mark.parametrize("with_background", [False, True])
def test_rx_raster_local_tiles_give_the_whole_image_result(make_raster, tmp_path, with_background):
    image = _image(bands=3, rows=80, cols=70, seed=6)
    image[:, 31:34, 40:42] = -1  # nodata across a tile edge
    valid = np.ones(image.shape[1:], dtype=bool)
    valid[31:34, 40:42] = False
    path = make_raster(image, "image.tif", nodata=-1)
    background = np.ones(image.shape[1:], dtype=np.uint8)
    background[30:45, 20:60] = 0
    mask_path = make_raster(background, "background.tif") if with_background else None
    # a tiny budget: 32-pixel tiles, a 3x3 grid with halos of 4
    report = rx_raster(
        path,
        tmp_path / "local.tif",
        mode="local",
        inner=3,
        outer=9,
        memory_mb=0.001,
        background_mask_path=mask_path,
    )
    scores, _ = _read_scores(tmp_path / "local.tif")
    expected = local_rx(
        image, 3, 9, valid=valid, background=(background > 0) if with_background else None
    )
    assert np.isnan(scores[~valid]).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert (report.inner, report.outer, report.components) == (3, 9, 3)


def test_rx_raster_cancellation_leaves_nothing(make_raster, tmp_path):
    path = make_raster(_image(), "image.tif")
    calls = []

    def cancel_in_scoring_pass() -> bool:
        calls.append(1)
        return len(calls) > 3

    out_folder = tmp_path / "out"
    out_folder.mkdir()
    for mode in ("global", "local"):
        calls.clear()
        with pytest.raises(CancelledError):
            rx_raster(
                path,
                out_folder / "rx.tif",
                mode=mode,
                memory_mb=0.001,
                is_cancelled=cancel_in_scoring_pass,
            )
        assert list(out_folder.iterdir()) == []


def test_rx_raster_bad_input(make_raster, tmp_path):
    path = make_raster(_image(), "image.tif")
    with pytest.raises(InputError, match="unknown RX mode"):
        rx_raster(path, tmp_path / "x.tif", mode="median")
    with pytest.raises(InputError, match="odd"):
        rx_raster(path, tmp_path / "x.tif", mode="local", inner=4, outer=9)
    other_grid = make_raster(np.ones((5, 5), dtype=np.uint8), "small_mask.tif")
    with pytest.raises(InputError, match="not on the same grid"):
        rx_raster(path, tmp_path / "x.tif", background_mask_path=other_grid)
    with pytest.raises(InputError, match="out of range"):
        rx_raster(path, tmp_path / "x.tif", bands=[9])
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(InputError, match="must end in .tif or .tiff"):
        rx_raster(path, tmp_path / "x.jpg")
    assert not list(tmp_path.glob("*x.jpg*"))
    with pytest.raises(InputError, match=r"inner window \(47 px\) covers the whole 24x20"):
        rx_raster(path, tmp_path / "x.tif", mode="local", inner=47, outer=49)
    rx_raster(path, tmp_path / "x.tif", mode="local", inner=45, outer=49)  # corners keep a ring
    assert np.isfinite(_read_scores(tmp_path / "x.tif")[0]).any()
    flat = make_raster(np.zeros((2, 20, 24), dtype=np.float32), "flat.tif")
    with pytest.raises(InputError, match="single value"):
        rx_raster(flat, tmp_path / "x.tif")
    before = path.read_bytes()
    with pytest.raises(InputError, match="would overwrite the input"):
        rx_raster(path, path)
    mask = make_raster(np.ones((20, 24), dtype=np.uint8), "bg.tif")
    with pytest.raises(InputError, match="would overwrite the input"):
        rx_raster(path, mask, background_mask_path=mask)
    assert path.read_bytes() == before


def test_global_rx_from_too_few_pixels_still_ranks_them_with_a_warning(caplog):
    rng = np.random.default_rng(0)
    image = rng.random((120, 10, 10))  # 100 pixels of 120 bands: every pinv distance is equal
    image[:, 4, 4] += 2.0  # an anomaly
    inverse = np.linalg.pinv(np.cov(image.reshape(120, -1), ddof=1), rcond=1e-12)
    centred = image.reshape(120, -1) - image.reshape(120, -1).mean(axis=1, keepdims=True)
    constant = np.einsum("ij,ij->j", centred, inverse @ centred)
    assert np.ptp(constant) < 1e-6 * constant.max()  # what the plain estimator gives
    with caplog.at_level("WARNING"):
        scores = global_rx(image)
    assert "only 100 pixels" in caplog.text and "49 leading principal components" in caplog.text
    assert np.ptp(scores) > 0.1 * scores.max()
    assert np.nanargmax(scores) == 4 * 10 + 4


def test_global_rx_from_fewer_than_two_pixels_per_band_warns(caplog):
    image = np.random.default_rng(1).random((40, 8, 8))  # 64 pixels of 40 bands
    with caplog.at_level("WARNING"):
        scores = global_rx(image)
    assert "fewer than 2 per band" in caplog.text
    inverse = np.linalg.pinv(np.cov(image.reshape(40, -1), ddof=1), rcond=1e-12)
    centred = image.reshape(40, -1) - image.reshape(40, -1).mean(axis=1, keepdims=True)
    expected = np.einsum("ij,ij->j", centred, inverse @ centred).reshape(8, 8)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)  # the estimator is kept


def test_rx_raster_from_too_few_pixels_ranks_them_as_the_array_function(make_raster, tmp_path):
    image = np.random.default_rng(2).random((120, 10, 10)).astype(np.float32)
    image[:, 6, 2] += 2.0
    path = make_raster(image, "chip.tif")
    rx_raster(path, tmp_path / "rx.tif")
    scores, _ = _read_scores(tmp_path / "rx.tif")
    np.testing.assert_allclose(scores, global_rx(image), rtol=1e-4)
    assert np.nanargmax(scores) == 6 * 10 + 2


def test_local_rx_names_the_pixels_it_cannot_score(make_raster, tmp_path, caplog):
    image = np.random.default_rng(4).random((3, 12, 12)).astype(np.float32)
    image[:, :, 3:] = -1.0  # nodata but for three columns
    image[:, 5, 0] = 5.0
    path = make_raster(image, "strip.tif", nodata=-1.0)
    background = np.zeros((12, 12), dtype=np.uint8)
    background[:2, :3] = 1  # the only background: a corner
    mask = make_raster(background, "corner.tif")
    with caplog.at_level("WARNING"):
        rx_raster(
            path, tmp_path / "rx.tif", mode="local", inner=1, outer=3, background_mask_path=mask
        )
    scores, _ = _read_scores(tmp_path / "rx.tif")
    unscored = int(np.count_nonzero(np.isnan(scores[:, :3])))
    assert unscored > 0
    assert f"local RX: {unscored} valid pixel(s) left without a score" in caplog.text


@pytest.mark.parametrize("mode", ["global", "local"])
def test_rx_of_float64_values_keeps_their_precision(make_raster, tmp_path, mode):
    reflectance = 0.2 + 0.02 * np.random.default_rng(7).standard_normal((4, 24, 24))
    reflectance[:, 12, 12] += 0.1
    plain = make_raster(reflectance.astype(np.float64), "plain.tif")
    offset = make_raster(reflectance.astype(np.float64) + 1e4, "offset.tif")  # 1e-3 in float32
    options = {"mode": mode, "inner": 3, "outer": 9} if mode == "local" else {"mode": mode}
    rx_raster(plain, tmp_path / "plain_rx.tif", **options)
    rx_raster(offset, tmp_path / "offset_rx.tif", **options)
    plain_scores, _ = _read_scores(tmp_path / "plain_rx.tif")
    offset_scores, _ = _read_scores(tmp_path / "offset_rx.tif")
    np.testing.assert_allclose(offset_scores, plain_scores, rtol=1e-4)  # RX is affine-invariant


@pytest.mark.parametrize("mode", ["global", "local"])
def test_rx_scores_say_how_they_were_made(make_raster, tmp_path, mode):
    image = np.random.default_rng(1).random((3, 30, 30)).astype(np.float32)
    path = make_raster(image, "scene.tif")
    report = rx_raster(path, tmp_path / "rx.tif", mode=mode, inner=3, outer=9)
    dataset = gdal.Open(str(report.output_path))
    band = dataset.GetRasterBand(1)
    description = band.GetDescription()
    metadata = dataset.GetMetadata()
    band = dataset = None
    assert description.startswith(f"{mode} RX anomaly score")
    assert metadata["UNIADRS_RX"] == mode and metadata["UNIADRS_BANDS"] == "1,2,3"
    if mode == "local":
        assert (metadata["UNIADRS_INNER_WINDOW"], metadata["UNIADRS_OUTER_WINDOW"]) == ("3", "9")


def _mixed_unit_stack(small: float) -> tuple:
    """Three bands of optical counts and one of linear backscatter ``small`` times as
    large, where a 4x4 target stands out in the last band only."""
    rng = np.random.default_rng(7)
    image = np.empty((4, 60, 60))
    image[:3] = rng.normal(1500.0, 1000.0, (3, 60, 60))
    image[3] = rng.normal(1.0, 0.5, (60, 60))
    image[3, 20:24, 30:34] = 6.0
    scaled = image.copy()
    scaled[3] *= small
    return image, scaled


@pytest.mark.parametrize("small", [1e-5, 1e-7])
def test_global_rx_does_not_depend_on_a_bands_units(small):
    """RX is unit-free; pinv's relative cut-off was not, and dropped the small band."""
    image, scaled = _mixed_unit_stack(small)
    np.testing.assert_allclose(global_rx(scaled), global_rx(image), rtol=1e-5, atol=1e-6)


def test_local_rx_does_not_depend_on_a_bands_units():
    image, scaled = _mixed_unit_stack(1e-5)
    expected = local_rx(image, inner=3, outer=15)
    found = local_rx(scaled, inner=3, outer=15)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4)
    assert np.unravel_index(np.nanargmax(found), found.shape)[0] in range(20, 24)


def test_local_rx_with_every_component_does_not_depend_on_units_among_many_bands():
    """25 bands, every component kept: the small band is dropped by no tolerance."""
    rng = np.random.default_rng(11)
    image = rng.normal(1500.0, 1000.0, (25, 60, 60))
    image[24] = rng.normal(1.0, 0.5, (60, 60))
    image[24, 20:24, 30:34] = 8.0
    scaled = image.copy()
    scaled[24] *= 1e-6
    expected = local_rx(image, inner=3, outer=15, max_components=25)
    found = local_rx(scaled, inner=3, outer=15, max_components=25)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4)


def test_a_crs_given_is_carried_by_the_scores(tmp_path) -> None:
    from tests.raster_factory import write_raster

    image = np.random.default_rng(3).random((2, 12, 14)).astype(np.float32)
    path = write_raster(tmp_path / "no_crs.tif", image, epsg=None)
    for mode in ("global", "local"):
        output = tmp_path / f"{mode}.tif"
        rx_raster(path, output, mode=mode, inner=3, outer=7, crs="EPSG:32633")
        written = gdal.Open(str(output))
        reference = osr.SpatialReference(wkt=written.GetProjection())
        written = None
        assert reference.GetAuthorityCode(None) == "32633"
