"""Training a seed ensemble: ``members: N`` in a training configuration.

Member ``k`` is the configuration with seed ``seed + k``, trained like any single run in
``output_dir/member_<k>`` (its own checkpoints, resume and model file). When every member is
trained, :func:`join_members` writes ``output_dir/model.safetensors``: one ensemble model file
(:mod:`uniadrs_engine.model.ensemble`) whose card holds the whole configuration, the
ensemble's own validation figures on the configuration's fixed validation set, and each
member's record.

Members trained separately (``--set seed=S --set output_dir=...``) can be joined afterwards
with the same checks: each must have been trained with exactly its member configuration.

Example:
    >>> config = TrainingConfig(backgrounds=["x"], seed=7, members=2, output_dir="runs/pair")
    >>> member = member_config(config, 1)
    >>> member.seed, member.members, Path(member.output_dir).name
    (8, 1, 'member_1')
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

from uniadrs_engine.errors import ModelFileError, TrainingError
from uniadrs_engine.inference.device import resolve_device
from uniadrs_engine.model.model_card import HELD_OUT_KEY, ModelCard
from uniadrs_engine.model.model_file import (
    load_model,
    read_model_card,
    save_ensemble,
    save_model,
)
from uniadrs_engine.progress import CancelCheck, ProgressCallback
from uniadrs_engine.training.checkpoint import CHECKPOINT_FILENAME
from uniadrs_engine.training.config import TrainingConfig, weight_differences
from uniadrs_engine.training.data_sources import summarise_sources
from uniadrs_engine.training.initial_weights import checked_network_index, read_initial_card
from uniadrs_engine.training.simulators import build_simulation
from uniadrs_engine.training.trainer import (
    MODEL_FILENAME,
    Trainer,
    TrainingResult,
    training_record,
)
from uniadrs_engine.training.validation import build_validation_set, evaluate, evaluate_by_kind


def member_config(config: TrainingConfig, index: int) -> TrainingConfig:
    """The single-network configuration of member ``index`` (seed ``seed + index``).

    Members keep full-precision weights; ``weight_storage`` applies to the ensemble file.
    A run that starts from ``init_model`` starts member ``index`` from its network
    ``init_member + index`` (:mod:`uniadrs_engine.training.initial_weights`).
    """
    if not 0 <= index < config.members:
        raise ValueError(f"member index {index} outside 0..{config.members - 1}")
    return replace(
        config,
        members=1,
        weight_storage="float32",
        seed=config.seed + index,
        init_member=config.init_member + index,
        output_dir=str(Path(config.output_dir) / f"member_{index}"),
        model_name=f"{config.model_name}-member{index}",
    )


def train_members(
    config: TrainingConfig,
    resume: bool = False,
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
) -> TrainingResult:
    """Trains every member in turn (resuming each from its checkpoint if asked), then joins.

    A member whose run is complete is not trained again on resume; its model is rewritten
    from its last checkpoint.
    """
    count = config.members
    # the members that will start from init_model: on resume, those without a checkpoint
    starting = [
        index
        for index in range(count)
        if not (
            resume
            and (Path(member_config(config, index).output_dir) / CHECKPOINT_FILENAME).is_file()
        )
    ]
    if config.init_model is not None and starting:
        # Fail now, not after the first members' hours of training (the card is enough).
        card, path = read_initial_card(config.init_model)
        for index in starting:
            member = member_config(config, index)
            checked_network_index(
                card, member.init_member, member.model_config(), config.normalisation, path
            )
    model_paths: List[Path] = []
    for index in range(count):

        def member_progress(fraction: float, message: str, index: int = index) -> None:
            if progress is not None:
                progress((index + fraction) / count, f"{message} (member {index + 1}/{count})")

        trainer = Trainer(
            member_config(config, index), progress=member_progress, is_cancelled=is_cancelled
        )
        model_paths.append(trainer.run(resume=resume).model_path)
    return join_members(config, model_paths)


def join_members(
    config: TrainingConfig,
    model_paths: Sequence[Union[str, Path]],
    output_path: Optional[Union[str, Path]] = None,
) -> TrainingResult:
    """Joins the trained members of ``config`` into its ensemble model file.

    Args:
        config: The ensemble's configuration (``members`` >= 2).
        model_paths: The members' model files, member 0 first.
        output_path: Where to write; default ``output_dir/model.safetensors``.

    Raises:
        TrainingError: If the count is wrong or a file was not trained with its member
            configuration.
    """
    if config.members < 2:
        raise TrainingError("joining members needs a configuration with members >= 2")
    if len(model_paths) != config.members:
        raise TrainingError(f"expected {config.members} member models, got {len(model_paths)}")
    cards = checked_member_cards(config, model_paths)
    output = Path(output_path) if output_path else Path(config.output_dir) / MODEL_FILENAME
    save_ensemble(
        model_paths,
        output,
        config.model_name,
        config.model_version,
        config.description,
        weight_storage=config.weight_storage,
    )
    # Validate what was written (float16 and int8 storage round the weights), then record it.
    device = resolve_device(config.device)
    stored = load_model(output, device=device)
    card = stored.card
    card.presets = dict(config.presets) or card.presets
    card.training = {
        **training_record(config),
        "ensemble": card.training["ensemble"],
        **members_record(config, cards),
    }
    card.validation = validate_ensemble(config, stored.network, device)
    return save_validated_ensemble(output, stored.network, card, config.weight_storage)


def members_record(config: TrainingConfig, cards: Sequence[ModelCard]) -> Dict[str, Any]:
    """What an ensemble's card records of ``config``'s members (read from their ``cards``)."""
    return {
        "members": config.members,
        "seeds": [card.training.get("seed") for card in cards],
        "steps": min(int(card.training.get("steps", 0)) for card in cards),
        "wall_seconds": round(
            sum(float(card.training.get("wall_seconds", 0)) for card in cards), 1
        ),
    }


def save_validated_ensemble(
    output: Path, network: Any, card: ModelCard, weight_storage: str
) -> TrainingResult:
    """Writes an ensemble whose card holds its training record and validation figures."""
    save_model(output, network.cpu(), card, weight_storage=weight_storage)
    figures = {key: value for key, value in card.validation.items() if isinstance(value, float)}
    return TrainingResult(
        model_path=output,
        steps=int(card.training["steps"]),
        wall_seconds=float(card.training["wall_seconds"]),
        validation=figures,
    )


def checked_member_cards(
    config: TrainingConfig, model_paths: Sequence[Union[str, Path]]
) -> List[ModelCard]:
    """The cards of ``config``'s members, checked to be exactly its member configurations.

    Args:
        config: The ensemble's configuration.
        model_paths: The members' model files, member 0 first.

    Raises:
        TrainingError: If a file is unreadable or was not trained with its member
            configuration.
    """
    try:
        cards = [read_model_card(path) for path in model_paths]
    except ModelFileError as error:
        raise TrainingError(str(error)) from error
    for index, (path, card) in enumerate(zip(model_paths, cards)):
        # How a member's own file stored its weights does not matter: the ensemble file
        # stores them as ``config.weight_storage`` says.
        differing = [
            key
            for key in weight_differences(
                member_config(config, index), card.training.get("config", {})
            )
            if key != "weight_storage"
        ]
        if differing:
            raise TrainingError(
                f"{path} is not member {index} of this configuration (it differs in {differing})"
            )
    return cards


def validate_ensemble(
    config: TrainingConfig,
    network: Any,
    device: torch.device,
    kind_networks: Optional[Mapping[str, Optional[Sequence[int]]]] = None,
) -> Dict[str, Any]:
    """The figures of ``network`` on ``config``'s fixed validation set (member 0's).

    Args:
        config: The configuration whose validation set is scored.
        network: The network or ensemble.
        device: Where to score.
        kind_networks: For each sample kind (``spectral``, ``spatial``), the 1-based
            networks that score its samples (None: all), recorded under ``networks``; None
            scores every sample with every network.
    """
    simulation = build_simulation(config)
    samples = build_validation_set(simulation.validation, config.validation_samples, config.seed)
    if kind_networks is None:
        figures: Dict[str, Any] = evaluate(
            network, samples, device, normalisation=config.normalisation
        )
    else:
        figures = evaluate_by_kind(
            network, samples, device, kind_networks, normalisation=config.normalisation
        )
        figures["networks"] = {
            kind: None if numbers is None else [int(number) for number in numbers]
            for kind, numbers in kind_networks.items()
        }
    return {
        **figures,
        "held_out_sources": summarise_sources(simulation.validation_files),
        HELD_OUT_KEY: bool(config.validation_backgrounds),
    }
