"""Tests of modality presets and of scales from object sizes."""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace

import pytest
from osgeo import osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.inference.presets import (
    MAX_SCALE,
    MIN_SCALE,
    PRESETS,
    Preset,
    get_preset,
    resolve_auto_preset,
    resolve_scales,
    scale_for_object_size,
    scale_for_object_size_map_units,
)

GEOTRANSFORM_10M = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)


def test_table_has_every_modality() -> None:
    assert set(PRESETS) == {"auto", "hyperspectral", "visible", "sar", "infrared", "lowlight"}
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.scales and preset.tile > 0 and preset.description
    assert PRESETS["hyperspectral"].scales == (1.0, 2.0)
    assert PRESETS["visible"].scales == (0.5, 1.0)
    assert PRESETS["sar"].scales == (0.5, 1.0)
    assert PRESETS["infrared"].scales == (1.0, 2.0)


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="unknown preset"):
        get_preset("ultrasound")
    assert get_preset(" SAR ").name == "sar"


def test_model_card_presets_override_the_table() -> None:
    card = {
        "sar": {"scales": [0.25, 0.5], "halo": 96, "model_size": 224},
        "dem": {"tile": 128, "rx_weight": "0.5"},
    }
    sar = get_preset("sar", card)
    assert sar == Preset(
        "sar", (0.25, 0.5), PRESETS["sar"].tile, 96, description=PRESETS["sar"].description
    )
    dem = get_preset("dem", card)
    assert dem.tile == 128 and dem.scales == (1.0,) and dem.rx_weight == 0.5
    assert get_preset("visible", card) == PRESETS["visible"]
    with pytest.raises(InputError, match="out of range"):
        get_preset("bad", {"bad": {"scales": [0.0]}})
    with pytest.raises(InputError, match="weight of global RX"):
        get_preset("bad", {"bad": {"rx_weight": 1.0}})
    assert get_preset("sar", {"sar": {"views": 4}}).views == 4
    assert PRESETS["sar"].views == 1
    with pytest.raises(InputError, match="number of views"):
        get_preset("bad", {"bad": {"views": 3}})
    assert get_preset("visible", {"visible": {"fusion_power": "4"}}).fusion_power == 4.0
    # Only the visible preset fuses its scales nearer to their maximum (experiment 48).
    powers = {name: preset.fusion_power for name, preset in PRESETS.items()}
    assert powers.pop("visible") == 3.0 and set(powers.values()) == {1.0}
    with pytest.raises(InputError, match="fusion power"):
        get_preset("bad", {"bad": {"fusion_power": 0.5}})


def test_a_presets_card_entry_reads_back_as_the_same_preset() -> None:
    changed = replace(
        PRESETS["visible"],
        scales=(0.25, 0.5, 1.0),
        tile=256,
        halo=32,
        rx_weight=0.25,
        networks=(1, 2, 9),
        views=4,
        fusion_power=4.0,
    )
    for preset in (*PRESETS.values(), changed):
        entry = preset.card_entry()
        assert json.loads(json.dumps(entry)) == entry  # a card is JSON
        assert get_preset(preset.name, {preset.name: entry}) == preset
    assert "networks" not in PRESETS["sar"].card_entry()
    # Every setting a card may hold is written: a new field must be added to the entry.
    settings = {item.name for item in fields(Preset)} - {"name", "description"}
    assert set(changed.card_entry()) == settings


def test_auto_becomes_hyperspectral_for_many_bands() -> None:
    auto = get_preset("auto")
    assert resolve_auto_preset(auto, 3).name == "auto"
    assert resolve_auto_preset(auto, 120).name == "hyperspectral"
    assert resolve_auto_preset(get_preset("sar"), 120).name == "sar"


def test_the_hyperspectral_preset_on_few_bands_gets_a_warning(caplog) -> None:
    hyperspectral = get_preset("hyperspectral")
    with caplog.at_level("WARNING"):
        assert resolve_auto_preset(hyperspectral, 200) is hyperspectral
    assert caplog.text == ""
    with caplog.at_level("WARNING"):
        assert resolve_auto_preset(hyperspectral, 3) is hyperspectral
    assert "meant for rasters of 5 bands or more, and this one has 3" in caplog.text


@pytest.mark.parametrize(
    "pixels,scale", [(30, 1.0), (60, 0.5), (15, 2.0), (1, MAX_SCALE), (1e6, MIN_SCALE), (90, 0.333)]
)
def test_scale_for_object_size(pixels: float, scale: float) -> None:
    assert scale_for_object_size(pixels) == pytest.approx(scale)


@pytest.mark.parametrize("pixels", [0, -3, float("nan"), float("inf")])
def test_bad_object_sizes(pixels: float) -> None:
    with pytest.raises(InputError):
        scale_for_object_size(pixels)


def test_scale_from_map_units() -> None:
    assert scale_for_object_size_map_units(300.0, GEOTRANSFORM_10M) == pytest.approx(1.0)
    assert scale_for_object_size_map_units(1200.0, GEOTRANSFORM_10M) == pytest.approx(0.25)
    with pytest.raises(InputError, match="not georeferenced"):
        scale_for_object_size_map_units(5.0, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0))


def test_map_units_of_a_geographic_crs_are_refused_with_the_pixel_size_in_metres() -> None:
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    degrees = (10.0, 0.00001, 0.0, 50.0, 0.0, -0.00001)
    with pytest.raises(InputError, match=r"\(WGS 84\) is geographic.*about 1.11 m tall"):
        scale_for_object_size_map_units(30.0, degrees, wgs84.ExportToWkt())
    utm = osr.SpatialReference()
    utm.ImportFromEPSG(32633)
    assert scale_for_object_size_map_units(300.0, GEOTRANSFORM_10M, utm.ExportToWkt()) == 1.0


def test_a_clipped_scale_is_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="uniadrs_engine"):
        assert scale_for_object_size(2.0) == MAX_SCALE
    assert "objects of 2 px would need an input scale of 15; scales stop at 4" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="uniadrs_engine"):
        assert scale_for_object_size(60.0) == 0.5
    assert caplog.text == ""


def test_resolve_scales_priority_and_conflicts() -> None:
    visible = get_preset("visible")
    assert resolve_scales(visible) == (0.5, 1.0)
    assert resolve_scales(visible, scales=[1.0, 0.25, 1.0]) == (0.25, 1.0)
    assert resolve_scales(visible, object_size=15) == (2.0,)
    assert resolve_scales(visible, object_size_map_units=600, geotransform=GEOTRANSFORM_10M) == (
        0.5,
    )
    with pytest.raises(InputError, match="not both"):
        resolve_scales(visible, scales=[1.0], object_size=10)
    with pytest.raises(InputError, match="not both"):
        resolve_scales(visible, object_size=10, object_size_map_units=10)
    with pytest.raises(InputError, match="out of range"):
        resolve_scales(visible, scales=[8.0])
    with pytest.raises(InputError, match="at least one"):
        resolve_scales(visible, scales=[])
