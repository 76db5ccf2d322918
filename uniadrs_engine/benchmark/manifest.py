"""Reading a benchmark manifest: scenes (image, mask, modality) and their reference RX AUC.

A manifest is a JSON object with a ``scenes`` list; each scene has at least ``modality``,
``scene``, ``image`` and ``mask`` (paths relative to the manifest's folder) and optionally
``rx_auc`` (the AUC of global RX on it), as in ``shared/benchmarks/manifest.json``.

Example:
    >>> scenes = load_manifest("benchmarks/manifest.json", scene_filter="sar/*")  # doctest: +SKIP
    >>> scenes[0].image_path  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import open_raster

PathLike = Union[str, Path]


@dataclass(frozen=True)
class BenchmarkScene:
    """One scene of a manifest.

    Attributes:
        modality: ``hsi``, ``ir``, ``sar``, ``visible`` (or any other label).
        name: The scene's name.
        image_path: Absolute path of the image.
        mask_path: Absolute path of the anomaly mask.
        rx_auc: The manifest's global-RX AUC, or None.
    """

    modality: str
    name: str
    image_path: Path
    mask_path: Path
    rx_auc: Optional[float] = None

    @property
    def key(self) -> str:
        """``modality/name``, what ``--scenes`` patterns match."""
        return f"{self.modality}/{self.name}"


def matches(scene: BenchmarkScene, pattern: str) -> bool:
    """Tells whether a scene matches a glob on ``modality/name`` or on ``name`` alone.

    Several patterns may be given separated by commas (``hsi/*,sar/hrsid-P0001*``).
    """
    for single in (part.strip() for part in pattern.split(",")):
        if single and (
            fnmatch.fnmatchcase(scene.key, single) or fnmatch.fnmatchcase(scene.name, single)
        ):
            return True
    return False


def _scene(entry: object, path: Path, index: int) -> BenchmarkScene:
    """One entry of a manifest's ``scenes`` list, its fields checked."""
    where = f"{path}: scene #{index + 1}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} is not a mapping of fields")
    missing = [key for key in ("modality", "scene", "image", "mask") if key not in entry]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    for key in ("image", "mask"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise InputError(f"{where}: '{key}' must be a file path, got {entry[key]!r}")
    for key in ("modality", "scene"):  # they name the scene's score files
        text = str(entry[key])
        if not text.strip() or any(separator in text for separator in "/\\") or text in (".", ".."):
            raise InputError(
                f"{where}: '{key}' {entry[key]!r} must be a name, not a path (it names the "
                "scene's score files)"
            )
    rx_auc = entry.get("rx_auc")
    if rx_auc is not None and (isinstance(rx_auc, bool) or not isinstance(rx_auc, (int, float))):
        raise InputError(f"{where}: 'rx_auc' must be a number or null, got {rx_auc!r}")
    return BenchmarkScene(
        modality=str(entry["modality"]),
        name=str(entry["scene"]),
        image_path=(path.parent / entry["image"]).resolve(),
        mask_path=(path.parent / entry["mask"]).resolve(),
        rx_auc=None if rx_auc is None else float(rx_auc),
    )


def load_manifest(path: PathLike, scene_filter: Optional[str] = None) -> List[BenchmarkScene]:
    """Reads the scenes of a manifest, optionally only those matching a glob.

    Args:
        path: The manifest JSON.
        scene_filter: Glob(s) on ``modality/name`` or ``name``; None keeps every scene.

    Returns:
        The scenes in manifest order.

    Raises:
        InputError: If the file is missing or malformed, a scene lacks a field or a file,
            or no scene matches the filter.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not a readable JSON manifest: {error}") from None
    entries = content.get("scenes") if isinstance(content, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path} has no 'scenes' list")
    scenes = []
    keys = set()
    for index, entry in enumerate(entries):
        scene = _scene(entry, path, index)
        if scene.key in keys:
            raise InputError(f"{path}: scene #{index + 1} repeats the scene {scene.key}")
        keys.add(scene.key)
        if scene_filter is None or matches(scene, scene_filter):
            scenes.append(scene)
    if not scenes:
        raise InputError(f"no scene of {path} matches {scene_filter!r}")
    for scene in scenes:
        for file_path in (scene.image_path, scene.mask_path):
            if not file_path.is_file():
                raise InputError(f"{path}: file of scene {scene.key} not found: {file_path}")
        _check_scene_grid(scene, path)
    return scenes


def _check_scene_grid(scene: BenchmarkScene, path: Path) -> None:
    """Refuses a scene whose mask is not on its image's grid, before any detector runs."""
    from uniadrs_engine.raster.same_grid import check_same_grid

    try:
        with (
            open_raster(scene.image_path, bands=[1]) as image,
            open_raster(scene.mask_path, bands=[1], stored=True) as mask,
        ):
            check_same_grid(image, mask)
    except InputError as error:
        raise InputError(f"{path}: scene {scene.key}: {error}") from None
