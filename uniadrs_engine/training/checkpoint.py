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
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch

from uniadrs_engine.errors import TrainingError

CHECKPOINT_FILENAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Writes ``state`` atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
