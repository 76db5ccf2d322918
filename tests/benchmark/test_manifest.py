"""Manifest reading and scene filters."""

from __future__ import annotations

import json

import pytest

from uniadrs_engine.benchmark.manifest import load_manifest
from uniadrs_engine.errors import InputError


def test_scenes_resolve_relative_paths_and_filter(tiny_manifest):
    scenes = load_manifest(tiny_manifest)
    assert [scene.key for scene in scenes] == ["hsi/a", "hsi/b", "ir/c"]
    assert scenes[0].image_path == (tiny_manifest.parent / "hsi/a/image.tif").resolve()
    assert scenes[0].rx_auc is not None
    assert [s.key for s in load_manifest(tiny_manifest, "hsi/*")] == ["hsi/a", "hsi/b"]
    assert [s.key for s in load_manifest(tiny_manifest, "c,hsi/b")] == ["hsi/b", "ir/c"]
    with pytest.raises(InputError, match="no scene"):
        load_manifest(tiny_manifest, "sar/*")


def test_bad_manifests(tmp_path, tiny_manifest):
    with pytest.raises(InputError, match="not found"):
        load_manifest(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        load_manifest(broken)
    content = json.loads(tiny_manifest.read_text())
    del content["scenes"][1]["mask"]
    lacking = tiny_manifest.parent / "lacking.json"
    lacking.write_text(json.dumps(content))
    with pytest.raises(InputError, match="lacks mask"):
        load_manifest(lacking)
    content = json.loads(tiny_manifest.read_text())
    content["scenes"][0]["image"] = "hsi/a/nothing.tif"
    missing_file = tiny_manifest.parent / "missing_file.json"
    missing_file.write_text(json.dumps(content))
    with pytest.raises(InputError, match="not found"):
        load_manifest(missing_file)
