"""``uniadrs detect INPUT OUTPUT``: score every pixel of a raster with a UniADRS model.

Example:
    $ uniadrs detect scene.tif scores.tif --preset hyperspectral
    $ uniadrs detect ortho.tif scores.tif --bands 1-3 --object-size-map-units 4 --device cuda
    $ uniadrs detect cube.tif scores.tif --rx-weight 0.5
"""

from __future__ import annotations

import argparse

from uniadrs_engine.cli.arguments import (
    BANDS_HELP,
    add_memory_argument,
    add_nodata_arguments,
    band_list,
    float_list,
    network_list,
    nodata_rule,
    non_negative_int,
    positive_float,
    positive_int,
    progress_bar,
)
from uniadrs_engine.inference.device import DEVICE_CHOICES
from uniadrs_engine.inference.presets import DEFAULT_HALO, DEFAULT_TILE, PRESETS
from uniadrs_engine.inference.views import VIEW_COUNTS
from uniadrs_engine.raster.normalisation import NORMALISATION_SCOPES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``detect`` sub-command."""
    parser = subparsers.add_parser(
        "detect",
        help="score a raster for anomalies (zero-shot, any modality)",
        description=(
            "Write a float32 score GeoTIFF (higher = more anomalous, nodata -9999 where the "
            "input is nodata) on the input's grid. The raster is read and scored tile by tile "
            "within --memory-mb, so its size is not limited by memory."
        ),
    )
    parser.add_argument("input", help="input raster (any format GDAL reads)")
    parser.add_argument("output", help="output score GeoTIFF (.tif or .tiff)")
    parser.add_argument(
        "--model",
        default="default",
        metavar="PATH",
        help="model file (.safetensors) or 'default' (shipped)",
    )
    parser.add_argument(
        "--bands",
        type=band_list,
        default=None,
        metavar="LIST",
        help=BANDS_HELP,
    )
    presets = ", ".join(f"{name} ({preset.description})" for name, preset in PRESETS.items())
    parser.add_argument(
        "--preset",
        default="auto",
        metavar="NAME",
        help=f"modality preset (default auto): {presets}",
    )
    parser.add_argument(
        "--scale",
        type=float_list,
        default=None,
        metavar="F[,F...]",
        help="input scale(s), e.g. 0.5 or 0.5,1 (several are fused); overrides the preset",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--object-size",
        type=positive_float,
        default=None,
        metavar="PX",
        help="expected anomaly size in pixels (sets the scale to 30/PX)",
    )
    size.add_argument(
        "--object-size-map-units",
        type=positive_float,
        default=None,
        metavar="M",
        help="expected anomaly size in the map units of a projected CRS (e.g. metres)",
    )
    parser.add_argument(
        "--rx-weight",
        type=float,
        default=None,
        metavar="W",
        help=(
            "also compute global RX and fuse its rank with the network's at weight W "
            "(0 <= W < 1; 0: the network alone; default: the preset's)"
        ),
    )
    parser.add_argument(
        "--fusion-power",
        type=float,
        default=None,
        metavar="P",
        help=(
            "power of the mean that fuses several scales' ranks: 1 averages them (a pixel "
            "must rank high at every scale), larger powers up to 64 come nearer to their "
            "maximum (at any one scale) (default: the preset's)"
        ),
    )
    parser.add_argument(
        "--networks",
        type=network_list,
        default=None,
        metavar="LIST",
        help=(
            "score with these networks of an ensemble only, e.g. 5,6 or 1-2 (numbered as "
            "'uniadrs info' lists them; fewer are faster; default: the preset's, usually all)"
        ),
    )
    parser.add_argument(
        "--tile",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"core tile size in network input pixels (= raster pixels at scale 1; {DEFAULT_TILE})",
    )
    parser.add_argument(
        "--halo",
        type=non_negative_int,
        default=None,
        metavar="N",
        help=f"context on each side of a tile, network input pixels ({DEFAULT_HALO})",
    )
    parser.add_argument(
        "--normalisation-scope",
        choices=NORMALISATION_SCOPES,
        default=None,
        help=(
            "input statistics of the whole raster or of each tile's window, as training "
            "normalises each crop (default: the preset's, raster)"
        ),
    )
    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_COUNTS,
        default=None,
        metavar="N",
        help=(
            "test-time views averaged per tile: 1 (as is), 2 (+ mirrored), 4 (+ all flips) "
            "or 8 (+ transposed); each is one more forward pass (default: the preset's, 1)"
        ),
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=4,
        metavar="N",
        help="tiles per forward pass (default 4)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="D",
        help=f"one of {', '.join(DEVICE_CHOICES)} (default auto)",
    )
    add_nodata_arguments(parser)
    add_memory_argument(parser, default=1024)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs the detection and prints where the output is and a summary line."""
    from uniadrs_engine.inference.detector import DetectionOptions, detect_raster

    options = DetectionOptions(
        model=args.model,
        bands=args.bands,
        preset=args.preset,
        scales=args.scale,
        object_size=args.object_size,
        object_size_map_units=args.object_size_map_units,
        tile=args.tile,
        halo=args.halo,
        batch_size=args.batch,
        device=args.device,
        memory_mb=args.memory_mb,
        rx_weight=args.rx_weight,
        networks=args.networks,
        normalisation_scope=args.normalisation_scope,
        views=args.views,
        fusion_power=args.fusion_power,
        nodata=nodata_rule(args),
    )
    with progress_bar("detect", enabled=not args.quiet) as progress:
        report = detect_raster(args.input, args.output, options, progress=progress)
    print(f"scores: {report.output_path}")
    print(f"{report.summary_line()} | preset {report.preset}")
    return 0
