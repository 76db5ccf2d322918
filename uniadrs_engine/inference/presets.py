"""Modality presets (input scales, tile and halo) and the choice of scales from object sizes.

The network separates small deviating regions (anomalies, roughly 15–55 px at its input)
from large ones (normal objects), so the *input scale* matters: a raster is resampled by the
scale before scoring and the score map back afterwards. A preset bundles the scales (several
are fused by a (power) mean of their ranks, see :mod:`uniadrs_engine.inference.fusion`), the
core tile size and the halo of context for one modality. This module holds the ONE table of
built-in presets (:data:`PRESETS`); a model card's ``presets`` entries override it for that
model.

Scale choice, by priority: explicit scales; an expected object size (``30 / size`` in
pixels, see :func:`scale_for_object_size`); the preset's scales.

Example:
    >>> resolve_scales(get_preset("visible"))
    (0.5, 1.0)
    >>> resolve_scales(get_preset("visible"), object_size=60)
    (0.5,)
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from uniadrs_engine.errors import InputError
from uniadrs_engine.inference.fusion import check_fusion_power, check_rx_weight
from uniadrs_engine.inference.views import check_views
from uniadrs_engine.raster.map_units import check_map_unit_lengths, pixel_size_of
from uniadrs_engine.raster.normalisation import RASTER_SCOPE, check_normalisation_scope

#: Object size, at the network's input, that the network scores best (pixels).
PREFERRED_OBJECT_PIXELS = 30.0

#: Scales outside this range are clipped (an input scale of 1/16 to 4).
MIN_SCALE, MAX_SCALE = 1.0 / 16.0, 4.0

LOGGER = logging.getLogger(__name__)

#: Bands from which ``auto`` treats a raster as hyperspectral.
HYPERSPECTRAL_MIN_BANDS = 5

#: Default core tile size, in network input pixels (raster pixels at scale 1).
DEFAULT_TILE = 512

#: Default context on each side of a tile, in network input pixels (see the detector).
DEFAULT_HALO = 64


@dataclass(frozen=True)
class Preset:
    """Inference settings for one modality.

    Attributes:
        name: Preset name.
        scales: Input scales; several are fused by a mean of their ranks (``fusion_power``).
        tile: Core tile size in network input pixels (raster pixels at scale 1).
        halo: Context on each side of a tile in network input pixels, or None for
            :data:`DEFAULT_HALO`.
        rx_weight: Weight of global RX's rank in the fused score, in ``[0, 1)``; 0 scores
            with the network alone (see :func:`~uniadrs_engine.inference.fusion.fusion_weights`).
        description: One line for help texts.
        networks: 1-based numbers of the model's networks that score with this preset, or
            None for all of them (a model card may name them for its ensemble; see
            :func:`~uniadrs_engine.model.ensemble.select_networks`).
        normalisation_scope: Where the input statistics come from, the whole raster or each
            tile's read window (:data:`~uniadrs_engine.raster.normalisation.NORMALISATION_SCOPES`).
        views: Test-time views averaged per tile (1, 2, 4 or 8; see
            :mod:`uniadrs_engine.inference.views`); each costs one more forward pass.
        fusion_power: Power of the mean that fuses the scales' ranks, 1 (their average: a
            pixel must rank high at every scale) to 64 (near their maximum: at any one
            scale); see :class:`~uniadrs_engine.inference.fusion.PowerMean`.
    """

    name: str
    scales: Tuple[float, ...]
    tile: int = DEFAULT_TILE
    halo: Optional[int] = None
    rx_weight: float = 0.0
    description: str = ""
    networks: Optional[Tuple[int, ...]] = None
    normalisation_scope: str = RASTER_SCOPE
    views: int = 1
    fusion_power: float = 1.0

    def card_entry(self) -> Dict[str, Any]:
        """The preset as a model card's ``presets`` entry (the inverse of :func:`get_preset`).

        Every setting is written, ``networks`` only when the preset names them; the name is
        the entry's key and the description stays the built-in table's.

        Example:
            >>> Preset("visible", (0.5, 1.0), networks=(1, 2)).card_entry()["networks"]
            [1, 2]
        """
        entry: Dict[str, Any] = {
            "scales": list(self.scales),
            "tile": self.tile,
            "halo": self.halo,
            "rx_weight": self.rx_weight,
            "normalisation_scope": self.normalisation_scope,
            "views": self.views,
            "fusion_power": self.fusion_power,
        }
        if self.networks is not None:
            entry["networks"] = list(self.networks)
        return entry


#: The built-in presets. Their scales are fixed in advance, never tuned on benchmark scenes:
#: the network scores deviations of about 15-55 px at its input best (~30 px), so each
#: modality's scales bring its typical anomaly size in pixels near that, and two scales an
#: octave apart are fused (a mean of ranks) because sizes vary within a modality:
#:
#: * hyperspectral (1, 2): anomalies in airborne/spaceborne cubes are mostly 1-10 px
#:   (vehicles, roofs, aircraft at 1-20 m) and are found by their spectra; upsampling brings
#:   the small ones towards the network's range.
#: * visible (0.5, 1): vehicles, aircraft and ships in 0.3-1 m RGB are about 15-80 px; their
#:   ranks are fused at power 3, nearer to the maximum than the average, so that an object
#:   that fits one scale and looks large (normal) at the other stays high (chosen on
#:   simulated data, docs/DEFAULT_MODEL.md experiments 47-48).
#: * sar (0.5, 1): ships in high-resolution SAR chips are about 10-60 px long.
#: * infrared (1, 2): infrared *small* targets are by definition under about 9x9 px.
#: * lowlight (0.5, 1): lights, vehicles and vessels at night are about 10-40 px.
#: * auto (0.5, 1): objects of unknown size, at the cost of two passes; rasters of 5 bands
#:   or more use the hyperspectral settings.
PRESETS: Dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "auto",
            (0.5, 1.0),
            description="any modality: hyperspectral settings from 5 bands, else two fused scales",
        ),
        Preset("hyperspectral", (1.0, 2.0), description="hyperspectral cubes (spectral anomalies)"),
        Preset(
            "visible",
            (0.5, 1.0),
            description="RGB / multispectral aerial or satellite",
            fusion_power=3.0,
        ),
        Preset("sar", (0.5, 1.0), description="synthetic aperture radar amplitude"),
        Preset("infrared", (1.0, 2.0), description="thermal infrared (small targets)"),
        Preset("lowlight", (0.5, 1.0), description="night-time / low-light imagery"),
    )
}


def preset_names() -> Tuple[str, ...]:
    """Names of the built-in presets, ``auto`` first."""
    return tuple(PRESETS)


def _preset_from_mapping(name: str, values: Mapping[str, Any], base: Preset) -> Preset:
    """Applies a model card's preset entry over a built-in (or empty) preset."""
    known = {item.name for item in fields(Preset)} - {"name"}
    if not isinstance(values, Mapping):
        raise InputError(f"preset {name!r}: expected a mapping of settings, got {values!r}")
    changes: Dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            continue  # cards may carry informative extras (e.g. model size)
        try:
            changes[key] = _preset_value(key, value)
        except (TypeError, ValueError):
            raise InputError(
                f"preset {name!r}: {key} {value!r} is not {_PRESET_VALUE_KINDS.get(key, 'valid')}"
            ) from None
    return replace(base, name=name, **changes)


