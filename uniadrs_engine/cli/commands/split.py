"""``uniadrs split MODEL OUT_DIR``: write each network of an ensemble as a model file.

The member files can be scored on their own or joined into other ensembles with
``uniadrs ensemble``, for example the shipped model's networks beside newly trained ones.
A member keeps the ensemble's presets and its weights as the ensemble stored them, so a
split ensemble joined again in order scores exactly as before. A single network scores alone
with any preset; an ensemble of fewer networks than a preset names scores that preset with
all of them.

Example:
    $ uniadrs split default runs/default_members
    $ cd runs/default_members
    $ uniadrs ensemble member_01.safetensors ../new/model.safetensors -o ../pair.safetensors
    $ uniadrs ensemble member_*.safetensors -o ../again.safetensors  # in member order

Member files are numbered from 1, as ``uniadrs info`` and presets number the networks, and
zero-padded (``member_01`` to ``member_16`` for sixteen), so a shell glob lists them in
member order. OUT_DIR must not hold other ``member_*.safetensors`` files (from an earlier
split of another ensemble): the split is refused rather than leave them to mix in.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``split`` sub-command."""
    parser = subparsers.add_parser(
        "split",
        help="write each network of an ensemble model file as a model file of its own",
        description=(
            "Write each network of an ensemble model file as member_<n>.safetensors in "
            "OUT_DIR (n numbered from 1 as 'uniadrs info' lists the networks, zero-padded: "
            "member_01 to member_16 for sixteen, so member_*.safetensors lists them in "
            "order), with a card made of the member's record and the ensemble's "
            "normalisation, presets and data sources; weights are stored as the ensemble "
            "stored them. OUT_DIR must hold no other member_*.safetensors files. Join "
            "members again with 'uniadrs ensemble'."
        ),
    )
    parser.add_argument("model", help="ensemble model file (or 'default')")
    parser.add_argument("output_dir", metavar="OUT_DIR", help="folder for the member files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Writes the member files and prints one line per member."""
    from uniadrs_engine.model.model_file import read_model_card, split_ensemble

    for path in split_ensemble(args.model, args.output_dir):
        print(f"{path}: {read_model_card(path).summary()}")
    return 0
