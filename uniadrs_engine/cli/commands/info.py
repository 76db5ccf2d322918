"""``uniadrs info [MODEL]``: what a model file holds, read from its header.

Prints the model card in a readable form: name, version and description, the network and its
input normalisation, how the weights are stored, the recommended presets, the validation
figures, the training record (with the commands that retrain it) and the training data with
their licences. ``--json`` prints the whole card as JSON instead. No weights are loaded.

Example:
    $ uniadrs info                     # the shipped default model
    $ uniadrs info runs/s1/model.safetensors --json
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List

from uniadrs_engine.errors import InputError
from uniadrs_engine.inference.presets import get_preset
from uniadrs_engine.model.config import describe_options
from uniadrs_engine.model.model_card import HELD_OUT_KEY
from uniadrs_engine.raster.normalisation import TILE_SCOPE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``info`` sub-command."""
    parser = subparsers.add_parser(
        "info",
        help="show a model file's card: presets, validation, training, data and licences",
        description=(
            "Show what a model file holds, read from its header (no weights are loaded): "
            "the model card with its recommended presets, validation figures, training "
            "record and training data with their licences, and how the weights are stored."
        ),
    )
    parser.add_argument(
        "model", nargs="?", default="default", help="model file (default: the shipped model)"
    )
    parser.add_argument("--json", action="store_true", help="print the whole card as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prints the card of ``args.model``."""
    from uniadrs_engine.model.default import resolve_model_path
    from uniadrs_engine.model.model_file import read_model_card, read_weight_storage

    path = resolve_model_path(args.model)
    card = read_model_card(path)
    if args.json:
        print(card.to_json())
        return 0
    size_mb = path.stat().st_size / 1e6
    lines = [
        f"{path} ({size_mb:.1f} MB, weights stored as {read_weight_storage(path)})",
        card.summary(),
    ]
    if card.description:
        lines.append(f"description: {card.description}")
    if card.created:
        lines.append(f"created: {card.created}")
    lines += _preset_lines(card.presets)
    lines += _network_lines(card)
    lines += _validation_lines(card.validation)
    lines += _training_lines(card.training)
    lines += _data_lines(card.data_sources)
    print("\n".join(lines))
    return 0


def _preset_lines(presets: Dict[str, Dict[str, Any]]) -> List[str]:
    if not presets:
        return ["presets: the engine's built-in ones"]
    lines = ["presets (input scales fused by (power-)averaged ranks; tile in input pixels):"]
    for name, values in presets.items():
        try:
            get_preset(str(name), presets)
        except InputError as error:  # a card written before presets were checked
            lines.append(f"  {name:<14} unusable: {error}")
            continue
        scales = ", ".join(f"{float(scale):g}" for scale in values.get("scales", []))
        extras = [f"tile {values['tile']}"] if values.get("tile") else []
        if values.get("rx_weight"):
            extras.append(f"global RX weight {float(values['rx_weight']):g}")
        if values.get("networks"):
            numbers = ", ".join(str(int(number)) for number in values["networks"])
            extras.append(f"networks {numbers}")
        if values.get("normalisation_scope") == TILE_SCOPE:
            extras.append("statistics per tile")
        if int(values.get("views") or 1) > 1:
            extras.append(f"{int(values['views'])} views")
        if float(values.get("fusion_power") or 1) != 1:
            extras.append(f"fusion power {float(values['fusion_power']):g}")
        lines.append(f"  {name:<14} scales {scales}" + "".join(f", {item}" for item in extras))
    return lines


def _network_lines(card: Any) -> List[str]:
    """One line per network of an ensemble, numbered as ``detect --networks`` takes them."""
    if not card.members:
        return []
    from uniadrs_engine.model.network import UniADRS, count_parameters

    configs = card.member_configs
    # Networks of one configuration (a seed pair) have one size: build each kind once.
    parameters = {config: count_parameters(UniADRS(config)) for config in set(configs)}
    alike = len(parameters) == 1
    cost = "each takes the same time" if alike else "their options change how long each takes"
    lines = [f"networks (detect --networks LIST scores with some of them; {cost}):"]
    for number, (record, config) in enumerate(zip(card.members, configs), start=1):
        training = record.get("training", {})
        recorded = training.get("config", {})
        details = [str(record.get("name", "?"))]
        if "seed" in recorded:
            details.append(f"seed {recorded['seed']}")
        if "spectral_share" in recorded:
            details.append(f"spectral share {recorded['spectral_share']:g}")
        details += describe_options(config)
        details.append(f"{parameters[config] / 1e6:.2f} M parameters")
        auc = record.get("validation", {}).get("auc")
        if auc is not None:
            details.append(f"validation AUC {float(auc):.3f}")
        lines.append(f"  {number}: " + ", ".join(details))
    return lines


def _validation_lines(validation: Dict[str, Any]) -> List[str]:
    figures = [
        f"{name.replace('_auc', '')} {float(value):.4f}"
        for name, value in validation.items()
        if name.endswith("auc") and isinstance(value, (int, float))
    ]
    if not figures:
        return []
    samples = validation.get("samples")
    held_out = [source.get("name", "?") for source in validation.get("held_out_sources", [])]
    kept_out = validation.get(HELD_OUT_KEY, True)  # cards before the key held backgrounds out
    where = "held-out backgrounds" if kept_out else "the training backgrounds, none held out"
    line = f"validation AUC (simulated anomalies in {where}"
    line += f", {samples} samples): " if samples else "): "
    lines = [line + ", ".join(figures)]
    for kind, numbers in (validation.get("networks") or {}).items():
        scored_by = (
            "every network"
            if numbers is None
            else "networks " + ", ".join(str(number) for number in numbers)
        )
        lines.append(f"  {kind} samples scored by {scored_by}")
    if held_out and kept_out:
        lines.append(f"  held-out sources: {', '.join(held_out)}")
    return lines


def _training_lines(training: Dict[str, Any]) -> List[str]:
    lines = []
    if training.get("steps"):
        minutes = float(training.get("wall_seconds", 0)) / 60
        lines.append(f"training: {training['steps']} steps, {minutes:.1f} min of wall time")
    start = training.get("initialised_from")
    if isinstance(start, dict):
        network = start.get("network")
        which = "" if network is None else f" (its network {int(network) + 1})"
        lines.append(
            f"started from: {start.get('name', '?')} v{start.get('model_version', '?')}"
            f"{which}, {start.get('model', '?')}"
        )
    commands = training.get("retrain_commands", [])
    if commands:
        lines.append("retrain with:")
        lines += [f"  {command}" for command in commands]
    return lines


def _data_lines(sources: List[Dict[str, Any]]) -> List[str]:
    if not sources:
        return []
    lines = ["training data (name, sets: licence):"]
    for source in sources:
        sets = ", ".join(source.get("sets", []))
        via = f" [through the starting model {source['via']}]" if source.get("via") else ""
        lines.append(f"  {source.get('name', '?')} ({sets}): {source.get('license', '?')}{via}")
    return lines
