"""Starting a training run from a trained model's weights (fine-tuning).

``init_model`` in a training configuration names a model file (or ``default``, the shipped
model) whose weights replace the random initialisation; the run then trains as usual, with a
fresh optimiser and its own schedule. Use it to adapt the default model to one's own
backgrounds, or to train a model further with a new schedule.

The file is read like any model file (safetensors only, never unpickled). Its network
configuration and input normalisation must be the run's. An ensemble file provides network
``init_member``; a single-network file provides its one network whatever the index, so every
member of an ensemble run can start from it.

Example:
    >>> member_network_index(member_count=2, index=1)
    1
    >>> member_network_index(member_count=1, index=3) is None
    True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from uniadrs_engine.errors import ModelFileError, TrainingError
from uniadrs_engine.model.config import NAMED_CONFIGS, ModelConfig
from uniadrs_engine.model.default import resolve_model_path
from uniadrs_engine.model.model_card import ModelCard
from uniadrs_engine.model.model_file import load_model, read_model_card


@dataclass
class InitialWeights:
    """The weights a run starts from, and where they came from.

    Attributes:
        state: The network's state dict (one network, not an ensemble).
        provenance: Plain-data record for the model card: file, its SHA-256, name, version
            and which of its networks was taken.
    """

    state: Dict[str, torch.Tensor]
    provenance: Dict[str, Any]


def member_network_index(member_count: int, index: int) -> Optional[int]:
    """Which network of a file with ``member_count`` networks serves index ``index``.

    Returns:
        ``index`` for an ensemble file, None for a single-network file (its one network
        serves every index).

    Raises:
        TrainingError: If an ensemble file has no network ``index``.
    """
    if member_count <= 1:
        return None
    if not 0 <= index < member_count:
        raise TrainingError(
            f"init_member {index} is outside the initial model's networks 0..{member_count - 1}"
        )
    return index


def checked_network_index(
    card: ModelCard, index: int, config: ModelConfig, normalisation: str, path: Union[str, Path]
) -> Optional[int]:
    """Checks that a model file (its card) can start a run; returns its network to take.

    Args:
        card: The model file's card.
        index: Which network of an ensemble file to take (``init_member``).
        config: The run's network configuration; that network's must equal it (an
            ensemble's members may differ in their member options).
        normalisation: The run's input normalisation; the file's must equal it.
        path: The file, for messages.

    Returns:
        As :func:`member_network_index`.

    Raises:
        TrainingError: If the file does not fit the run.
    """
    network_index = member_network_index(card.member_count, index)
    network_config = network_configuration(card, network_index)
    if network_config != config:
        which = "" if network_index is None else f" network {network_index}"
        raise TrainingError(
            f"init_model {path}{which} has another network configuration than this run "
            f"({network_config.name!r} against {config.name!r}, or their options differ)"
        )
    if card.normalisation != normalisation:
        raise TrainingError(
            f"init_model {path} was trained with normalisation "
            f"{card.normalisation!r}, this run uses {normalisation!r}"
        )
    return network_index


def network_configuration(card: ModelCard, network_index: Optional[int]) -> ModelConfig:
    """The configuration of network ``network_index`` of a file (``None``: its only one)."""
    return card.config if network_index is None else card.member_configs[network_index]


def read_initial_card(model: Union[str, Path]) -> Tuple[ModelCard, Path]:
    """The card and resolved path of ``init_model`` (no weights are read).

    Raises:
        TrainingError: If the file is missing, foreign or carries a pickled payload.
    """
    try:
        path = resolve_model_path(model)
        return read_model_card(path), path
    except ModelFileError as error:
        raise TrainingError(f"init_model: {error}") from error


def load_initial_weights(
    model: Union[str, Path], index: int, config: ModelConfig, normalisation: str
) -> InitialWeights:
    """Reads the weights a run with ``config`` and ``normalisation`` starts from.

    Args:
        model: A model file, or ``default``.
        index: Which network of an ensemble file to take (``init_member``).
        config: The run's network configuration; the file's must equal it.
        normalisation: The run's input normalisation; the file's must equal it.

    Raises:
        TrainingError: If the file is unreadable or does not fit the run.
    """
    card, path = read_initial_card(model)
    network_index = checked_network_index(card, index, config, normalisation, path)
    try:
        loaded = load_model(path)
    except ModelFileError as error:
        raise TrainingError(f"init_model: {error}") from error
    network = loaded.network if network_index is None else loaded.network.members[network_index]
    state = {name: value.detach().clone() for name, value in network.state_dict().items()}
    provenance = {
        "model": str(path),
        "sha256": _sha256(path),
        "name": card.name,
        "model_version": card.model_version,
        "network": network_index,
        "data_sources": [dict(source) for source in card.data_sources],
    }
    return InitialWeights(state=state, provenance=provenance)


def settings_of_model(model: Union[str, Path], index: int = 0) -> Dict[str, Any]:
    """The configuration keys a run starting from ``model`` must have.

    Args:
        model: A model file, or ``default``.
        index: Which network of an ensemble file the run starts from (``init_member``);
            an ensemble's networks may differ in their member options.

    Returns:
        ``model`` (the network configuration's name), ``model_options`` (its fields that
        differ from that named configuration) and ``normalisation``, as a training
        configuration holds them.

    Raises:
        TrainingError: If the file is unreadable or its network is not a named
            configuration with options.
    """
    card, _ = read_initial_card(model)
    config = network_configuration(card, member_network_index(card.member_count, index))
    named = NAMED_CONFIGS.get(config.name)
    if named is None:
        raise TrainingError(
            f"init_model {model}: its network configuration {config.name!r} is not one "
            f"of {sorted(NAMED_CONFIGS)}"
        )
    options = {
        item.name: getattr(config, item.name)
        for item in fields(ModelConfig)
        if item.name != "name" and getattr(config, item.name) != getattr(named, item.name)
    }
    if "encoder_widths" in options:
        options["encoder_widths"] = list(options["encoder_widths"])
    return {
        "model": config.name,
        "model_options": options,
        "normalisation": card.normalisation,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
