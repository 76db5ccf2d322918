"""``uniadrs simulate``: writes simulated training samples and a contact sheet to a folder.

Example:
    $ uniadrs simulate backgrounds samples -n 32 --exclude cas-hokkaido-landslide bijie-landslide
"""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm


def register(subparsers: Any) -> None:
    """Adds the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="write simulated training samples (images, labels, contact sheet) to a folder",
        description=(
            "Pastes simulated anomalies into real backgrounds as the training does and writes "
            "sample_NNNN_image.tif (float32), sample_NNNN_labels.tif (uint8: 0 background, "
            "1 anomaly, 2 ignore, 3 large normal), contact_sheet.png, samples.csv and "
            "simulation.json. Hyperspectral backgrounds (10 bands or more) give spectral "
            "samples, the others spatial samples; <name>_objects.tif beside a raster is its "
            "object mask."
        ),
    )
    parser.add_argument(
        "backgrounds",
        nargs="+",
        metavar="BACKGROUNDS",
        help="background rasters or folders of them (searched recursively)",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if needed)")
    parser.add_argument("-n", type=int, default=16, help="number of samples (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--size", type=int, default=128, help="sample side, a multiple of 8 (default 128)"
    )
    parser.add_argument(
        "--spectral-share",
        type=float,
        default=0.5,
        help="probability of a spectral sample (default 0.5)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATTERN",
        help="glob patterns of folders or files to leave out (e.g. '*landslide*'); "
        "give this option after the positional arguments",
    )
    parser.add_argument(
        "--out-channels",
        type=int,
        default=None,
        metavar="N",
        help="write spectral samples as N randomly picked bands, as the network sees them "
        "(270 in training); by default every usable band is written in order",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Runs ``uniadrs simulate`` and returns the exit status."""
    from uniadrs_engine.simulation.export import CONTACT_SHEET_NAME, simulate_to_dir

    with tqdm(total=args.n, unit="sample", desc="simulating") as bar:

        def progress(fraction: float, message: str) -> None:
            bar.update(round(fraction * args.n) - bar.n)

        written = simulate_to_dir(
            args.backgrounds,
            args.out_dir,
            n=args.n,
            seed=args.seed,
            size=args.size,
            spectral_share=args.spectral_share,
            exclude=args.exclude,
            progress=progress,
            out_channels=args.out_channels,
        )
    sheet = next(path for path in written if path.name == CONTACT_SHEET_NAME)
    print(f"wrote {args.n} samples to {args.out_dir}; contact sheet: {sheet}")
    return 0
