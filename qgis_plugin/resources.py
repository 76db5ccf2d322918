"""Paths of the plugin's files (icon, shipped .model3 models) in the ZIP and in a checkout.

In the plugin ZIP they sit in the plugin folder (``icon.svg``, ``models/*.model3``); in a
source checkout (development link, tests) they come from the repository's ``resources/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

PLUGIN_FOLDER = Path(__file__).parent
#: ``resources/`` of the checkout this file comes from (through a development symlink).
_CHECKOUT_RESOURCES = Path(__file__).resolve().parent.parent / "resources"

ICON_NAME = "icon.svg"


def icon_path() -> str:
    """The plugin's SVG icon (empty string when it cannot be found)."""
    for candidate in (PLUGIN_FOLDER / ICON_NAME, _CHECKOUT_RESOURCES / ICON_NAME):
        if candidate.is_file():
            return str(candidate)
    return ""


def shipped_model_files() -> List[Path]:
    """The Processing models (``.model3``) shipped with the plugin."""
    for folder in (PLUGIN_FOLDER / "models", _CHECKOUT_RESOURCES / "models"):
        models = sorted(folder.glob("*.model3"))
        if models:
            return models
    return []
