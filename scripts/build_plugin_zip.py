#!/usr/bin/env python3
"""Builds the QGIS plugin ZIP (installable with "Install from ZIP"), or links it for development.

The plugin folder inside QGIS is ``uniadrs/``::

    uniadrs/
      __init__.py, plugin.py, provider.py, ...   <- qgis_plugin/
      algorithms/                                <- qgis_plugin/algorithms/
      metadata.txt, icon.svg, icon.png, LICENSE  <- top level / resources/
      models/*.model3                            <- resources/models/ (Processing models)
      _vendor/uniadrs_engine/                    <- the engine, vendored
      _vendor/resources/models/uniadrs_default.safetensors   <- the default model, if built

Usage:
    python scripts/build_plugin_zip.py                    # -> dist/uniadrs-<version>.zip
    python scripts/build_plugin_zip.py --output /tmp/out  # another folder
    python scripts/build_plugin_zip.py --link ~/.local/share/QGIS/QGIS3/profiles/default
        # development: <profile>/python/plugins/uniadrs made of symlinks into this checkout
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "uniadrs"
PLUGIN_SOURCE = REPO / "qgis_plugin"
ENGINE_SOURCE = REPO / "uniadrs_engine"
RESOURCES = REPO / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "uniadrs_default.safetensors"
VENDOR = "_vendor"
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def engine_version() -> str:
    """``__version__`` of the engine, read without importing it."""
    text = (ENGINE_SOURCE / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if match is None:
        raise SystemExit("uniadrs_engine/__init__.py has no __version__")
    return match.group(1)


def metadata_version(metadata_path: Path = REPO / "metadata.txt") -> str:
    """The ``version`` field of ``metadata.txt``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(metadata_path, encoding="utf-8")
    return parser.get("general", "version")


def _tree(source: Path) -> Iterator[Path]:
    """Files under ``source``, without caches and compiled files."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in SKIPPED_NAMES for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in SKIPPED_SUFFIXES:
            yield path


def plugin_files(include_default_model: bool = True) -> List[Tuple[Path, str]]:
    """``(source file, path inside the plugin folder)`` of everything the ZIP holds."""
    files = [(path, str(path.relative_to(PLUGIN_SOURCE))) for path in _tree(PLUGIN_SOURCE)]
    files.append((REPO / "metadata.txt", "metadata.txt"))
    files.append((RESOURCES / "icon.svg", "icon.svg"))
    for png in sorted(RESOURCES.glob("*.png")):
        files.append((png, png.name))
    license_file = REPO / "LICENSE"
    if license_file.is_file():
        files.append((license_file, "LICENSE"))
    else:
        print(
            "warning: no LICENSE file at the repository root; the official plugin "
            "repository requires one in the ZIP",
            file=sys.stderr,
        )
    for model in sorted((RESOURCES / "models").glob("*.model3")):
        files.append((model, f"models/{model.name}"))
    for path in _tree(ENGINE_SOURCE):
        files.append((path, f"{VENDOR}/uniadrs_engine/{path.relative_to(ENGINE_SOURCE)}"))
    if include_default_model and DEFAULT_MODEL.is_file():
        files.append((DEFAULT_MODEL, f"{VENDOR}/resources/models/{DEFAULT_MODEL.name}"))
    return files


def check_versions() -> str:
    """The version, after checking that metadata.txt and the engine agree."""
    version = engine_version()
    if metadata_version() != version:
        raise SystemExit(
            f"metadata.txt says version {metadata_version()}, the engine {version}: align them"
        )
    return version


def build_zip(output_folder: Path, include_default_model: bool = True) -> Path:
    """Writes ``<output_folder>/uniadrs-<version>.zip`` and returns its path."""
    version = check_versions()
    output_folder.mkdir(parents=True, exist_ok=True)
    zip_path = output_folder / f"{PLUGIN_NAME}-{version}.zip"
    handle, temporary = tempfile.mkstemp(prefix=f".{zip_path.name}.", dir=output_folder)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for source, inside in plugin_files(include_default_model):
                archive.write(source, f"{PLUGIN_NAME}/{inside}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp made it private (0600)
        os.replace(temporary, zip_path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return zip_path


def link_plugin(profile_folder: Path) -> Path:
    """Makes ``<profile>/python/plugins/uniadrs`` a folder of symlinks into this checkout.

    Edits in the checkout take effect at the next plugin reload; new top-level files of
    ``qgis_plugin/`` need this command again. The engine is found from the checkout (see
    ``qgis_plugin/engine_import.py``), so nothing is vendored.
    """
    target = profile_folder / "python" / "plugins" / PLUGIN_NAME
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        if any(not entry.is_symlink() for entry in target.iterdir()):
            raise SystemExit(f"{target} holds real files (an installed copy?): remove it first")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    links = [
        (entry, entry.name)
        for entry in sorted(PLUGIN_SOURCE.iterdir())
        if entry.name not in SKIPPED_NAMES
    ]
    links += [
        (REPO / "metadata.txt", "metadata.txt"),
        (RESOURCES / "icon.svg", "icon.svg"),
        (RESOURCES / "models", "models"),
    ]
    links += [(png, png.name) for png in sorted(RESOURCES.glob("*.png"))]
    for source, name in links:
        (target / name).symlink_to(source)
    return target


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--output", type=Path, default=REPO / "dist", help="folder of the ZIP (default: dist/)"
    )
    parser.add_argument(
        "--without-default-model",
        action="store_true",
        help="leave the default model out of the ZIP",
    )
    parser.add_argument(
        "--link",
        type=Path,
        metavar="PROFILE_FOLDER",
        help="link the plugin into this QGIS profile instead of building a ZIP",
    )
    args = parser.parse_args(argv)
    if args.link is not None:
        print(link_plugin(args.link.expanduser()))
        return 0
    print(build_zip(args.output, include_default_model=not args.without_default_model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
