"""``uniadrs ensemble MODEL MODEL [...] -o OUT``: join models into a seed ensemble.

The ensemble is one model file that scores with every member and averages their score maps
(:mod:`uniadrs_engine.model.ensemble`); it is used like any model file (``--model OUT``) and
takes as many times longer to score as it has members.

Example:
    $ uniadrs train configs/default_model.yaml --set members=1 --set seed=1 --set output_dir=r/1
    $ uniadrs train configs/default_model.yaml --set members=1 --set seed=2 --set output_dir=r/2
    $ uniadrs ensemble r/1/model.safetensors r/2/model.safetensors -o pair.safetensors
"""

from __future__ import annotations

import argparse

from uniadrs_engine.model.weight_storage import WEIGHT_STORAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``ensemble`` sub-command."""
    parser = subparsers.add_parser(
        "ensemble",
        help="join single-network models into an ensemble (mean of their scores)",
        description=(
            "Join two or more single-network model files of one network configuration "
            "(for example the same training configuration with different seeds; they may "
            "differ in magnitude_input and stem_width) into one model file whose score is "
            "the mean of the members' scores. The members must agree on input "
            "normalisation and on the presets they record (a member that records none "
            "takes the others')."
        ),
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model files (or 'default')")
    parser.add_argument("-o", "--output", required=True, help="ensemble model file to write")
    parser.add_argument("--name", default="uniadrs-ensemble", help="name in the model card")
    parser.add_argument("--model-version", default="1", help="version in the model card")
    parser.add_argument("--description", default="", help="description in the model card")
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument(
        "--weights",
        dest="weight_storage",
        choices=WEIGHT_STORAGES,
        default="float32",
        help=(
            "how to store the weights: float32 (exact), float16 (half the file, scores change "
            "by about 1e-3), int8 per output channel (a quarter of the file, scores change "
            "by about 1e-2) or int4 per group of 32 weights (an eighth of the weights, a "
            "seventh of the file; scores change by a few 1e-2); default float32"
        ),
    )
    storage.add_argument(
        "--float16",
        dest="weight_storage",
        action="store_const",
        const="float16",
        help="same as --weights float16",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Writes the ensemble and prints its summary."""
    from uniadrs_engine.errors import InputError
    from uniadrs_engine.model.model_file import save_ensemble

    if len(args.models) < 2:
        raise InputError("an ensemble needs at least two model files")
    card = save_ensemble(
        args.models,
        args.output,
        args.name,
        args.model_version,
        args.description,
        weight_storage=args.weight_storage,
    )
    print(f"{args.output}: {card.summary()}")
    return 0
