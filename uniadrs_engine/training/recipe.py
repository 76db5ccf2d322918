"""Ensemble recipes: one model file from the members of several training configurations.

A seed ensemble (``members: N``) averages networks trained on one simulation. A recipe
averages the members of several configurations, for example networks trained on the METHOD
simulation beside networks trained on realistic spectral anomalies; the networks must share
the input normalisation and the model configuration (they may differ only in the
:data:`~uniadrs_engine.model.config.MEMBER_OPTIONS`). The recipe is a small YAML file::

    model_name: uniadrs-default
    model_version: "5.0"
    description: ...
    weight_storage: float16                  # float32, float16, int8 or int4
    validation_config: default_model.yaml    # whose fixed validation set the card records
    parts:
      - config: default_model.yaml
        note: how to reproduce this part, if more than the config is needed
      - config: experiments/whiten_realistic_spectra.yaml
      - config: experiments/own_scene_spatial.yaml
        presets: [visible]                   # only these presets score with its networks

Paths are relative to the recipe's folder. :func:`join_recipe` takes the members' model
files in recipe order (each part's member 0, 1, ...), checks each against its member
configuration exactly as :func:`~uniadrs_engine.training.members.join_members` does, and
writes one ensemble whose card records every part. A part that names ``presets`` scores
only with those presets; :meth:`EnsembleRecipe.preset_networks` gives every preset's networks
for the card (``networks`` of its preset entries). The card's validation then scores each
kind of sample with the networks of the preset that scores such rasters
(:data:`VALIDATION_PRESETS`), and records them under ``networks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from uniadrs_engine.errors import ModelFileError, TrainingError
from uniadrs_engine.inference.device import resolve_device
from uniadrs_engine.inference.presets import preset_names
from uniadrs_engine.model.model_file import load_model, save_ensemble
from uniadrs_engine.model.weight_storage import check_weight_storage
from uniadrs_engine.training.config import (
    TrainingConfig,
    read_yaml_file,
    upgrade_legacy_keys,
)
from uniadrs_engine.training.members import (
    checked_member_cards,
    members_record,
    save_validated_ensemble,
    validate_ensemble,
)
from uniadrs_engine.training.trainer import TrainingResult, training_record

#: The preset whose networks score each kind of validation sample in a recipe's card:
#: spectral samples are hyperspectral cubes (``auto`` also takes the hyperspectral preset
#: from 5 bands), spatial samples are visible crops.
VALIDATION_PRESETS: Dict[str, str] = {"spectral": "hyperspectral", "spatial": "visible"}


@dataclass(frozen=True)
class RecipePart:
    """One configuration whose members join the ensemble.

    Attributes:
        config: The training configuration (its ``members`` networks join).
        config_path: The configuration file, as the recipe names it.
        note: How to reproduce the part beyond the configuration, if needed.
        presets: The presets that score with this part's networks, or None for every
            preset.
    """

    config: TrainingConfig
    config_path: str
    note: str = ""
    presets: Optional[Tuple[str, ...]] = None


@dataclass(frozen=True)
class EnsembleRecipe:
    """What an ensemble of several configurations' members is made of and called.

    Attributes:
        model_name: Name in the model card.
        model_version: Version in the model card.
        description: Description in the model card.
        parts: The configurations, in the order their members are given.
        validation_config: The configuration whose fixed validation set the card records.
        weight_storage: How the model file stores the weights (``float32``, ``float16``,
            ``int8`` or ``int4``).
    """

    model_name: str
    model_version: str
    description: str
    parts: List[RecipePart]
    validation_config: TrainingConfig
    weight_storage: str = "float32"

    def __post_init__(self) -> None:
        try:
            check_weight_storage(self.weight_storage)
        except ValueError as error:
            raise TrainingError(str(error)) from error
        self.preset_networks()  # a recipe that leaves a preset without networks is refused

    @property
    def member_counts(self) -> List[int]:
        """How many networks each part contributes."""
        return [part.config.members for part in self.parts]

    @property
    def member_total(self) -> int:
        """How many model files the recipe joins."""
        return sum(self.member_counts)

    def preset_networks(self) -> Dict[str, Optional[Tuple[int, ...]]]:
        """Every built-in preset's networks (1-based, recipe order), None where it uses all.

        Raises:
            TrainingError: If a preset would be left without a network.

        Example:
            A recipe of a pair for every preset and a pair for ``visible`` only gives
            ``visible`` None (all four) and every other preset ``(1, 2)``.
        """
        networks: Dict[str, Optional[Tuple[int, ...]]] = {}
        for name in preset_names():
            numbers: List[int] = []
            first = 1
            for part in self.parts:
                if part.presets is None or name in part.presets:
                    numbers.extend(range(first, first + part.config.members))
                first += part.config.members
            if not numbers:
                raise TrainingError(f"no part of the recipe scores with the preset {name!r}")
            networks[name] = None if len(numbers) == self.member_total else tuple(numbers)
        return networks

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> EnsembleRecipe:
        """Reads a recipe file.

        Raises:
            TrainingError: If the file is missing, not YAML, or incomplete.
        """
        path = Path(path)
        data = read_yaml_file(path, "ensemble recipe")
        if not isinstance(data, dict):
            raise TrainingError(f"{path}: an ensemble recipe is a mapping")
        data = upgrade_legacy_keys(data)
        unknown = set(data) - {
            "model_name",
            "model_version",
            "description",
            "weight_storage",
            "validation_config",
            "parts",
        }
        if unknown:
            raise TrainingError(f"{path}: unknown keys {sorted(unknown)}")
        folder = path.resolve().parent
        parts_data = data.get("parts")
        if not isinstance(parts_data, list) or not parts_data:
            raise TrainingError(f"{path}: 'parts' must list at least one configuration")
        parts = []
        for entry in parts_data:
            if not isinstance(entry, dict) or "config" not in entry:
                raise TrainingError(f"{path}: every part needs a 'config'")
            config_path = str(entry["config"])
            parts.append(
                RecipePart(
                    TrainingConfig.from_yaml(folder / config_path),
                    config_path,
                    str(entry.get("note", "")).strip(),
                    _part_presets(path, entry),
                )
            )
        validation_path = data.get("validation_config", parts[0].config_path)
        return cls(
            model_name=str(data.get("model_name", "uniadrs-ensemble")),
            model_version=str(data.get("model_version", "1")),
            description=str(data.get("description", "")).strip(),
            parts=parts,
            validation_config=TrainingConfig.from_yaml(folder / str(validation_path)),
            weight_storage=str(data.get("weight_storage", "float32")),
        )


def _part_presets(path: Path, entry: Dict[str, Any]) -> Optional[Tuple[str, ...]]:
    """A part's ``presets`` (None when it names none), checked against the built-in ones."""
    unknown_keys = set(entry) - {"config", "note", "presets"}
    if unknown_keys:
        raise TrainingError(f"{path}: unknown part keys {sorted(unknown_keys)}")
    value = entry.get("presets")
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise TrainingError(f"{path}: a part's 'presets' must list preset names")
    names = tuple(str(name) for name in value)
    unknown = sorted(set(names) - set(preset_names()))
    if unknown:
        raise TrainingError(
            f"{path}: unknown presets {unknown} in a part (known: {', '.join(preset_names())})"
        )
    return names


