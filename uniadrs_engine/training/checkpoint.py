"""Training checkpoints: the whole state needed to resume a run exactly.

A checkpoint holds tensors and plain Python values only, written with ``torch.save`` and read
with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.

Example:
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.pt"
    >>> save_checkpoint(path, {"step": 3, "weights": {"w": torch.ones(2)}})
    >>> load_checkpoint(path)["step"]
    3
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict

import torch

from uniadrs_engine.errors import TrainingError
from uniadrs_engine.raster.writer import temporary_sibling, write_failure_message

CHECKPOINT_FILENAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Writes ``state`` atomically (temp file in the same folder, then rename).

    Raises:
        TrainingError: If it cannot be written (a full disk, say); the previous checkpoint
            is kept.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_sibling(path, path.suffix)
    except OSError as error:
        raise TrainingError(write_failure_message(path, error.strerror or str(error))) from None
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch reports a full disk as a RuntimeError
        Path(temporary).unlink(missing_ok=True)
        raise TrainingError(_checkpoint_failure(path, error)) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _checkpoint_failure(path: Path, error: BaseException) -> str:
    """One line on a checkpoint that could not be written; a full disk is named as such."""
    message = str(getattr(error, "strerror", None) or error)
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < 16 * 2**20:  # torch says "unexpected pos" when it is full
        message = f"No space left on device ({free // 2**10} KiB free): {message}"
    return write_failure_message(path, message)


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Reads a checkpoint without unpickling arbitrary objects.

    Raises:
        TrainingError: If the file is missing or not a plain-data checkpoint.
    """
    if not path.is_file():
        raise TrainingError(f"no checkpoint to resume from at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure means an unusable checkpoint
        raise TrainingError(f"{path}: unreadable checkpoint ({error})") from error
    if not isinstance(state, dict) or "step" not in state:
        raise TrainingError(f"{path}: not a UniADRS training checkpoint")
    return state
