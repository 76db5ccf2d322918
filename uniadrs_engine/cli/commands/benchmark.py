"""``uniadrs benchmark MANIFEST``: run detectors over benchmark scenes, time and evaluate them.

Example:
    $ uniadrs benchmark ../shared/benchmarks/manifest.json --detectors rx-global,rx-local
    $ uniadrs benchmark manifest.json --model my_model.safetensors --scenes 'hsi/*' --out res
"""

from __future__ import annotations

import argparse
import logging

from uniadrs_engine.cli.arguments import add_memory_argument, progress_bar


def _detector_list(text: str) -> list:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("the detector list is empty")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``benchmark`` sub-command."""
    from uniadrs_engine.benchmark.detectors import DETECTOR_NAMES

    parser = subparsers.add_parser(
        "benchmark",
        help="run detectors over the scenes of a benchmark manifest",
        description=(
            "For each scene of a manifest (JSON with a 'scenes' list of modality, scene, "
            "image, mask and optionally rx_auc; paths relative to the manifest), run each "
            "detector, time it and evaluate its pixel AUC. Writes results.csv, results.md "
            "and figure.png into --out. A run that fails is reported there and the exit "
            "status is then 1."
        ),
    )
    parser.add_argument("manifest", help="benchmark manifest (JSON)")
    parser.add_argument(
        "--detectors",
        type=_detector_list,
        default=list(DETECTOR_NAMES),
        help=f"comma-separated, among {', '.join(DETECTOR_NAMES)} (default: all)",
    )
    parser.add_argument("--out", default="benchmark-results", help="output folder")
    parser.add_argument(
        "--model", default="default", help="model file for 'uniadrs', or 'default' (shipped)"
    )
    parser.add_argument(
        "--scenes",
        default=None,
        metavar="GLOB",
        help="only scenes whose modality/name or name matches (comma-separated globs)",
    )
    parser.add_argument("--device", default="auto", help="device for 'uniadrs' (auto)")
    add_memory_argument(parser, default=1024)
    parser.add_argument(
        "--keep-scores", action="store_true", help="keep every score raster under OUT/scores/"
    )
    parser.add_argument("--no-figure", action="store_true", help="do not draw figure.png")
    parser.add_argument(
        "--report",
        help="also write the Markdown report there (e.g. docs/BENCHMARKS.md), figure linked",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


#: Exit status when the reports were written but some detector runs failed.
EXIT_RUNS_FAILED = 1


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark and prints the per-modality summary.

    Returns:
        0, or :data:`EXIT_RUNS_FAILED` when some runs failed (the reports name them).
    """
    from uniadrs_engine.benchmark.runner import run_benchmark

    logging.getLogger("uniadrs_engine.benchmark").setLevel(logging.ERROR)
    with progress_bar("benchmark", enabled=not args.quiet) as progress:
        results = run_benchmark(
            args.manifest,
            detectors=args.detectors,
            out_dir=args.out,
            progress=progress,
            model=args.model,
            scenes=args.scenes,
            device=args.device,
            memory_mb=args.memory_mb,
            figure=not args.no_figure,
            keep_scores=args.keep_scores,
            report_path=args.report,
        )
    detectors = list(dict.fromkeys(result.detector for result in results))
    modalities = list(dict.fromkeys(result.modality for result in results))
    print("mean pixel AUC (scenes) per modality:")
    for modality in modalities:
        figures = []
        for detector in detectors:
            aucs = [
                result.auc
                for result in results
                if result.modality == modality and result.detector == detector and result.ok
            ]
            figures.append(f"{detector} {sum(aucs) / len(aucs):.4f}" if aucs else f"{detector} -")
        print(f"  {modality:<8} " + ", ".join(figures))
    failures = sum(1 for result in results if not result.ok)
    if failures:
        print(f"{failures} run(s) failed; see results.md")
    print(f"results: {args.out}/results.csv, {args.out}/results.md")
    if args.report:
        print(f"report: {args.report}")
    return EXIT_RUNS_FAILED if failures else 0
