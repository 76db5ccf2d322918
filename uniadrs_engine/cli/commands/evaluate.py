"""``uniadrs evaluate SCORE MASK``: pixel AUC-ROC and the 3D-ROC family of a score raster.

Example:
    $ uniadrs evaluate scores.tif mask.tif
    $ uniadrs evaluate scores.tif mask.tif --json --roc-png roc.png
"""

from __future__ import annotations

import argparse
import json

from uniadrs_engine.cli.arguments import add_memory_argument, progress_bar

#: Labels of the 3D-ROC measures in the text output.
_LABELS = (
    ("auc_df", "AUC(D,F)"),
    ("auc_dt", "AUC(D,tau)"),
    ("auc_ft", "AUC(F,tau)"),
    ("td", "AUC TD"),
    ("bs", "AUC BS"),
    ("odp", "AUC ODP"),
    ("tdbs", "AUC TDBS"),
    ("snpr", "AUC SNPR"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="pixel AUC-ROC and 3D-ROC of a score raster against an anomaly mask",
        description=(
            "Compare a score raster (higher = more anomalous; nodata pixels are left out) "
            "with an anomaly mask on the same grid (non-zero = anomaly). The AUC is exact "
            "(scikit-learn's roc_auc_score) and computed in bounded memory; the 3D-ROC "
            "family (Chang 2021) uses the min-max normalised map."
        ),
    )
    parser.add_argument("score", help="score raster")
    parser.add_argument("mask", help="anomaly mask raster (non-zero = anomaly)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout, nothing else"
    )
    parser.add_argument("--roc-png", default=None, metavar="PATH", help="also draw the ROC")
    add_memory_argument(parser, default=256)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluates and prints the result."""
    from uniadrs_engine.metrics.evaluation import (
        check_roc_png_path,
        evaluate_rasters,
        save_roc_png,
    )
    from uniadrs_engine.progress import ProgressReporter

    if args.roc_png:
        check_roc_png_path(args.roc_png, args.score, args.mask)
    with progress_bar("evaluate", enabled=not args.quiet) as progress:
        result = evaluate_rasters(
            args.score,
            args.mask,
            memory_mb=args.memory_mb,
            progress=ProgressReporter(progress=progress),
        )
    values = result.as_dict()
    if args.roc_png:
        save_roc_png(result, args.roc_png, title=f"{args.score}")
        values["roc_png"] = str(args.roc_png)
    if args.json:
        print(json.dumps(values, allow_nan=False))
        return 0
    print(f"AUC          {result.auc:.6f}")
    for key, label in _LABELS:
        value = values[key]
        print(f"{label:<12} {'undefined' if value is None else f'{value:.6f}'}")
    print(
        f"pixels       {result.n_pixels} evaluated, {result.n_anomalies} anomalous, "
        f"{result.n_ignored} left out (nodata)"
    )
    if args.roc_png:
        print(f"ROC figure   {args.roc_png}")
    return 0
