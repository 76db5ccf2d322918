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


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda scenes: scenes[0].update(rx_auc="n/a"), "'rx_auc' must be a number or null"),
        (lambda scenes: scenes[0].update(image=5), "'image' must be a file path, got 5"),
        (lambda scenes: scenes.append(dict(scenes[0])), "repeats the scene"),
        (lambda scenes: scenes.append("a scene"), "is not a mapping of fields"),
        (lambda scenes: scenes[0].update(scene="sub/dir"), "'scene' 'sub/dir' must be a name"),
        (lambda scenes: scenes[0].update(modality=".."), "'modality' '..' must be a name"),
    ],
)
def test_a_manifest_entry_of_the_wrong_kind_is_named(tiny_manifest, change, message):
    content = json.loads(tiny_manifest.read_text())
    change(content["scenes"])
    edited = tiny_manifest.parent / "edited.json"
    edited.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message):
        load_manifest(edited)
