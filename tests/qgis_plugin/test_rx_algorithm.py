from __future__ import annotations

import numpy as np
import processing
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from tests.qgis_plugin.conftest import assert_on_grid_of, read_band
from tests.raster_factory import write_netcdf, write_raster
from uniadrs_engine.baselines.rx import rx_raster

ALGORITHM = "uniadrs:rx"


def test_global_rx_matches_engine(provider, scene, tmp_path):
    result = processing.run(
        ALGORITHM, {"INPUT": str(scene), "BANDS": [1, 2, 5], "OUTPUT": str(tmp_path / "rx.tif")}
    )
    engine = rx_raster(scene, tmp_path / "engine.tif", mode="global", bands=[1, 2, 5])
    assert_on_grid_of(result["OUTPUT"], scene)
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert result["BACKGROUND_PIXELS"] == engine.background_pixels


def test_an_empty_band_text_means_every_band(provider, scene, tmp_path):
    # qgis_process passes ``BANDS=`` as an empty text, which QGIS reads as band 0
    result = processing.run(
        ALGORITHM, {"INPUT": str(scene), "BANDS": "", "OUTPUT": str(tmp_path / "rx.tif")}
    )
    engine = rx_raster(scene, tmp_path / "engine.tif", mode="global")
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))


def test_bands_that_hold_no_value_are_left_out_with_a_warning(provider, tmp_path):
    image = np.random.default_rng(6).random((3, 18, 16)).astype(np.float32)
    image[1] = np.nan
    path = write_raster(tmp_path / "dead_band.tif", image)
    feedback = QgsProcessingFeedback()
    warnings = []
    feedback.pushWarning = warnings.append  # type: ignore[method-assign]
    result = processing.run(
        ALGORITHM, {"INPUT": str(path), "OUTPUT": str(tmp_path / "rx.tif")}, feedback=feedback
    )
    engine = rx_raster(path, tmp_path / "engine.tif", mode="global", bands=[1, 3])
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert warnings == ["RX: band 2 left out: it holds no value"]


def test_local_rx_windows_in_map_units_equal_pixel_windows(provider, scene, tmp_path):
    in_pixels = processing.run(
        ALGORITHM,
        {
            "INPUT": str(scene),
            "MODE": 1,
            "INNER_WINDOW": 3,
            "OUTER_WINDOW": 9,
            "OUTPUT": str(tmp_path / "pixels.tif"),
        },
    )
    in_metres = processing.run(  # 10 m pixels: 30 m and 90 m are 3 and 9 pixels
        ALGORITHM,
        {
            "INPUT": str(scene),
            "MODE": 1,
            "WINDOW_UNITS": 1,
            "INNER_WINDOW": 30.0,
            "OUTER_WINDOW": 90.0,
            "OUTPUT": str(tmp_path / "metres.tif"),
        },
    )
    engine = rx_raster(scene, tmp_path / "engine.tif", mode="local", inner=3, outer=9)
    expected = read_band(engine.output_path)
    np.testing.assert_allclose(read_band(in_pixels["OUTPUT"]), expected)
    np.testing.assert_allclose(read_band(in_metres["OUTPUT"]), expected)
    assert_on_grid_of(in_metres["OUTPUT"], scene)


def test_windows_in_degrees_are_refused(provider, tmp_path):
    image = np.random.default_rng(2).random((2, 30, 30)).astype(np.float32)
    degrees = (10.0, 0.0001, 0.0, 50.0, 0.0, -0.0001)
    path = write_raster(tmp_path / "wgs84.tif", image, geotransform=degrees, epsg=4326)
    parameters = {
        "INPUT": str(path),
        "MODE": 1,
        "WINDOW_UNITS": 1,
        "INNER_WINDOW": 90.0,
        "OUTER_WINDOW": 210.0,
        "OUTPUT": str(tmp_path / "r.tif"),
    }
    with pytest.raises(QgsProcessingException, match="geographic.*give the windows in pixels"):
        processing.run(ALGORITHM, parameters)
    assert not (tmp_path / "r.tif").exists()


def test_background_mask_is_passed_on(provider, scene, tmp_path):
    background = np.ones((40, 48), dtype=np.uint8)
    background[:10] = 0
    mask_path = write_raster(tmp_path / "background.tif", background)
    result = processing.run(
        ALGORITHM,
        {"INPUT": str(scene), "BACKGROUND_MASK": str(mask_path), "OUTPUT": str(tmp_path / "r.tif")},
    )
    engine = rx_raster(scene, tmp_path / "engine.tif", background_mask_path=mask_path)
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
    assert result["BACKGROUND_PIXELS"] == 30 * 48


def test_bad_windows_are_a_clear_error(provider, scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="odd|larger"):
        processing.run(
            ALGORITHM,
            {
                "INPUT": str(scene),
                "MODE": 1,
                "INNER_WINDOW": 9,
                "OUTER_WINDOW": 5,
                "OUTPUT": str(tmp_path / "r.tif"),
            },
        )
    assert not (tmp_path / "r.tif").exists()


def test_a_subdataset_of_a_container_is_an_input_and_the_container_names_them(provider, tmp_path):
    image = np.random.default_rng(8).random((12, 14)).astype(np.float32)
    path = tmp_path / "scene.nc"
    write_netcdf(path, {"radiance": image, "quality": np.ones_like(image)})
    subdataset = f'NETCDF:"{path}":radiance'
    result = processing.run(ALGORITHM, {"INPUT": subdataset, "OUTPUT": str(tmp_path / "rx.tif")})
    engine = rx_raster(subdataset, tmp_path / "engine.tif", mode="global")
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
    with pytest.raises(QgsProcessingException, match="pass one of its subdatasets instead: "):
        processing.run(ALGORITHM, {"INPUT": str(path), "OUTPUT": str(tmp_path / "c.tif")})


@pytest.mark.parametrize("text", ["1,3", "1 3", "1;3"])
def test_a_band_text_is_a_band_list(provider, scene, tmp_path, text):
    # ``qgis_process ... BANDS=1,3`` passes "1,3", which QGIS itself reads as band 0
    result = processing.run(
        ALGORITHM, {"INPUT": str(scene), "BANDS": text, "OUTPUT": str(tmp_path / "rx.tif")}
    )
    engine = rx_raster(scene, tmp_path / "engine.tif", mode="global", bands=[1, 3])
    np.testing.assert_allclose(read_band(result["OUTPUT"]), read_band(engine.output_path))
