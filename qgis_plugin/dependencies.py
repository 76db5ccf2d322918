"""Checks that the Python packages an algorithm needs can be imported, and says what to install.

QGIS ships its own Python; PyTorch and the other engine dependencies may be missing from it,
or installed but broken (a CUDA/DLL mismatch raises ``OSError`` on import). The provider must
load anyway, so nothing heavy is imported at start-up: each algorithm lists the modules it
needs, and :func:`missing_requirements_message` tries them on first use (results are cached)
and returns one message naming the pip packages to install, with the command for this
Python, or None when all is well.

Example:
    >>> missing_requirements_message(("numpy",)) is None
    True
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

#: Import name -> pip requirement, for every third-party module the engine imports.
PIP_REQUIREMENTS: Dict[str, str] = {
    "numpy": "numpy<2",
    "osgeo": "GDAL",
    "torch": "torch",
    "safetensors": "safetensors",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "yaml": "pyyaml",
    "matplotlib": "matplotlib",
    "PIL": "pillow",
    "uniadrs_engine": "uniadrs-engine",
}

#: Debian's packages of the pip requirements it has (QGIS's Python is the system's there).
DEBIAN_PACKAGES: Dict[str, str] = {
    "numpy<2": "python3-numpy",
    "GDAL": "python3-gdal",
    "scikit-learn": "python3-sklearn",
    "scipy": "python3-scipy",
    "pyyaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "pillow": "python3-pil",
}

#: PyTorch's index of CPU-only wheels (a few hundred MB, against gigabytes with CUDA).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

#: Modules each kind of work needs (besides QGIS, GDAL and numpy, which QGIS always has).
DETECTION_MODULES = ("uniadrs_engine", "torch", "safetensors", "scipy")
RX_MODULES = ("uniadrs_engine",)
THRESHOLD_MODULES = ("uniadrs_engine",)
EVALUATION_MODULES = ("uniadrs_engine", "scipy", "sklearn")
#: What the evaluation's HTML report needs on top (its ROC curve).
REPORT_MODULES = ("matplotlib",)
SIMULATION_MODULES = ("uniadrs_engine", "scipy", "PIL", "matplotlib")
TRAINING_MODULES = ("uniadrs_engine", "torch", "safetensors", "scipy", "PIL", "yaml", "sklearn")

_import_results: Dict[str, Optional[str]] = {}


@dataclass(frozen=True)
class MissingModule:
    """A module that could not be imported.

    Attributes:
        module: Import name.
        requirement: What to ``pip install``.
        reason: The import error, in one line.
    """

    module: str
    requirement: str
    reason: str


def _import_error(module: str) -> Optional[str]:
    """Imports ``module`` once; returns None on success or the error in one line."""
    if module not in _import_results:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - a broken install raises anything
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            _import_results[module] = f"{type(error).__name__}: {first_line}"
        else:
            _import_results[module] = None
    return _import_results[module]


def missing_modules(modules: Sequence[str]) -> List[MissingModule]:
    """The modules of ``modules`` that cannot be imported, with their pip requirement."""
    missing = []
    for module in modules:
        reason = _import_error(module)
        if reason is not None:
            missing.append(MissingModule(module, PIP_REQUIREMENTS.get(module, module), reason))
    return missing


def python_command() -> str:
    """The command that runs QGIS's Python (``sys.executable`` is QGIS itself on some systems)."""
    executable = Path(sys.executable)
    if executable.name.lower().startswith("python"):
        return str(executable)
    if os.name == "nt":
        return "python"  # in the OSGeo4W Shell
    return "python3"


def externally_managed() -> bool:
    """True when QGIS's Python is a system Python that pip may not change (PEP 668).

    Debian 12 and Ubuntu 23.04 on mark theirs so; ``pip install`` then fails with
    "externally-managed-environment" unless told otherwise. A virtual environment is
    never so.
    """
    if sys.prefix != sys.base_prefix:
        return False
    return (Path(sysconfig.get_paths()["stdlib"]) / "EXTERNALLY-MANAGED").is_file()


def install_hint(requirements: Sequence[str]) -> str:
    """The commands that install ``requirements`` into QGIS's Python.

    On a system Python that pip may not change (:func:`externally_managed`), what the
    system packages (``apt install python3-sklearn``), and the rest with
    ``pip install --user --break-system-packages``, which leaves the system's files alone.
    PyTorch comes from its index of CPU-only wheels.
    """
    managed = externally_managed()
    system = [DEBIAN_PACKAGES[item] for item in requirements if managed and item in DEBIAN_PACKAGES]
    rest = [item for item in requirements if not (managed and item in DEBIAN_PACKAGES)]
    commands = [f"sudo apt install {' '.join(system)}"] if system else []
    if rest:
        quoted = " ".join(f'"{item}"' if any(c in item for c in "<>=") else item for item in rest)
        flags = " --user --break-system-packages" if managed else ""
        index = f" --extra-index-url {TORCH_CPU_INDEX}" if "torch" in rest else ""
        commands.append(f"{python_command()} -m pip install{flags} {quoted}{index}")
    return " then ".join(commands)


def missing_requirements_message(modules: Sequence[str]) -> Optional[str]:
    """One message saying what to install so that ``modules`` import, or None if they do."""
    missing = missing_modules(modules)
    if not missing:
        return None
    if any(item.module == "uniadrs_engine" for item in missing):
        engine = next(item for item in missing if item.module == "uniadrs_engine")
        if not engine.reason.startswith("ModuleNotFoundError: No module named 'uniadrs_engine'"):
            # the engine itself is there but one of its imports failed: name that one
            return (
                f"The UniADRS engine cannot be loaded ({engine.reason}). "
                f"Install the missing package into QGIS's Python with: "
                f"{install_hint(_requirements_from_reason(engine.reason))} "
                "and restart QGIS."
            )
    requirements = sorted({item.requirement for item in missing})
    details = "; ".join(f"{item.module}: {item.reason}" for item in missing)
    verb = "is" if len(missing) == 1 else "are"
    names = ", ".join(requirements)
    return (
        f"UniADRS needs {names}, which {verb} not usable in QGIS's Python ({details}). "
        f"Install with: {install_hint(requirements)} "
        "(on Windows, in the OSGeo4W Shell), then restart QGIS."
    )


def _requirements_from_reason(reason: str) -> List[str]:
    """Guesses the pip package from an import error such as "No module named 'yaml'"."""
    marker = "No module named '"
    if marker in reason:
        module = reason.split(marker, 1)[1].split("'", 1)[0].split(".")[0]
        return [PIP_REQUIREMENTS.get(module, module)]
    return ["uniadrs-engine"]


def forget_import_results() -> None:
    """Clears the cache (after the user installed something, or in tests)."""
    _import_results.clear()
