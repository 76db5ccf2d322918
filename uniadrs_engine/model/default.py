"""Where the shipped default model lives, and how ``--model default`` is resolved.

The default model is ``resources/models/uniadrs_default.safetensors`` next to the
``uniadrs_engine`` package: in a source checkout that is the repository's ``resources/``; in
the plugin ZIP the build copies it to the same place relative to the vendored engine. The
environment variable ``UNIADRS_DEFAULT_MODEL`` overrides it.

Example:
    >>> default_model_path().name
    'uniadrs_default.safetensors'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from uniadrs_engine.errors import ModelFileError

DEFAULT_MODEL_NAME = "default"
DEFAULT_MODEL_FILENAME = "uniadrs_default.safetensors"
DEFAULT_MODEL_ENV = "UNIADRS_DEFAULT_MODEL"


def default_model_path() -> Path:
    """Path of the shipped default model (it may not exist in a stripped install)."""
    override = os.environ.get(DEFAULT_MODEL_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "resources" / "models" / DEFAULT_MODEL_FILENAME


def has_default_model() -> bool:
    """Whether the shipped default model is present."""
    return default_model_path().is_file()


def resolve_model_path(model: Union[str, Path]) -> Path:
    """Turns ``"default"`` or a path into the model file's path.

    Raises:
        ModelFileError: If ``"default"`` is asked for and no default model is shipped.
    """
    if str(model) == DEFAULT_MODEL_NAME:
        path = default_model_path()
        if not path.is_file():
            raise ModelFileError(
                f"no default model is shipped at {path}; give a model file instead "
                "(train one with 'uniadrs train' or the Train UniADRS model algorithm)"
            )
        return path
    return Path(model)