#: What each preset setting must be, for the messages of :func:`_preset_value`.
_PRESET_VALUE_KINDS = {
    "scales": "a list of numbers",
    "tile": "a whole number of pixels, at least 1",
    "halo": "a whole number of pixels, at least 0",
    "rx_weight": "a number",
    "networks": "a list of network numbers (from 1)",
    "normalisation_scope": "a text",
}


def _whole(value: Any, least: int) -> int:
    """``value`` as a whole number of at least ``least`` (``32.0`` too); ValueError otherwise."""
    if isinstance(value, bool) or not math.isfinite(float(value)):
        raise ValueError(value)
    if float(value) != int(float(value)) or int(value) < least:
        raise ValueError(value)
    return int(value)


def _preset_value(key: str, value: Any) -> Any:
    """One setting of a card's preset entry in the type :class:`Preset` holds it.

    Raises:
        ValueError, TypeError: The value is not of that kind (see :data:`_PRESET_VALUE_KINDS`).
        InputError: A views count or fusion power out of range.
    """
    if key == "scales":
        if isinstance(value, (str, bytes)):
            raise TypeError(value)
        return tuple(float(scale) for scale in value)
    if key in ("tile", "halo") and value is not None:
        return _whole(value, 1 if key == "tile" else 0)
    if key == "rx_weight":
        return float(value)
    if key == "networks" and value is not None:
        if isinstance(value, (str, bytes)):
            raise TypeError(value)
        return tuple(_whole(number, 1) for number in value)
    if key == "normalisation_scope":
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if key == "views":
        return check_views(value)
    if key == "fusion_power":
        return check_fusion_power(value)
    return value


def get_preset(name: str, card_presets: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Preset:
    """Returns a preset by name; a model card's entry of that name overrides the built-in one.

    Args:
        name: Preset name (case-insensitive).
        card_presets: The model card's ``presets`` (may be empty or None).

    Raises:
        InputError: If neither the table nor the card knows the name.
    """
    key = name.strip().lower()
    card_presets = card_presets or {}
    base = PRESETS.get(key)
    if key in card_presets:
        preset = _preset_from_mapping(key, card_presets[key], base or Preset(key, (1.0,)))
    elif base is not None:
        preset = base
    else:
        choices = sorted(set(PRESETS) | set(card_presets))
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(choices)}")
    check_scales(preset.scales)
    check_rx_weight(preset.rx_weight)
    check_normalisation_scope(preset.normalisation_scope)
    check_views(preset.views)
    check_fusion_power(preset.fusion_power)
    return preset


