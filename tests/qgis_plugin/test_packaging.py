"""The plugin ZIP and the development link: contents, metadata, where the engine comes from."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Fields the official plugin repository requires in metadata.txt.
REQUIRED_FIELDS = (
    "name",
    "qgisMinimumVersion",
    "description",
    "about",
    "version",
    "author",
    "email",
    "repository",
)

WHERE_IS_THE_ENGINE = """
import sys
sys.path.insert(0, sys.argv[1])
from uniadrs.engine_import import ensure_engine_importable
location = ensure_engine_importable()
import uniadrs_engine
print(location.origin, uniadrs_engine.__file__)
"""


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location(
        "build_plugin_zip", REPO / "scripts" / "build_plugin_zip.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _engine_location(plugins: Path) -> list:
    completed = subprocess.run(
        [sys.executable, "-c", WHERE_IS_THE_ENGINE, str(plugins)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.split()


def test_zip_holds_plugin_metadata_icon_and_vendored_engine(build, tmp_path):
    zip_path = build.build_zip(tmp_path, include_default_model=False)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        metadata_text = archive.read("uniadrs/metadata.txt").decode("utf-8")
        archive.extractall(tmp_path / "plugins")
    for name in (
        "uniadrs/__init__.py",
        "uniadrs/provider.py",
        "uniadrs/algorithms/detect.py",
        "uniadrs/icon.svg",
        "uniadrs/models/detect_threshold_stats.model3",
        "uniadrs/_vendor/uniadrs_engine/__init__.py",
        "uniadrs/_vendor/uniadrs_engine/inference/detector.py",
        "uniadrs/_vendor/uniadrs_engine/postprocess/threshold.py",
    ):
        assert name in names, name
    assert all(name.startswith("uniadrs/") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read_string(metadata_text)
    general = metadata["general"]
    for field in REQUIRED_FIELDS:
        assert general.get(field, "").strip(), field
    assert general["hasProcessingProvider"] == "yes"
    assert f"uniadrs/{general['icon']}" in names
    assert general["version"] == build.engine_version()
    origin, engine_file = _engine_location(tmp_path / "plugins")
    assert origin == "vendored"
    assert Path(engine_file).is_relative_to(tmp_path / "plugins" / "uniadrs" / "_vendor")


FORGET_ON_UNLOAD = """
import sys
sys.path.insert(0, sys.argv[1])
from uniadrs.engine_import import ensure_engine_importable, forget_plugin_modules
ensure_engine_importable()
import uniadrs_engine.raster.reader
import uniadrs.dependencies
forget_plugin_modules("uniadrs")
left = sorted(name for name in sys.modules if name.split(".")[0] in ("uniadrs", "uniadrs_engine"))
print(left, any(entry.endswith("_vendor") for entry in sys.path))
"""


def test_an_unloaded_plugin_leaves_no_module_for_a_reload_to_reuse(build, tmp_path):
    zip_path = build.build_zip(tmp_path, include_default_model=False)
    assert zip_path.stat().st_mode & 0o777 == 0o666 & ~_umask()  # readable by QGIS users
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "plugins")
    completed = subprocess.run(
        [sys.executable, "-c", FORGET_ON_UNLOAD, str(tmp_path / "plugins")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.split() == ["[]", "False"]


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current


def test_default_model_is_vendored_where_the_engine_looks(build, tmp_path):
    files = dict((inside, source) for source, inside in build.plugin_files(True))
    if not build.DEFAULT_MODEL.is_file():
        pytest.skip("no default model in resources/models yet")
    assert files["_vendor/resources/models/uniadrs_default.safetensors"] == build.DEFAULT_MODEL


def test_dev_link_points_into_the_checkout(build, tmp_path):
    target = build.link_plugin(tmp_path / "profile")
    assert target == tmp_path / "profile" / "python" / "plugins" / "uniadrs"
    assert (target / "metadata.txt").resolve() == REPO / "metadata.txt"
    assert (target / "__init__.py").resolve() == REPO / "qgis_plugin" / "__init__.py"
    assert (target / "algorithms").resolve() == REPO / "qgis_plugin" / "algorithms"
    origin, engine_file = _engine_location(target.parent)
    assert origin == "checkout"
    assert Path(engine_file).resolve().is_relative_to(REPO)
    assert build.link_plugin(tmp_path / "profile") == target  # idempotent


def test_metadata_and_engine_versions_agree(build):
    assert build.metadata_version() == build.engine_version()


def test_metadata_about_names_every_algorithm():
    from qgis_plugin.algorithms import algorithm_classes

    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    about = metadata["general"]["about"]
    names = [algorithm.DISPLAY_NAME for algorithm in algorithm_classes()]
    assert len(names) >= 6
    assert [name for name in names if name not in about] == []


def test_unloading_keeps_an_engine_that_is_not_the_plugin_s_own(monkeypatch, tmp_path):
    import types

    from qgis_plugin import engine_import

    for name in ("fakeplug", "fakeplug.algorithms", "fakeplug.algorithms.rx", "fakeplugin"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    import uniadrs_engine as engine

    engine_import.forget_plugin_modules("fakeplug", plugin_folder=tmp_path)
    assert not any(name.startswith("fakeplug.") or name == "fakeplug" for name in sys.modules)
    assert "fakeplugin" in sys.modules  # another package whose name merely starts alike
    assert sys.modules["uniadrs_engine"] is engine  # from the checkout, not vendored: kept
