"""Packages a trained model as the shipped default model.

Copies the final model of a training run (``runs/default_model/model.safetensors`` by
default) to ``resources/models/uniadrs_default.safetensors``, recording in its model card the
recommended inference presets (the engine's built-in table, ``inference/presets.py``) and the
exact command that retrains it, with the run's paths made relative to the repository.

The run must have been trained with ``configs/default_model.yaml`` (up to its output folder
and the names written into the card), so that the retrain command gives the same model; the
card takes its name, version and description from that file. When that file asks for a seed
ensemble (``members: N``), give either the ensemble run's model file or the N members' model
files trained apart (member ``k`` with seed ``seed + k``), which are then joined and validated
exactly as the ensemble run would.

Usage:
    .venv/bin/python scripts/package_default_model.py [RUN_MODEL | MEMBER_MODEL ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from uniadrs_engine.inference.presets import PRESETS
from uniadrs_engine.model.default import DEFAULT_MODEL_FILENAME
from uniadrs_engine.model.model_file import load_model, save_model
from uniadrs_engine.training.config import TrainingConfig, weight_differences
from uniadrs_engine.training.members import join_members

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "default_model.yaml"
RETRAIN_COMMAND = "uniadrs train configs/default_model.yaml  (add --resume after an interruption)"


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
    parser.add_argument(
        "models", nargs="*", default=[REPO / "runs/default_model/model.safetensors"]
    )
    args = parser.parse_args()
    config = TrainingConfig.from_yaml(DEFAULT_CONFIG)
    with tempfile.TemporaryDirectory() as folder:
        if len(args.models) > 1:
            joined = join_members(config, args.models, Path(folder) / "ensemble.safetensors")
            loaded = load_model(joined.model_path)
        else:
            loaded = load_model(args.models[0])
    card = loaded.card
    differing = weight_differences(config, card.training.get("config", {}))
    if differing:
        raise SystemExit(
            f"{' '.join(map(str, args.models))} was not trained with {DEFAULT_CONFIG.name}: "
            f"{differing} differ; make the file describe the run first"
        )
    card.name = config.model_name
    card.model_version = config.model_version
    card.description = config.description
    card.presets = {
        name: {
            "scales": list(preset.scales),
            "tile": preset.tile,
            "halo": preset.halo,
            "rx_weight": preset.rx_weight,
        }
        for name, preset in PRESETS.items()
    }
    card.training = relative_paths({**card.training, "retrain_command": RETRAIN_COMMAND})
    card.validation = relative_paths(card.validation)
    target = REPO / "resources" / "models" / DEFAULT_MODEL_FILENAME
    save_model(target, loaded.network, card, float16=config.float16_weights)
    size_mb = target.stat().st_size / 1e6
    print(f"{target} ({size_mb:.1f} MB): {load_model(target).card.summary()}")


if __name__ == "__main__":
    main()
