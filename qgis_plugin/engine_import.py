"""Where the plugin finds the ``uniadrs_engine`` package: the one place that touches sys.path.

Three layouts are supported, tried in this order:

1. **Installed plugin** (the ZIP built by ``scripts/build_plugin_zip.py``): the engine is
   vendored in ``<plugin>/_vendor/uniadrs_engine``; ``_vendor`` goes first on ``sys.path`` so
   the plugin always runs the engine it was built with.
2. **Development link** (``scripts/link_plugin_dev.sh``) or a test run from the repository:
   the plugin's files resolve (through symlinks) into ``<checkout>/qgis_plugin``; the checkout,
   which holds ``uniadrs_engine/``, is put on ``sys.path`` unless the engine is already
   importable from there.
3. **Installed package**: ``pip install uniadrs-engine`` into QGIS's Python.

Nothing here imports the engine itself (so neither torch nor anything heavy is loaded when
QGIS starts); :func:`ensure_engine_importable` only makes the import possible.

Example:
    >>> location = ensure_engine_importable()  # doctest: +SKIP
    >>> location.origin  # doctest: +SKIP
    'checkout'
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

#: Folder of the plugin that holds the vendored engine in the ZIP.
VENDOR_FOLDER = "_vendor"

#: Name of the engine package.
ENGINE_PACKAGE = "uniadrs_engine"


@dataclass(frozen=True)
class EngineLocation:
    """Where ``uniadrs_engine`` is imported from.

    Attributes:
        origin: ``"vendored"``, ``"checkout"``, ``"installed"`` or ``"missing"``.
        folder: The folder that holds the ``uniadrs_engine`` package, or None when missing.
    """

    origin: str
    folder: Optional[Path]


def _holds_engine(folder: Path) -> bool:
    return (folder / ENGINE_PACKAGE / "__init__.py").is_file()


def _put_first_on_path(folder: Path) -> None:
    entry = str(folder)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)


def _imported_from() -> Optional[Path]:
    """The folder holding the engine package Python would import now, if any."""
    module = sys.modules.get(ENGINE_PACKAGE)
    origin = getattr(module, "__file__", None)
    if origin is None:
        spec = importlib.util.find_spec(ENGINE_PACKAGE)
        origin = None if spec is None else spec.origin
    return None if origin is None else Path(origin).resolve().parent.parent


def forget_plugin_modules(package: str, plugin_folder: Optional[Path] = None) -> None:
    """Drops the plugin's modules, and a vendored engine's, from ``sys.modules``.

    QGIS's ``unloadPlugin`` forgets the modules the plugin imported with ``import``
    statements, not those ``importlib`` loaded (the algorithms) nor the engine, so a
    reloaded or upgraded plugin ran the old code, and kept its old answer to "is torch
    there?". The vendored engine's folder also leaves ``sys.path``; an engine installed
    in QGIS's Python is left as it is.

    Args:
        package: The plugin's package name (``__package__`` of its modules).
        plugin_folder: The plugin's folder (for tests); by default this file's folder.
    """
    vendor = (plugin_folder or Path(__file__).parent) / VENDOR_FOLDER
    names = [package]
    if _holds_engine(vendor) and _imported_from() == vendor.resolve():
        names.append(ENGINE_PACKAGE)
        if str(vendor) in sys.path:
            sys.path.remove(str(vendor))
    for name in list(sys.modules):
        if any(name == root or name.startswith(root + ".") for root in names):
            del sys.modules[name]


def ensure_engine_importable(plugin_folder: Optional[Path] = None) -> EngineLocation:
    """Makes ``import uniadrs_engine`` work and says from where.

    Args:
        plugin_folder: The plugin's folder (for tests); by default this file's folder.

    Returns:
        The engine's location (``origin == "missing"`` when it cannot be found).
    """
    if plugin_folder is None:
        folder = Path(__file__).parent
        # through a development symlink, this file resolves into <checkout>/qgis_plugin
        checkout = Path(__file__).resolve().parent.parent
    else:
        folder = plugin_folder
        checkout = plugin_folder.resolve().parent
    for origin, candidate in (("vendored", folder / VENDOR_FOLDER), ("checkout", checkout)):
        if not _holds_engine(candidate):
            continue
        if ENGINE_PACKAGE not in sys.modules and _imported_from() != candidate.resolve():
            _put_first_on_path(candidate)
        current = _imported_from()
        return EngineLocation(origin if current == candidate.resolve() else "installed", current)
    current = _imported_from()
    if current is not None:
        return EngineLocation("installed", current)
    return EngineLocation("missing", None)
