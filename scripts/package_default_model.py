"""Packages trained networks as the shipped default model.

Joins the networks named by ``configs/default_model_recipe.yaml`` (each part's training
configuration, its members in order) into ``resources/models/uniadrs_default.safetensors``,
recording in its model card every part's configuration, the recommended inference presets
(the engine's built-in table, ``inference/presets.py``, each with the networks the recipe's
parts give it) and the exact commands that retrain
it, with the run's paths made relative to the repository. Every model file must have been
trained with its part's member configuration (up to its output folder and the names written
into the card), so that the retrain commands give the same model; the card takes its name,
version and description from the recipe.

Usage:
    .venv/bin/python scripts/package_default_model.py [MODEL ...]

Without arguments it takes each part's ``output_dir/member_<k>/model.safetensors`` (what
``uniadrs train CONFIG`` writes); otherwise the model files in recipe order. ``--recipe`` and
``--output`` package a candidate instead (another recipe, another file), for example the
shipped networks and a new pair that a preset names, to be scored before it ships.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, List

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.inference.presets import PRESETS
from uniadrs_engine.model.default import DEFAULT_MODEL_FILENAME
from uniadrs_engine.model.model_file import load_model, save_model
from uniadrs_engine.training.recipe import EnsembleRecipe, join_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "default_model_recipe.yaml"


def repository_path(path: Path) -> str:
    """``path`` relative to the repository, normalised (``configs/x/../y`` is ``configs/y``)."""
    return Path(os.path.relpath(path.resolve(), REPO)).as_posix()


def retrain_commands(recipe: EnsembleRecipe, recipe_path: Path = RECIPE) -> List[str]:
    """The commands that retrain the recipe's networks and package them.

    Each part's configuration is named from the repository root, wherever the recipe lies;
    a recipe other than the shipped one is named in the packaging command.
    """
    commands = [
        f"uniadrs train {repository_path(recipe_path.parent / part.config_path)}"
        "  (add --resume after an interruption)"
        for part in recipe.parts
    ]
    package = ".venv/bin/python scripts/package_default_model.py"
    if recipe_path.resolve() != RECIPE.resolve():
        package += f" --recipe {repository_path(recipe_path)} --output MODEL_FILE"
    return [*commands, package]


def default_member_paths(recipe: EnsembleRecipe) -> List[Path]:
    """Where ``uniadrs train`` writes each part's members."""
    return [
        Path(part.config.output_dir) / f"member_{index}" / "model.safetensors"
        for part in recipe.parts
        for index in range(part.config.members)
    ]


def relative_paths(value: Any) -> Any:
    """Rewrites absolute paths beside or in the repository as paths relative to it."""
    if isinstance(value, dict):
        return {key: relative_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item) for item in value]
    if isinstance(value, str) and value.startswith(str(REPO.parent)):
        path = Path(value)
        if path.is_relative_to(REPO):
            return path.relative_to(REPO).as_posix()
        return f"../{path.relative_to(REPO.parent).as_posix()}"
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model files in recipe order")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="ensemble recipe (YAML)")
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO / "resources" / "models" / DEFAULT_MODEL_FILENAME,
        help="model file to write (the shipped default model by default)",
    )
    args = parser.parse_args()
    recipe = EnsembleRecipe.from_yaml(args.recipe)
    models = args.models or default_member_paths(recipe)
    with tempfile.TemporaryDirectory() as folder:
        try:
            joined = join_recipe(recipe, models, Path(folder) / "ensemble.safetensors")
        except TrainingError as error:
            raise SystemExit(f"cannot package the default model: {error}") from error
        loaded = load_model(joined.model_path)
    card = loaded.card
    networks = recipe.preset_networks()
    card.presets = {
        name: replace(preset, networks=networks[name]).card_entry()
        for name, preset in PRESETS.items()
    }
    card.training = relative_paths(
        {**card.training, "retrain_commands": retrain_commands(recipe, args.recipe)}
    )
    card.validation = relative_paths(card.validation)
    target = args.output
    target.parent.mkdir(parents=True, exist_ok=True)
    save_model(target, loaded.network, card, weight_storage=recipe.weight_storage)
    size_mb = target.stat().st_size / 1e6
    print(f"{target} ({size_mb:.1f} MB): {load_model(target).card.summary()}")


if __name__ == "__main__":
    main()
