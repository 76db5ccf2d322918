"""``uniadrs threshold SCORES``: an anomaly mask raster and/or anomaly polygons from scores.

Example:
    $ uniadrs threshold scores.tif --top-percent 0.5 --mask mask.tif --polygons objects.gpkg
    $ uniadrs threshold rx.tif --false-alarm-rate 0.001 --background-mask water.tif --mask m.tif
    $ uniadrs threshold scores.tif --value 0.99 --polygons ships.geojson --min-area 200
"""

from __future__ import annotations

import argparse

from uniadrs_engine.cli.arguments import (
    add_memory_argument,
    non_negative_float,
    positive_float,
    progress_bar,
)


def threshold_text(threshold: float) -> str:
    """The score cut in the fewest digits (at least six) that read back as it exactly.

    A cut of ``--value 0.50000001`` is shown as such, not as ``0.5``.

    Example:
        >>> threshold_text(0.99), threshold_text(0.50000001), threshold_text(float("inf"))
        ('0.99', '0.50000001', 'inf')
    """
    for digits in range(6, 18):
        text = f"{threshold:.{digits}g}"
        if float(text) == threshold:
            return text
    return repr(threshold)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``threshold`` sub-command."""
    parser = subparsers.add_parser(
        "threshold",
        help="turn a score raster into an anomaly mask raster and anomaly polygons",
        description=(
            "Cut a score raster (from detect or rx; higher = more anomalous) by one rule and "
            "write a uint8 mask GeoTIFF on its grid (1 anomaly, 0 background, 255 no score) "
            "and/or polygons of the 8-connected anomaly objects, each with its area (square "
            "map units; square metres on a geographic CRS), pixel count and min/mean/max "
            "score. Quantiles are exact and computed within the memory budget."
        ),
    )
    parser.add_argument("scores", help="score raster (band 1)")
    rule = parser.add_mutually_exclusive_group(required=True)
    rule.add_argument("--value", type=float, metavar="T", help="anomaly where score >= T")
    rule.add_argument(
        "--top-percent",
        type=float,
        metavar="K",
        help="the K percent of valid pixels with the highest scores (ties at the cut kept)",
    )
    rule.add_argument(
        "--false-alarm-rate",
        type=float,
        metavar="R",
        help="the cut that flags at most the fraction R of the background (e.g. 0.001)",
    )
    parser.add_argument("--mask", metavar="PATH", help="output mask GeoTIFF (.tif or .tiff)")
    parser.add_argument(
        "--polygons",
        metavar="PATH",
        help="output vector file, its format from its ending (.gpkg, .shp, .geojson, .fgb)",
    )
    parser.add_argument(
        "--background-mask",
        metavar="PATH",
        help="with --false-alarm-rate: raster on the same grid whose non-zero pixels are the "
        "background the rate is counted on (default: every valid pixel)",
    )
    parser.add_argument(
        "--min-area",
        type=non_negative_float,
        default=0.0,
        help="drop objects smaller than this, in square map units: square metres on a "
        "geographic CRS, pixels without georeferencing (default 0)",
    )
    parser.add_argument(
        "--max-area",
        type=positive_float,
        default=None,
        help="drop objects larger than this, in the units of --min-area (default: no limit)",
    )
    add_memory_argument(parser, default=1024)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Thresholds the scores and prints what was written."""
    from uniadrs_engine.errors import InputError
    from uniadrs_engine.postprocess.threshold import ThresholdRule, threshold_raster

    if args.background_mask is not None and args.false_alarm_rate is None:
        raise InputError("--background-mask applies to --false-alarm-rate only")
    if args.value is not None:
        rule = ThresholdRule("value", args.value)
    elif args.top_percent is not None:
        rule = ThresholdRule("top_percent", args.top_percent)
    else:
        rule = ThresholdRule("false_alarm_rate", args.false_alarm_rate)
    with progress_bar("threshold", enabled=not args.quiet) as progress:
        report = threshold_raster(
            args.scores,
            rule,
            mask_path=args.mask,
            polygons_path=args.polygons,
            min_object_area=args.min_area,
            max_object_area=args.max_area,
            background_mask_path=args.background_mask,
            memory_mb=args.memory_mb,
            progress=progress,
        )
    sign = ">=" if report.inclusive else ">"
    # the value asked for as given; a computed cut (a score) in six digits, as before
    shown = (
        threshold_text(report.threshold) if args.value is not None else f"{report.threshold:.6g}"
    )
    share = 100.0 * report.anomaly_pixels / max(report.valid_pixels, 1)
    objects = ""
    if report.polygons_path is not None or args.min_area > 0 or args.max_area is not None:
        objects = f" in {report.object_count} object(s)"  # traced only for these
        if report.objects_removed:
            objects += f", {report.objects_removed} removed by area"
    print(
        f"score {sign} {shown}: {report.anomaly_pixels} of {report.valid_pixels} "
        f"valid pixels ({share:.3g} %){objects}"
    )
    for written in (report.mask_path, report.polygons_path):
        if written is not None:
            print(f"wrote {written}")
    return 0