def resolve_auto_preset(
    preset: Preset,
    band_count: int,
    card_presets: Optional[Mapping[str, Mapping[str, Any]]] = None,
) -> Preset:
    """Turns ``auto`` into hyperspectral settings for rasters of many bands.

    Any other preset is returned unchanged. With fewer than :data:`HYPERSPECTRAL_MIN_BANDS`
    bands ``auto`` keeps its own (two-scale) settings, and the ``hyperspectral`` preset gets
    a warning: its scales look for spectral anomalies of a few pixels, not for objects.
    """
    if preset.name == "auto" and band_count >= HYPERSPECTRAL_MIN_BANDS:
        return get_preset("hyperspectral", card_presets)
    if preset.name == "hyperspectral" and band_count < HYPERSPECTRAL_MIN_BANDS:
        LOGGER.warning(
            "the hyperspectral preset is meant for rasters of %d bands or more, and this one "
            "has %d: its scales look for spectral anomalies of a few pixels; the preset of "
            "the raster's modality, or auto, suits it better",
            HYPERSPECTRAL_MIN_BANDS,
            band_count,
        )
    return preset


def check_scales(scales: Sequence[float]) -> Tuple[float, ...]:
    """Validates scales (positive, finite, within the clip range) and returns them as a tuple.

    Raises:
        InputError: If the list is empty or a scale is out of range.
    """
    values = tuple(float(scale) for scale in scales)
    if not values:
        raise InputError("at least one scale is needed")
    for scale in values:
        if not math.isfinite(scale) or not MIN_SCALE <= scale <= MAX_SCALE:
            raise InputError(f"scale {scale:g} is out of range ({MIN_SCALE:g} to {MAX_SCALE:g})")
    return values


def scale_for_object_size(pixels: float) -> float:
    """Input scale that brings objects of ``pixels`` raster pixels to the preferred size.

    ``scale = 30 / pixels``, clipped to ``[1/16, 4]`` and rounded to 3 significant digits.
    A clipped scale is logged as a warning: the objects will not reach the preferred size.

    Raises:
        InputError: If the size is not a positive number.
    """
    if not math.isfinite(pixels) or pixels <= 0:
        raise InputError(f"the object size must be a positive number of pixels, got {pixels}")
    wanted = PREFERRED_OBJECT_PIXELS / float(pixels)
    scale = min(MAX_SCALE, max(MIN_SCALE, wanted))
    if scale != wanted:
        LOGGER.warning(
            "objects of %.4g px would need an input scale of %.3g; scales stop at %g, where "
            "they are %.3g px at the network's input (it scores about %g px best)",
            pixels,
            wanted,
            scale,
            pixels * scale,
            PREFERRED_OBJECT_PIXELS,
        )
    return float(f"{scale:.3g}")


def scale_for_object_size_map_units(
    size: float, geotransform: Sequence[float], crs_wkt: str = ""
) -> float:
    """Input scale for objects ``size`` map units across (metres, feet...) on a raster.

    Args:
        size: The objects' width in the units of the raster's projected CRS.
        geotransform: The raster's geotransform.
        crs_wkt: The raster's CRS as WKT (empty: unknown, the units are taken as given).

    Raises:
        InputError: If the size is not positive, the raster has no pixel size, or its CRS
            is geographic: its map units are degrees, in which no one measures an object.
    """
    if not math.isfinite(size) or size <= 0:
        raise InputError(f"the object size must be a positive length, got {size}")
    check_map_unit_lengths(geotransform, crs_wkt, "the object size")
    return scale_for_object_size(size / pixel_size_of(geotransform))


def resolve_scales(
    preset: Preset,
    scales: Optional[Sequence[float]] = None,
    object_size: Optional[float] = None,
    object_size_map_units: Optional[float] = None,
    geotransform: Optional[Sequence[float]] = None,
    crs_wkt: str = "",
) -> Tuple[float, ...]:
    """Returns the input scales to use, by priority: explicit, object size, preset.

    Args:
        preset: The preset in use.
        scales: Explicit scales, or None.
        object_size: Expected anomaly size in raster pixels, or None.
        object_size_map_units: Expected anomaly size in map units, or None (needs
            ``geotransform``).
        geotransform: The raster's geotransform, for map-unit sizes.
        crs_wkt: The raster's CRS as WKT, for map-unit sizes (empty: unknown).

    Raises:
        InputError: If both an explicit scale and an object size are given, both kinds of
            object size are given, or a value is out of range.
    """
    if object_size is not None and object_size_map_units is not None:
        raise InputError("give the object size in pixels or in map units, not both")
    size_given = object_size is not None or object_size_map_units is not None
    if scales is not None and size_given:
        raise InputError("give either scales or an object size, not both")
    if scales is not None:
        return tuple(sorted(set(check_scales(scales))))
    if object_size is not None:
        return (scale_for_object_size(object_size),)
    if object_size_map_units is not None:
        if geotransform is None:
            raise InputError("an object size in map units needs the raster's geotransform")
        return (scale_for_object_size_map_units(object_size_map_units, geotransform, crs_wkt),)
    return check_scales(preset.scales)
