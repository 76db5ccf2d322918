"""``uniadrs simulate``: writes simulated training samples and a contact sheet to a folder.

Example:
    $ uniadrs simulate backgrounds samples -n 32 --exclude cas-hokkaido-landslide bijie-landslide
    $ uniadrs simulate samples --config configs/default_model.yaml --validation
"""

from __future__ import annotations

import argparse
from typing import Any

from uniadrs_engine.cli.arguments import (
    add_config_overrides,
    add_nodata_arguments,
    nodata_rule,
    progress_bar,
    seed_value,
    training_config_from_args,
)


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
            "object mask. With --config, the samples of a training configuration instead: "
            "the first ones its run trains on, or with --validation its validation samples."
        ),
    )
    parser.add_argument(
        "backgrounds",
        nargs="*",
        metavar="BACKGROUNDS",
        help="background rasters or folders of them (searched recursively); not with --config",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created if needed)")
    parser.add_argument("-n", type=int, default=16, help="number of samples (default 16)")
    parser.add_argument("--seed", type=seed_value, default=None, help="random seed (default 0)")
    parser.add_argument(
        "--size", type=int, default=None, help="sample side, a multiple of 8 (default 128)"
    )
    parser.add_argument(
        "--spectral-share",
        type=float,
        default=None,
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
    add_nodata_arguments(parser)
    parser.add_argument(
        "--config",
        metavar="CONFIG",
        help="a training configuration (YAML): write the samples its run simulates, with its "
        "backgrounds, seed, crop size, spectral share and simulator options",
    )
    add_config_overrides(
        parser,
        "with --config: replace a configuration key (the value is YAML), e.g. "
        "--set 'spatial_options={normal_count: 4}'",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="with --config: write the run's fixed validation samples (those its validation "
        "AUC is measured on) instead of its first training samples",
    )
    parser.set_defaults(handler=run)


#: Options of the background mode, with their defaults; --config takes them from the file.
BACKGROUND_MODE_DEFAULTS = {"seed": 0, "size": 128, "spectral_share": 0.5, "out_channels": None}


def run(args: argparse.Namespace) -> int:
    """Runs ``uniadrs simulate`` and returns the exit status."""
    from uniadrs_engine.errors import InputError
    from uniadrs_engine.simulation.export import (
        CONTACT_SHEET_NAME,
        simulate_to_dir,
        written_sample_count,
    )

    if args.config is None:
        if not args.backgrounds:
            raise InputError("give background rasters or folders, or --config CONFIG")
        if args.overrides or args.validation:
            raise InputError("--set and --validation go with --config")
    else:
        given = [name for name in BACKGROUND_MODE_DEFAULTS if getattr(args, name) is not None]
        given += ["exclude"] if args.exclude else []
        given += ["nodata"] if args.nodata else []
        given += ["ignore_file_nodata"] if args.ignore_file_nodata else []
        if args.backgrounds or given:
            options = ", ".join(f"--{name.replace('_', '-')}" for name in given)
            raise InputError(
                "with --config the backgrounds and settings come from the configuration "
                f"(use --set KEY=VALUE, e.g. --set nodata=0); drop "
                f"{options or 'the BACKGROUNDS arguments'}"
            )
    config = None if args.config is None else training_config_from_args(args.config, args.overrides)
    count = args.n
    if config is not None and args.validation:  # the validation set holds so many at most
        count = max(1, min(args.n, config.validation_samples))
    with progress_bar("simulating", steps=count, unit="sample") as progress:
        if config is not None:
            from uniadrs_engine.training.preview import simulate_config_to_dir

            written = simulate_config_to_dir(
                config, args.out_dir, n=args.n, validation=args.validation, progress=progress
            )
        else:
            settings = {
                name: default if getattr(args, name) is None else getattr(args, name)
                for name, default in BACKGROUND_MODE_DEFAULTS.items()
            }
            written = simulate_to_dir(
                args.backgrounds,
                args.out_dir,
                n=args.n,
                exclude=args.exclude,
                progress=progress,
                nodata=nodata_rule(args),
                **settings,
            )
    sheet = next(path for path in written if path.name == CONTACT_SHEET_NAME)
    samples = written_sample_count(written)
    print(f"wrote {samples} samples to {args.out_dir}; contact sheet: {sheet}")
    return 0
