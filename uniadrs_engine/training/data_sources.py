"""Provenance of training backgrounds: which sources, under which licences.

Background folders may carry a ``manifest.json`` (as ``../shared/backgrounds`` does) listing
``files`` (with ``path`` and ``source_repo``) and ``sources`` (with ``license``). The model
card records, per source, its licence and how many files were used; files without a manifest
are recorded as the user's own data with an unknown licence.

Example:
    >>> summarise_sources([])
    []
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

MANIFEST_NAME = "manifest.json"
UNKNOWN_LICENSE = "unknown (user data without a manifest)"


@lru_cache(maxsize=32)
def _read_manifest(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "files" in data else None


def _find_entry(file_path: Path) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    for folder in file_path.resolve().parents:
        manifest = _read_manifest(folder / MANIFEST_NAME)
        if manifest is None:
            continue
        relative = file_path.resolve().relative_to(folder).as_posix()
        for entry in manifest.get("files", []):
            if entry.get("path") == relative:
                return entry, manifest
        return None, manifest
    return None, None


def summarise_sources(paths: Sequence[Path]) -> List[Dict[str, Any]]:
    """One record per source: ``name``, ``license``, ``files`` (count) and ``sets``."""
    records: Dict[str, Dict[str, Any]] = {}
    for path in paths:
        entry, manifest = _find_entry(Path(path))
        if entry is None or manifest is None:
            name, license_text, data_set = "user data", UNKNOWN_LICENSE, Path(path).parent.name
        else:
            name = str(entry.get("source_repo", "unknown source"))
            source = manifest.get("sources", {}).get(name, {})
            license_text = str(source.get("license", entry.get("license", "unknown")))
            data_set = str(entry.get("set") or entry.get("scene") or Path(path).stem)
        record = records.setdefault(
            name, {"name": name, "license": license_text, "files": 0, "sets": []}
        )
        record["files"] += 1
        if data_set not in record["sets"]:
            record["sets"].append(data_set)
    return sorted(records.values(), key=lambda record: record["name"])