def split_by_part(
    recipe: EnsembleRecipe, model_paths: Sequence[Union[str, Path]]
) -> List[List[Union[str, Path]]]:
    """The model files grouped by recipe part, in order.

    Raises:
        TrainingError: If the count differs from the recipe's.
    """
    if len(model_paths) != recipe.member_total:
        counts = " + ".join(str(count) for count in recipe.member_counts)
        raise TrainingError(
            f"the recipe joins {counts} = {recipe.member_total} model files, got {len(model_paths)}"
        )
    groups, start = [], 0
    for count in recipe.member_counts:
        groups.append(list(model_paths[start : start + count]))
        start += count
    return groups


def join_recipe(
    recipe: EnsembleRecipe,
    model_paths: Sequence[Union[str, Path]],
    output_path: Union[str, Path],
) -> TrainingResult:
    """Joins the members of every part of ``recipe`` into one ensemble model file.

    Args:
        recipe: The recipe.
        model_paths: The members' model files in recipe order.
        output_path: Where to write.

    Raises:
        TrainingError: If the count is wrong, a file was not trained with its member
            configuration, or the networks cannot form one ensemble.
    """
    groups = split_by_part(recipe, model_paths)
    records: List[Dict[str, Any]] = []
    all_cards = []
    for part, paths in zip(recipe.parts, groups):
        cards = checked_member_cards(part.config, paths)
        all_cards.extend(cards)
        record = {
            "config_file": part.config_path,
            **training_record(part.config),
            **members_record(part.config, cards),
        }
        if part.note:
            record["note"] = part.note
        if part.presets is not None:
            record["presets"] = list(part.presets)
        records.append(record)
    output = Path(output_path)
    try:
        save_ensemble(
            model_paths,
            output,
            recipe.model_name,
            recipe.model_version,
            recipe.description,
            weight_storage=recipe.weight_storage,
        )
    except ModelFileError as error:
        raise TrainingError(str(error)) from error
    device = resolve_device(recipe.validation_config.device)
    stored = load_model(output, device=device)
    card = stored.card
    card.training = {
        "ensemble": card.training["ensemble"],
        "parts": records,
        "steps": min(record["steps"] for record in records),
        "wall_seconds": round(sum(record["wall_seconds"] for record in records), 1),
    }
    networks = recipe.preset_networks()
    kind_networks = {kind: networks[preset] for kind, preset in VALIDATION_PRESETS.items()}
    card.validation = validate_ensemble(
        recipe.validation_config,
        stored.network,
        device,
        None if all(numbers is None for numbers in kind_networks.values()) else kind_networks,
    )
    return save_validated_ensemble(output, stored.network, card, recipe.weight_storage)
