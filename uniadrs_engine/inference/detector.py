"""Tiled, memory-bounded anomaly detection on a raster file of any size.

:func:`detect_raster` reads a raster (any GDAL format, a band selection), normalises it as
the model card says with statistics of the whole raster (one streaming pass: per-band
maxima, or mean and covariance for spectral whitening), scores it tile by
tile at one or more input scales and writes a float32 score GeoTIFF on the input's grid
(nodata :data:`~uniadrs_engine.raster.writer.SCORE_NODATA` where the input is invalid).
Several scales are fused by a (power) mean of their ranks (:mod:`uniadrs_engine.inference.fusion`,
``DetectionOptions.fusion_power`` or the preset's); with an
RX weight above 0 (``DetectionOptions.rx_weight`` or the preset's), global RX of the same
bands is computed too (its mean and covariance come from the same statistics pass) and its
rank is fused with the network's at that weight. With the normalisation scope ``tile``
(``DetectionOptions.normalisation_scope`` or the preset's) each tile's read window is
normalised by its own statistics instead, as training normalises each crop. With more than
one test-time view (``DetectionOptions.views`` or the preset's) each tile is also scored
mirrored (and turned) and the views' scores are averaged
(:mod:`uniadrs_engine.inference.views`).

Tiles. ``tile`` and ``halo`` are measured in pixels of the network's input: at scale 1 they
are raster pixels, at scale 0.5 a tile covers twice as many raster pixels. So the work and
memory of one tile do not depend on the scale. Each core tile is read with a halo of context
on every side; beyond the raster's edge the halo is mirror-padded (as the published
protocol pads its tiles, METHOD.md §7); the tile is resampled by the scale, scored,
resampled back and only its core is kept. Along an axis where one tile plus its halos
would cover the whole raster, the whole axis is scored at once with no padding: a raster
that small is scored exactly as a whole image
(:func:`~uniadrs_engine.inference.scoring.score_image`).

Default halo. The network's convolutional receptive field reaches about 560 input pixels in
each direction (encoder ~200: dilated E4/E5 stages at 1/8 resolution; then ~360 more through
the decoder cells' 7x7 dilation-2 LAM, three of them at 1/8), so covering it is out of the
question: a 256 px tile would need 4x its area in context. Besides, instance normalisation
makes every output depend on the statistics of the whole input, so no finite halo makes tiled
scores equal to whole-image ones. :data:`~uniadrs_engine.inference.presets.DEFAULT_HALO` is
64 input pixels: eight cells at 1/8 resolution, more than the largest object the network
treats as an anomaly (about 55 px). With the default 512 px tile that is (640/512)^2 = 1.56
times the work of the core alone; 512 px tiles also show fewer seams between tiles than 256 px
ones (each tile is normalised on its own) and, on the 800x800 sample scene, ran in 10.7 s
against 16.7 s with less peak memory. ``tests/inference/test_detector.py`` records how far
tiled scores are from whole-image scores; ``scripts/bench_memory.py --agreement`` measures it
for a trained model.

Full tiles, not balanced ones. An axis a little longer than one tile (800 px with 512 px
tiles) gets a full tile and a last one whose read window is shifted back to full size, so
the second input repeats most of the first (2.56x the raster's pixels at 800x800). Balanced
cores (two 400 px cores, 528 px inputs, 1.74x) were measured on the 800x800 sample scene
with 6.0 at scale 1 (2026-11-25, one thread, under load): 2.1x faster (24.1 s against
50.9 s) but further from whole-image scores (Spearman 0.938 against 0.952; 0.877 against
0.900 with 256 px tiles), the price of the smaller inputs' instance statistics. Closeness to
whole-image scoring (what a raster that fits one tile gets) was kept. (The published
protocol, METHOD.md §7, is another thing: images resized to 256x256 and scored in small
tiles, 50 px with 40 px of padding for hyperspectral ones; docs/DEFAULT_MODEL.md,
experiment 26.)

Nodata. Only the smallest window holding every valid pixel is tiled and scored
(:mod:`uniadrs_engine.inference.extent`); the collar around it is written as nodata and costs
no time. Inside that window, pixels without a value take the values of the nearest valid
pixel of their tile (:func:`~uniadrs_engine.inference.scoring.fill_from_nearest`, as each tile
is read; a tile without one keeps the band means), and each tile that holds any goes to the
network with its validity (padded and resampled with it; the fully valid tiles of its batch
are scored apart, without), so that the instance statistics are the valid pixels' alone
(:meth:`~uniadrs_engine.model.network.UniADRS.forward`'s ``valid``). Before, a 16 px collar on
a small scene changed valid scores to a Spearman correlation of 0.77 with those of the scene
cropped to them; docs/ARCHITECTURE.md, "Pixels without data", measures what is left.

Memory. Everything is bounded by ``memory_mb``: statistics and fusion stream row strips, and
the batch of tiles is lowered (down to 1, then the tile is shrunk) until the estimated peak
of one batch (:func:`estimate_tile_bytes`, including the next batch, read ahead in a
background thread while this one is scored) fits beside the network's weights. GDAL's block
cache (``GDAL_CACHEMAX``, a fixed cap) comes on top; ``uniadrs detect`` lowers it to a
quarter of the budget (:func:`~uniadrs_engine.raster.reader.limit_gdal_cache`). Peak memory
does not grow with the raster's size (``scripts/bench_memory.py`` measures it).

Example:
    >>> report = detect_raster("scene.tif", "scores.tif", DetectionOptions(preset="visible"))
    ... # doctest: +SKIP
    >>> report.summary_line()  # doctest: +SKIP
    'scores min 0.001 mean 0.132 max 0.981 | 12 tiles, 3.2 s on cpu'
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from uniadrs_engine.baselines.rx import write_global_rx
from uniadrs_engine.errors import DeviceError, InputError
from uniadrs_engine.inference.device import describe_device, resolve_device
from uniadrs_engine.inference.extent import ExtentView, ExtentWriter, valid_extent
from uniadrs_engine.inference.fusion import (
    ScoreHistogram,
    check_fusion_power,
    check_rx_weight,
    fuse_score_rasters,
    fusion_weights,
    temporary_raster_path,
)
from uniadrs_engine.inference.presets import (
    DEFAULT_HALO,
    Preset,
    get_preset,
    resolve_auto_preset,
    resolve_scales,
)
from uniadrs_engine.inference.scoring import (
    checks_between_passes,
    fill_from_nearest,
    padded_size,
    scaled_size,
    score_tiles,
)
from uniadrs_engine.inference.views import check_views
from uniadrs_engine.model.config import SIZE_MULTIPLE, ModelConfig
from uniadrs_engine.model.ensemble import network_count, select_networks
from uniadrs_engine.model.model_file import LoadedModel, load_model
from uniadrs_engine.progress import (
    CancelCheck,
    ProgressCallback,
    ProgressReporter,
    never_backwards,
)
from uniadrs_engine.raster.nodata import NodataRule, nodata_provenance
from uniadrs_engine.raster.normalisation import (
    RASTER_SCOPE,
    TILE_SCOPE,
    InputScaling,
    WindowNormalisation,
    check_normalisation_scope,
    needs_covariance,
    scaling_from_statistics,
)
from uniadrs_engine.raster.reader import RasterSource, Window, open_raster, select_bands
from uniadrs_engine.raster.statistics import (
    check_varies,
    compute_band_statistics,
    describe_bands_left_out,
    without_empty_bands,
)
from uniadrs_engine.raster.tiling import Tile, TileGrid, pad_tile
from uniadrs_engine.raster.writer import (
    SCORE_OVERVIEWS,
    ScoreRasterWriter,
    check_geotiff_path,
    check_not_an_input,
    provenance,
    remove_if_exists,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: Tiles are not shrunk below this (network input pixels) to fit the memory budget.
MIN_TILE = 32

#: Margin over the estimated activation memory (allocator slack, temporaries).
MEMORY_SAFETY_FACTOR = 1.2

#: Share of the progress bar given to the statistics pass, the fusion pass and global RX.
STATISTICS_SHARE, FUSION_SHARE, RX_SHARE = 0.05, 0.05, 0.05

#: The description of a detection's score band (QGIS shows it instead of "Band 1").
SCORE_BAND_DESCRIPTION = "UniADRS anomaly score"

#: Largest row strip of the streaming passes (statistics, fusion), in MiB.
STRIP_MEMORY_MB = 64

_MIB = 1024 * 1024


def _strip_memory_mb(memory_mb: float) -> float:
    """Budget of one row strip: small (strips need not be large to be efficient)."""
    return min(STRIP_MEMORY_MB, memory_mb / 4)


@dataclass
class DetectionOptions:
    """What to detect with and how.

    Attributes:
        model: Model file path, ``"default"``, or an already loaded model.
        bands: 1-based bands to use, or None for all.
        preset: Modality preset name (``auto``, ``hyperspectral``, ``visible``, ``sar``,
            ``infrared``, ``lowlight``, or one of the model card's).
        scales: Explicit input scales (overrides the preset), or None.
        object_size: Expected anomaly size in raster pixels (sets the scale), or None.
        object_size_map_units: Expected anomaly size in map units, or None.
        tile: Core tile size in network input pixels, or None for the preset's (512 by default).
        halo: Context on each side in network input pixels, or None for the preset's or
            :data:`DEFAULT_HALO`.
        batch_size: Most tiles per forward pass (lowered to fit ``memory_mb``).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        memory_mb: Memory budget in MiB.
        rx_weight: Weight of global RX's rank in the fused score, in ``[0, 1)`` (0: the
            network alone), or None for the preset's.
        networks: 1-based numbers of an ensemble's networks to score with (fewer are
            faster), or None for the preset's (all, unless the model card names some).
        normalisation_scope: ``raster`` (the input normalised with the whole raster's
            statistics) or ``tile`` (each tile's read window with its own, as training
            normalises each crop), or None for the preset's (``raster``).
        views: Test-time views averaged per tile (1, 2, 4 or 8: the tile as is, mirrored,
            turned; see :mod:`uniadrs_engine.inference.views`), or None for the preset's.
            Each view is one more forward pass.
        fusion_power: Power of the mean that fuses several scales' ranks, and global RX's
            with an RX weight (1: their weighted average; up to 64: near their maximum), or
            None for the preset's.
        nodata: Values that hold no data besides (or instead of) the file's nodata (a fill
            the file does not declare), or None for the file's alone; such pixels are left
            out of the statistics and scored as nodata.
        crs: The raster's CRS in place of the file's (WKT or ``EPSG:code``: a QGIS layer's
            whose CRS its user set), or None for the file's. Object sizes in map units are
            measured in it and the score raster carries it.
    """

    model: Union[str, Path, LoadedModel] = "default"
    bands: Optional[Sequence[int]] = None
    preset: str = "auto"
    scales: Optional[Sequence[float]] = None
    object_size: Optional[float] = None
    object_size_map_units: Optional[float] = None
    tile: Optional[int] = None
    halo: Optional[int] = None
    batch_size: int = 4
    device: str = "auto"
    memory_mb: float = 1024
    rx_weight: Optional[float] = None
    networks: Optional[Sequence[int]] = None
    normalisation_scope: Optional[str] = None
    views: Optional[int] = None
    fusion_power: Optional[float] = None
    nodata: Optional[NodataRule] = None
    crs: Optional[str] = None

    def check(self) -> None:
        """Raises :class:`InputError` for values out of range."""
        if self.tile is not None and self.tile < 1:
            raise InputError(f"tile must be a positive number of pixels, got {self.tile}")
        if self.halo is not None and self.halo < 0:
            raise InputError(f"halo must not be negative, got {self.halo}")
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        if self.memory_mb < 16:
            raise InputError(f"memory budget must be at least 16 MiB, got {self.memory_mb}")
        if self.rx_weight is not None:
            check_rx_weight(self.rx_weight)
        if self.networks is not None and not self.networks:
            raise InputError("the list of networks is empty")
        if self.normalisation_scope is not None:
            check_normalisation_scope(self.normalisation_scope)
        if self.views is not None:
            check_views(self.views)
        if self.fusion_power is not None:
            check_fusion_power(self.fusion_power)


@dataclass
class DetectionReport:
    """What :func:`detect_raster` did.

    Attributes:
        output_path: The score raster written.
        seconds: Wall time.
        tile_count: Tiles scored, over all scales.
        device: The device used, in words.
        scales: Input scales used (several are fused by a mean of their ranks).
        score_min: Smallest output score over valid pixels.
        score_max: Largest output score.
        score_mean: Mean output score.
        valid_pixels: Pixels with a score (not nodata).
        model_summary: One line about the model.
        preset: The preset used (``auto`` resolved).
        batch_sizes: Batch size used at each scale (after the memory budget).
        rx_weight: Weight of global RX in the fused score (0: the network alone).
        networks: 1-based numbers of the model's networks that scored.
        network_total: How many networks the model has.
        normalisation_scope: Where the input statistics came from (``raster`` or ``tile``).
        views: Test-time views averaged per tile.
        fusion_power: Power of the mean that fused the maps' ranks (1: their average, and
            1 when there was nothing to fuse: one scale and no global RX).
        bands_left_out: 1-based bands of the selection left out because they hold no value
            anywhere (nodata or not finite everywhere; see
            :func:`~uniadrs_engine.raster.statistics.without_empty_bands`).
        bad_bands: 1-based bands left out of the default selection because the file's ENVI
            bad band list marks them (:func:`~uniadrs_engine.raster.reader.select_bands`).
        scored_window: The window scored when a nodata collar around it was left out
            (:mod:`uniadrs_engine.inference.extent`), else None.
    """

    output_path: Path
    seconds: float
    tile_count: int
    device: str
    scales: Tuple[float, ...]
    score_min: float
    score_max: float
    score_mean: float
    valid_pixels: int
    model_summary: str
    preset: str = ""
    batch_sizes: Tuple[int, ...] = field(default_factory=tuple)
    rx_weight: float = 0.0
    networks: Tuple[int, ...] = (1,)
    network_total: int = 1
    normalisation_scope: str = RASTER_SCOPE
    views: int = 1
    fusion_power: float = 1.0
    bands_left_out: Tuple[int, ...] = ()
    bad_bands: Tuple[int, ...] = ()
    scored_window: Optional[Window] = None

    def describe_bands_left_out(self) -> str:
        """``"bands 130-135 left out: they hold no value"``, or ``""`` when none was."""
        return describe_bands_left_out(self.bands_left_out, self.bad_bands)

    def summary_line(self) -> str:
        """One line for logs: score range, tiles, time, device."""
        scales = ", ".join(f"{scale:g}" for scale in self.scales)
        rx = f" + global RX (weight {self.rx_weight:g})" if self.rx_weight > 0 else ""
        statistics = " | statistics per tile" if self.normalisation_scope == TILE_SCOPE else ""
        views = f" | {self.views} views" if self.views > 1 else ""
        power = f" (fusion power {self.fusion_power:g})" if self.fusion_power != 1 else ""
        left_out = self.describe_bands_left_out()
        left_out = f" | {left_out}" if left_out else ""
        if self.scored_window is not None:
            x, y, width, height = self.scored_window
            left_out += f" | nodata collar left out: {width}x{height} px scored from ({x}, {y})"
        return (
            f"scores min {self.score_min:.4g} mean {self.score_mean:.4g} "
            f"max {self.score_max:.4g} over {self.valid_pixels} pixels | scale {scales}{rx}"
            f"{power}{statistics}{views}{left_out} | "
            f"{self.describe_networks()} | "
            f"{self.tile_count} tiles in {self.seconds:.1f} s on {self.device}"
        )

    def describe_networks(self) -> str:
        """``"6 networks"``, ``"networks 5, 6 of 6"`` or ``"1 network"``."""
        if len(self.networks) == self.network_total:
            plural = "s" if self.network_total > 1 else ""
            return f"{self.network_total} network{plural}"
        numbers = ", ".join(str(number) for number in self.networks)
        plural = "s" if len(self.networks) > 1 else ""
        return f"network{plural} {numbers} of {self.network_total}"


@dataclass
class ScalePlan:
    """How one scale is tiled and batched.

    Attributes:
        scale: Input scale.
        grid: Tiles over the raster (uniform padded shapes).
        input_shape: ``(rows, cols)`` of a padded tile in raster pixels.
        network_shape: ``(rows, cols)`` the network sees (multiples of 8).
        batch_size: Tiles per forward pass.
        tile_bytes: Estimated peak memory of one tile.
    """

    scale: float
    grid: TileGrid
    input_shape: Tuple[int, int]
    network_shape: Tuple[int, int]
    batch_size: int
    tile_bytes: int

    def describe(self) -> str:
        """One line for logs."""
        grid = self.grid
        return (
            f"scale {self.scale:g}: {len(grid)} tiles of {grid.tile_x}x{grid.tile_y} + halo "
            f"{grid.halo_x}/{grid.halo_y} raster px, network input "
            f"{self.network_shape[1]}x{self.network_shape[0]}, batch {self.batch_size} "
            f"(~{self.tile_bytes / _MIB:.0f} MiB a tile)"
        )


#: Per-pixel maps (float32 sized) a tile with pixels without data adds: the nearest-pixel
#: indices of the fill (two, and the distance transform's work map) and the valid weights.
FILL_MAPS = 4

#: Extra float32 copies of a tile's read window while it is normalised by its own
#: statistics (the valid pixels, their centred copy and the filled window).
WINDOW_STATISTICS_COPIES = 3


def estimate_tile_bytes(
    config: ModelConfig,
    band_count: int,
    network_shape: Tuple[int, int],
    input_shape: Tuple[int, int],
    window_statistics: bool = False,
    views: int = 1,
    masked: bool = False,
    wide: bool = False,
) -> int:
    """Estimated peak memory of scoring one tile (activations and raster buffers).

    Counts the float32 maps alive at the peak of each resolution level (the kept encoder
    outputs, a decoder cell's concatenations and LAM kernels), times
    :data:`MEMORY_SAFETY_FACTOR`, plus the tile's raster buffers (read, normalised, padded,
    resampled, and the next batch read ahead). Checked on the CPU against the growth of peak
    resident memory over one forward pass of 5 bands (measured / estimated): lite8 384x384
    59 / 109 MiB, lite8s32 two 384x384 tiles 328 / 412, lite4 384x384 101 / 190, paper
    256x256 123-174 / 301. Normalising each tile by its own statistics
    (``window_statistics``, scope ``tile``) takes three more copies of the read window.
    More than one test-time view (``views``) holds one turned copy of the network's input
    (every band) and the running sum of the views' scores besides. A raster with pixels
    without data inside its scored window (``masked``) adds :data:`FILL_MAPS` maps: the
    nearest-pixel indices of :func:`~uniadrs_engine.inference.scoring.fill_from_nearest`
    and the valid weights. The masked instance normalisations do not raise the peak
    (measured: 685 against 717 MiB for a 640 px tile of the widest default network). A
    raster whose values float32 cannot hold (``wide``: 32-bit integers, float64) is read in
    float64: the read and the one read ahead take twice the bytes.
    """
    stem, (e1, e2, e3, e5) = config.stem_width, config.encoder_widths
    hidden, taps = config.lam_hidden, 49
    sliced_bands = min(band_count, config.in_channels)
    per_pixel = (
        sliced_bands
        + 6 * stem
        + (8 * e1 + hidden + taps) / 4
        + (8 * e2 + hidden + taps) / 16
        + (8 * e5 + 3 * e3 + hidden + taps) / 64
    )
    network_pixels = network_shape[0] * network_shape[1]
    activations = 4 * per_pixel * network_pixels * MEMORY_SAFETY_FACTOR
    copies = 5 + (WINDOW_STATISTICS_COPIES if window_statistics else 0) + (2 if wide else 0)
    maps = 4 + (FILL_MAPS if masked else 0)
    buffers = 4 * (copies * band_count + maps) * input_shape[0] * input_shape[1]
    turned = 4 * (band_count + 2) * network_pixels if views > 1 else 0
    return int(activations + buffers + turned)


def _axis_layout(size: int, tile: int, halo: int) -> Tuple[int, int]:
    """``(tile, halo)`` in raster pixels along one axis: the whole axis when it fits."""
    if size <= tile + 2 * halo:
        return size, 0
    return tile, halo


def plan_scale(
    width: int,
    height: int,
    band_count: int,
    config: ModelConfig,
    scale: float,
    tile: int,
    halo: int,
    batch_size: int,
    memory_mb: float,
    model_bytes: int = 0,
    window_statistics: bool = False,
    views: int = 1,
    masked: bool = False,
    wide: bool = False,
) -> ScalePlan:
    """Chooses the tiles and the batch size of one scale within the memory budget.

    Args:
        width: Raster columns.
        height: Raster rows.
        band_count: Selected bands.
        config: Network configuration (for the activation estimate).
        scale: Input scale.
        tile: Core tile size in network input pixels.
        halo: Halo in network input pixels.
        batch_size: Largest batch wanted.
        memory_mb: Total budget in MiB (weights included).
        model_bytes: Memory the network's weights take.
        window_statistics: Whether each tile is normalised by its own statistics (scope
            ``tile``; a tile shrunk to fit the budget then also shrinks that window).
        views: Test-time views per tile (more than one holds a turned copy of the input).
        masked: Whether some pixels inside the scored window hold no data
            (:func:`estimate_tile_bytes`).
        wide: Whether the raster is read in float64 (:func:`estimate_tile_bytes`).

    Returns:
        The plan; its batch size is lowered (and, if even one tile does not fit, its tile
        shrunk step by step, down to :data:`MIN_TILE`, then its halo) to fit the budget,
        with a warning when the tile is smaller than asked.
    """
    budget = max(1.0, memory_mb * _MIB - model_bytes)
    asked = tile
    while True:
        raster_tile = max(1, int(round(tile / scale)))
        raster_halo = int(math.ceil(halo / scale))
        tile_x, halo_x = _axis_layout(width, raster_tile, raster_halo)
        tile_y, halo_y = _axis_layout(height, raster_tile, raster_halo)
        input_shape = (min(tile_y, height) + 2 * halo_y, min(tile_x, width) + 2 * halo_x)
        resampled = scaled_size(input_shape, scale)
        network_shape = (padded_size(resampled[0]), padded_size(resampled[1]))
        tile_bytes = estimate_tile_bytes(
            config,
            band_count,
            network_shape,
            input_shape,
            window_statistics,
            views,
            masked,
            wide,
        )
        if tile_bytes <= budget or (tile <= MIN_TILE and halo == 0):
            break
        if tile > MIN_TILE:
            tile = max(MIN_TILE, tile - max(SIZE_MULTIPLE, tile // 8))  # the largest that fits
        else:
            halo //= 2
    if tile < asked:
        logger.warning(
            "tiles of %d px at scale %g instead of %d to fit the %.0f MiB budget: the scores "
            "differ from those of %d px tiles, since the network normalises each tile over its "
            "own pixels (a larger memory budget gives larger tiles, and fewer)",
            tile,
            scale,
            asked,
            memory_mb,
            asked,
        )
    if tile_bytes > budget:
        logger.warning(
            "one tile needs about %.0f MiB, more than the %.0f MiB budget",
            tile_bytes / _MIB,
            memory_mb,
        )
    fitting = int(budget // max(1, tile_bytes))
    grid = TileGrid(width, height, (tile_x, tile_y), (halo_x, halo_y), uniform=True)
    return ScalePlan(
        scale=scale,
        grid=grid,
        input_shape=input_shape,
        network_shape=network_shape,
        batch_size=max(1, min(int(batch_size), fitting, len(grid))),
        tile_bytes=tile_bytes,
    )


class _ScoreSummary:
    """Running min / max / mean / count of written scores."""

    def __init__(self) -> None:
        self.minimum, self.maximum = math.inf, -math.inf
        self.total, self.count = 0.0, 0

    def add(self, values: np.ndarray, valid: np.ndarray) -> None:
        selected = values[valid & np.isfinite(values)]
        if selected.size:
            self.minimum = min(self.minimum, float(selected.min()))
            self.maximum = max(self.maximum, float(selected.max()))
            self.total += float(selected.sum(dtype=np.float64))
            self.count += int(selected.size)

    def values(self) -> Tuple[float, float, float]:
        if self.count == 0:
            return (math.nan, math.nan, math.nan)
        return (self.minimum, self.maximum, self.total / self.count)


def _load(model: Union[str, Path, LoadedModel], device: torch.device) -> LoadedModel:
    if isinstance(model, LoadedModel):
        model.network.to(device).eval()
        return model
    return load_model(model, device)


class _TileBatch(NamedTuple):
    """A batch of tiles read for scoring.

    Attributes:
        data: ``float32 [B, C, H, W]``: the network's input, normalised, filled and padded.
        valid: ``bool [B, H, W]``: which of its pixels hold data (the padding mirrors the
            tile's).
        core_valid: Each core's validity.
    """

    data: np.ndarray
    valid: np.ndarray
    core_valid: List[np.ndarray]


def _read_tile(
    source: Union[RasterSource, ExtentView], tile: Tile, scaling: InputScaling
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised, filled, mirror-padded tile data, its validity (padded alike) and its core's.

    Pixels without data take their nearest valid pixel's values (:func:`fill_from_nearest`).
    """
    block = source.read_window(tile.read)
    normalised = fill_from_nearest(scaling.apply(block.data, block.valid), block.valid)
    padded = pad_tile(normalised, tile.pad)
    x0, y0 = tile.core.xoff - tile.read.xoff, tile.core.yoff - tile.read.yoff
    core_valid = block.valid[y0 : y0 + tile.core.ysize, x0 : x0 + tile.core.xsize]
    return padded, pad_tile(block.valid, tile.pad), core_valid


def _score_splitting_on_oom(
    network: torch.nn.Module,
    data: np.ndarray,
    scale: float,
    device: torch.device,
    views: int = 1,
    valid: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Scores a batch; if the device runs out of memory, scores its halves one after another.

    The memory estimate is only an estimate (GPU allocators, other processes): a batch that
    does not fit is split down to single tiles before the error reaches the user.
    """
    try:
        return score_tiles(network, data, scale, device, views, valid)
    except DeviceError:
        if len(data) == 1:
            raise
        half = len(data) // 2
        logger.warning("out of memory with %d tiles a batch: trying %d", len(data), half)
        return np.concatenate(
            [
                _score_splitting_on_oom(
                    network,
                    data[part],
                    scale,
                    device,
                    views,
                    None if valid is None else valid[part],
                )
                for part in (slice(None, half), slice(half, None))
            ]
        )


def _read_batch(
    source: Union[RasterSource, ExtentView], tiles: Sequence[Tile], scaling: InputScaling
) -> _TileBatch:
    """Reads a batch of tiles for scoring (:class:`_TileBatch`)."""
    read = [_read_tile(source, tile, scaling) for tile in tiles]
    return _TileBatch(
        data=np.stack([data for data, _, _ in read]),
        valid=np.stack([tile_valid for _, tile_valid, _ in read]),
        core_valid=[core_valid for _, _, core_valid in read],
    )


def _score_scale(
    source: Union[RasterSource, ExtentView],
    plan: ScalePlan,
    network: torch.nn.Module,
    device: torch.device,
    scaling: InputScaling,
    writer: Union[ScoreRasterWriter, ExtentWriter],
    reporter: ProgressReporter,
    histogram: Optional[ScoreHistogram],
    summary: Optional[_ScoreSummary],
    views: int = 1,
) -> None:
    """Scores every tile of one scale in batches and writes the cores.

    Each tile's score is the mean of ``views`` test-time views. The next batch is read (GDAL
    releases the GIL) in one background thread while the current one is scored; only that
    thread touches ``source`` meanwhile.
    """
    tiles = list(plan.grid)
    batches = [
        tiles[start : start + plan.batch_size] for start in range(0, len(tiles), plan.batch_size)
    ]
    reporter.begin(f"scale {plan.scale:g}: scoring tiles")
    with (
        checks_between_passes(network, reporter.check_cancelled),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="uniadrs-read") as reader,
    ):
        pending = reader.submit(_read_batch, source, batches[0], scaling)
        for index, batch_tiles in enumerate(batches):
            reporter.check_cancelled()
            batch = pending.result()
            if index + 1 < len(batches):
                pending = reader.submit(_read_batch, source, batches[index + 1], scaling)
            scores = _score_splitting_on_oom(
                network, batch.data, plan.scale, device, views, batch.valid
            )
            core_valids = batch.core_valid
            del batch
            for tile, core_valid, score in zip(batch_tiles, core_valids, scores):
                core_score = tile.crop_core(score)
                writer.write(tile.core, core_score, core_valid)
                if histogram is not None:
                    histogram.add(core_score[core_valid])
                if summary is not None:
                    summary.add(core_score, core_valid)
            reporter.update((index + 1) / len(batches), f"scale {plan.scale:g}: scoring tiles")


def detect_raster(
    input_path: PathLike,
    output_path: PathLike,
    options: Optional[DetectionOptions] = None,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
) -> DetectionReport:
    """Scores every pixel of a raster and writes the score GeoTIFF.

    Without a band selection, bands an ENVI header's bad band list marks are left out. Bands
    that hold no value anywhere (nodata or not finite everywhere) are left out too, as a
    pixel is valid only where every band holds a value. The report names both.

    Args:
        input_path: Any raster GDAL reads.
        output_path: The score GeoTIFF to write (replaced if it exists).
        options: Model, bands, preset/scales, tiling, device, memory budget.
        progress: Optional ``progress(fraction, message)``.
        is_cancelled: Optional ``is_cancelled() -> bool``, checked between batches and
            before each network's pass (each member of an ensemble, each view).

    Returns:
        A report on the run and the output's score range.

    Raises:
        InputError: Bad input raster, band selection, option, or no valid pixel.
        ModelFileError: Missing or foreign model file.
        DeviceError: Unavailable device, or out of memory on it.
        CancelledError: Cancelled; no output file (nor temporary file) is left behind.
    """
    started = time.perf_counter()
    options = options or DetectionOptions()
    options.check()
    reporter = ProgressReporter(never_backwards(progress), is_cancelled)
    output_path = Path(output_path)
    check_not_an_input(output_path, input_path)
    check_geotiff_path(output_path)
    checked: DetectionOptions = options  # narrowed for the closure below
    bands, bad_bands = select_bands(input_path, options.bands)
    report = without_empty_bands(
        lambda selection, left_out: _detect_bands(
            input_path,
            output_path,
            replace(checked, bands=selection),
            reporter,
            started,
            left_out,
        ),
        bands,
    )
    return replace(report, bad_bands=bad_bands)


def _detect_bands(
    input_path: PathLike,
    output_path: Path,
    options: DetectionOptions,
    reporter: ProgressReporter,
    started: float,
    bands_left_out: Tuple[int, ...],
) -> DetectionReport:
    """:func:`detect_raster` with checked options, on ``options.bands``."""
    temporary_paths: List[Path] = []
    # exact: values float32 cannot hold (32-bit integers, float64 far from 0) are read in
    # float64 and centred on their means before they become float32
    with open_raster(
        input_path,
        options.bands,
        colours=True,
        exact=True,
        float32_range=True,
        nodata=options.nodata,
        crs=options.crs,
    ) as source:
        device = resolve_device(options.device)
        if not isinstance(options.model, LoadedModel):
            reporter.begin("loading the model")
        loaded = _load(options.model, device)
        reporter.check_cancelled()  # a stop asked while the model loaded
        card = loaded.card
        preset: Preset = resolve_auto_preset(
            get_preset(options.preset, card.presets), source.band_count, card.presets
        )
        network_total = network_count(loaded.network)
        numbers = options.networks if options.networks is not None else preset.networks
        if options.networks is None and network_total == 1:
            numbers = None  # a network split off an ensemble: its presets' numbers were there
        try:
            network = select_networks(loaded.network, numbers)
        except ValueError as error:
            raise InputError(str(error)) from None
        networks = tuple(numbers) if numbers is not None else tuple(range(1, network_total + 1))
        model_bytes = sum(parameter.numel() * 4 for parameter in network.parameters())
        scales = resolve_scales(
            preset,
            options.scales,
            options.object_size,
            options.object_size_map_units,
            source.geotransform,
            source.projection,
        )
        rx_weight = options.rx_weight if options.rx_weight is not None else preset.rx_weight
        tile = options.tile if options.tile is not None else preset.tile
        halo = options.halo if options.halo is not None else preset.halo
        halo = DEFAULT_HALO if halo is None else halo
        scope = options.normalisation_scope or preset.normalisation_scope
        views = options.views if options.views is not None else preset.views
        fusion_power = (
            options.fusion_power if options.fusion_power is not None else preset.fusion_power
        )
        window_statistics = scope == TILE_SCOPE
        # Members run one after the other: the widest of those that score sets the peak.
        configs = card.member_configs
        scoring = [configs[n - 1] for n in networks] if len(configs) == network_total else configs
        widest = max(scoring, key=lambda config: config.stem_width)

        def plan_all(width: int, height: int, masked: bool) -> List[ScalePlan]:
            return [
                plan_scale(
                    width,
                    height,
                    source.band_count,
                    widest,
                    scale,
                    tile,
                    halo,
                    options.batch_size,
                    options.memory_mb,
                    model_bytes,
                    window_statistics,
                    views,
                    masked=masked,
                    wide=source.value_dtype.itemsize > 4,
                )
                for scale in scales
            ]

        statistics = compute_band_statistics(
            source,
            _strip_memory_mb(options.memory_mb),
            reporter.sub(0.0, STATISTICS_SHARE),
            covariance=(needs_covariance(card.normalisation) and not window_statistics)
            or rx_weight > 0,
        )
        check_varies(statistics, str(source.path))
        extent = valid_extent(source, statistics.valid_window)
        scored: Union[RasterSource, ExtentView] = source
        if extent is not None:
            scored = ExtentView(source, extent)
            logger.info(
                "scoring the %dx%d px holding every valid pixel (from column %d, row %d): "
                "the nodata collar around it is left out",
                extent.xsize,
                extent.ysize,
                extent.xoff,
                extent.yoff,
            )
        # Pixels without data inside the window: their tiles are filled and weighted.
        plans = plan_all(
            scored.width, scored.height, statistics.count < scored.width * scored.height
        )
        for plan in plans:
            logger.info("%s", plan.describe())
        scaling: InputScaling = (
            WindowNormalisation(card.normalisation, source.band_count)
            if window_statistics
            else scaling_from_statistics(card.normalisation, statistics, str(source.path))
        )
        fused = len(plans) > 1 or rx_weight > 0
        made = provenance(
            model=f"{card.name} v{card.model_version}",
            preset=preset.name,
            scales=tuple(plan.scale for plan in plans),
            networks=networks,
            views=views,
            rx_weight=rx_weight,
            fusion_power=fusion_power if fused else 1.0,
            bands=tuple(source.band_indices),
            normalisation_scope=scope,
            tile_pixels=tuple(plan.grid.tile_x for plan in plans),  # raster px, per scale
            **nodata_provenance(source.nodata_rule),
        )
        fusion_start = 1.0 - (FUSION_SHARE if fused else 0.0)
        scoring_end = fusion_start - (RX_SHARE if rx_weight > 0 else 0.0)
        total_tiles = sum(len(plan.grid) for plan in plans)
        summary = _ScoreSummary()
        histograms: List[ScoreHistogram] = []
        try:
            done_tiles = 0
            for plan in plans:
                start = (
                    STATISTICS_SHARE + (scoring_end - STATISTICS_SHARE) * done_tiles / total_tiles
                )
                done_tiles += len(plan.grid)
                stop = (
                    STATISTICS_SHARE + (scoring_end - STATISTICS_SHARE) * done_tiles / total_tiles
                )
                if fused:
                    target = temporary_raster_path(
                        output_path, "scale" + f"{plan.scale:g}".replace(".", "p")
                    )
                    temporary_paths.append(target)
                    histograms.append(ScoreHistogram())
                else:
                    target = output_path
                final = None if fused else SCORE_OVERVIEWS
                with ScoreRasterWriter(
                    target,
                    source,
                    overviews=final,
                    reported_as=output_path,
                    band_descriptions=None if fused else [SCORE_BAND_DESCRIPTION],
                    metadata=None if fused else made,
                ) as writer:
                    # the collar is never written: GDAL fills it with the nodata value
                    _score_scale(
                        scored,
                        plan,
                        network,
                        device,
                        scaling,
                        writer if extent is None else ExtentWriter(writer, extent),
                        reporter.sub(start, stop),
                        histograms[-1] if fused else None,
                        None if fused else summary,
                        views,
                    )
            if rx_weight > 0:
                assert statistics.covariance is not None
                temporary_paths.append(temporary_raster_path(output_path, "rx"))
                histograms.append(ScoreHistogram(unbounded=True))
                write_global_rx(
                    source,
                    temporary_paths[-1],
                    statistics,
                    _strip_memory_mb(options.memory_mb),
                    reporter.sub(scoring_end, fusion_start),
                    lambda values, valid: histograms[-1].add(values[valid]),
                    reported_as=output_path,
                )
            if fused:
                with ScoreRasterWriter(
                    output_path,
                    source,
                    overviews=SCORE_OVERVIEWS,
                    band_descriptions=[SCORE_BAND_DESCRIPTION],
                    metadata=made,
                ) as writer:
                    fuse_score_rasters(
                        temporary_paths,
                        histograms,
                        writer,
                        _strip_memory_mb(options.memory_mb),
                        reporter.sub(fusion_start, 1.0),
                        summary.add,
                        fusion_weights(len(plans), rx_weight),
                        fusion_power,
                    )
        finally:
            for path in temporary_paths:
                remove_if_exists(path)
    reporter.update(1.0, "done")
    score_min, score_max, score_mean = summary.values()
    return DetectionReport(
        output_path=output_path,
        seconds=time.perf_counter() - started,
        tile_count=total_tiles,
        device=describe_device(device),
        scales=tuple(plan.scale for plan in plans),
        score_min=score_min,
        score_max=score_max,
        score_mean=score_mean,
        valid_pixels=summary.count,
        model_summary=card.summary(),
        preset=preset.name,
        batch_sizes=tuple(plan.batch_size for plan in plans),
        rx_weight=rx_weight,
        networks=networks,
        network_total=network_total,
        normalisation_scope=scope,
        views=views,
        fusion_power=fusion_power if fused else 1.0,
        bands_left_out=bands_left_out,
        scored_window=extent,
    )
