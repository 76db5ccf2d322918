"""The provider's settings (Options → Processing → Providers → UniADRS) and their defaults.

* **Default device**: ``auto`` (a CUDA GPU when PyTorch sees one, else the CPU), ``cpu``,
  ``cuda`` or ``cuda:N``. Used when an algorithm's Device parameter says "from settings".
* **Memory budget (MB)**: working memory of one block or tile batch, used when an
  algorithm's memory parameter is left empty.
* **Model folder**: where a bare model file name (``my_model.safetensors``) given to Detect
  is looked up, and where Train writes models by default. Empty: the folder
  ``uniadrs/models`` of the QGIS profile.

The settings live in QGIS's settings through Processing's ``ProcessingConfig``, so they also
apply under ``qgis_process`` (per profile).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from processing.core.ProcessingConfig import ProcessingConfig, Setting
from qgis.core import QgsApplication

#: Group the settings are listed under (the provider's name).
SETTINGS_GROUP = "UniADRS"

DEVICE_SETTING = "UNIADRS_DEVICE"
MEMORY_SETTING = "UNIADRS_MEMORY_MB"
MODEL_FOLDER_SETTING = "UNIADRS_MODEL_FOLDER"

DEFAULT_DEVICE = "auto"
DEFAULT_MEMORY_MB = 1024

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _check_device(value: str) -> None:
    if not _DEVICE_PATTERN.match(str(value).strip().lower()):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, not {value!r}")


def _check_memory(value: object) -> None:
    try:
        number = int(float(str(value)))
    except ValueError:
        raise ValueError(f"memory budget must be a number of MB, not {value!r}") from None
    if number < 64:
        raise ValueError("memory budget must be at least 64 MB")


def register_settings(icon_path: Optional[str] = None) -> None:
    """Adds the settings to Processing's configuration and reads their stored values."""
    if icon_path:
        from qgis.PyQt.QtGui import QIcon

        ProcessingConfig.settingIcons[SETTINGS_GROUP] = QIcon(icon_path)
    ProcessingConfig.addSetting(
        Setting(
            SETTINGS_GROUP,
            DEVICE_SETTING,
            "Default device (auto, cpu, cuda, cuda:N)",
            DEFAULT_DEVICE,
            valuetype=Setting.STRING,
            validator=_check_device,
        )
    )
    ProcessingConfig.addSetting(
        Setting(
            SETTINGS_GROUP,
            MEMORY_SETTING,
            "Memory budget per block (MB)",
            DEFAULT_MEMORY_MB,
            valuetype=Setting.INT,
            validator=_check_memory,
        )
    )
    ProcessingConfig.addSetting(
        Setting(
            SETTINGS_GROUP,
            MODEL_FOLDER_SETTING,
            "Model folder (bare model names are looked up here; Train writes here)",
            "",
            valuetype=Setting.FOLDER,
        )
    )
    ProcessingConfig.readSettings()


def unregister_settings() -> None:
    """Removes the settings from Processing's configuration."""
    for name in (DEVICE_SETTING, MEMORY_SETTING, MODEL_FOLDER_SETTING):
        if name in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(name)
    ProcessingConfig.settingIcons.pop(SETTINGS_GROUP, None)


def default_device() -> str:
    """The device from the settings (``auto`` when unset or invalid)."""
    value = str(ProcessingConfig.getSetting(DEVICE_SETTING) or DEFAULT_DEVICE).strip().lower()
    return value if _DEVICE_PATTERN.match(value) else DEFAULT_DEVICE


def default_memory_mb() -> int:
    """The memory budget from the settings, in MB."""
    value = ProcessingConfig.getSetting(MEMORY_SETTING)
    try:
        return max(64, int(float(value)))
    except (TypeError, ValueError):
        return DEFAULT_MEMORY_MB


def model_folder() -> Path:
    """The model folder from the settings, or ``<profile>/uniadrs/models``."""
    value = ProcessingConfig.getSetting(MODEL_FOLDER_SETTING)
    if value:
        return Path(str(value)).expanduser()
    return Path(QgsApplication.qgisSettingsDirPath()) / "uniadrs" / "models"
