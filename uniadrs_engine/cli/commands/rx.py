"""``uniadrs rx INPUT OUTPUT``: global or local (dual-window) RX anomaly scores of a raster.

Example:
    $ uniadrs rx cube.tif rx.tif                                  # global RX, all bands
    $ uniadrs rx ortho.tif lrx.tif --mode local --inner 9 --outer 27 --bands 1-3
"""

from __future__ import annotations

import argparse

from uniadrs_engine.cli.arguments import (
    BANDS_HELP,
    add_memory_argument,
    add_nodata_arguments,
    band_list,
    nodata_rule,
    positive_int,
    progress_bar,
)
from uniadrs_engine.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``rx`` sub-command."""
    from uniadrs_engine.baselines.rx import (
        DEFAULT_INNER,
        DEFAULT_MAX_COMPONENTS,
        DEFAULT_OUTER,
        RX_MODES,
    )

    parser = subparsers.add_parser(
        "rx",
        help="RX anomaly detector (global or local dual-window), the classic baseline",
        description=(
            "Write a float32 score GeoTIFF (squared Mahalanobis distance, nodata -9999) on "
            "the input's grid. Global RX: distance to the image mean under the image "
            "covariance (pseudo-inverse). Local RX: mean and covariance per pixel from the "
            "outer window minus the inner guard window (odd sizes, in pixels)."
        ),
    )
    parser.add_argument("input", help="input raster (any format GDAL reads)")
    parser.add_argument("output", help="output score GeoTIFF (.tif or .tiff)")
    parser.add_argument("--mode", choices=RX_MODES, default="global", help="default: global")
    parser.add_argument(
        "--inner",
        type=positive_int,
        default=None,
        help=f"local mode: odd guard-window size in pixels (default {DEFAULT_INNER})",
    )
    parser.add_argument(
        "--outer",
        type=positive_int,
        default=None,
        help=f"local mode: odd outer-window size in pixels (default {DEFAULT_OUTER})",
    )
    parser.add_argument("--bands", type=band_list, default=None, help=BANDS_HELP)
    parser.add_argument(
        "--background-mask",
        default=None,
        metavar="PATH",
        help="raster on the same grid; its non-zero pixels are the background the statistics "
        "are estimated from",
    )
    parser.add_argument(
        "--max-components",
        type=positive_int,
        default=DEFAULT_MAX_COMPONENTS,
        help=f"local mode: whitened principal components kept (default {DEFAULT_MAX_COMPONENTS})",
    )
    add_nodata_arguments(parser)
    add_memory_argument(parser, default=1024)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs RX and prints what was written."""
    from uniadrs_engine.baselines.rx import rx_raster

    if args.mode == "global" and (args.inner is not None or args.outer is not None):
        raise InputError("--inner and --outer apply to --mode local only")
    with progress_bar(f"RX ({args.mode})", enabled=not args.quiet) as progress:
        report = rx_raster(
            args.input,
            args.output,
            mode=args.mode,
            inner=args.inner,
            outer=args.outer,
            bands=args.bands,
            background_mask_path=args.background_mask,
            memory_mb=args.memory_mb,
            progress=progress,
            max_components=args.max_components,
            nodata=nodata_rule(args),
        )
    left_out = report.describe_bands_left_out()
    left_out = f" ({left_out})" if left_out else ""
    print(f"wrote {report.output_path}: {report.summary_line()}{left_out}")
    return 0
