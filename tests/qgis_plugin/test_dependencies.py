"""What the plugin says when a dependency is missing or broken (no QGIS needed)."""

from __future__ import annotations

import sys

import pytest

from qgis_plugin import dependencies


@pytest.fixture
def fake_modules(tmp_path, monkeypatch):
    (tmp_path / "broken_torchlike.py").write_text(
        "raise OSError('libtorch_cpu.so: cannot open shared object file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dependencies.PIP_REQUIREMENTS, "broken_torchlike", "torch")
    monkeypatch.setitem(dependencies.PIP_REQUIREMENTS, "absent_module_xyz", "absent-xyz")
    dependencies.forget_import_results()
    yield
    dependencies.forget_import_results()
    sys.modules.pop("broken_torchlike", None)


def test_all_present_gives_no_message():
    assert dependencies.missing_requirements_message(("numpy", "osgeo")) is None


def test_broken_module_names_the_package_and_the_error(fake_modules):
    message = dependencies.missing_requirements_message(("numpy", "broken_torchlike"))
    assert message is not None
    assert "UniADRS needs torch" in message
    assert "OSError: libtorch_cpu.so: cannot open shared object file" in message
    assert f"{dependencies.python_command()} -m pip install torch" in message


def test_several_missing_modules_are_installed_in_one_command(fake_modules):
    message = dependencies.missing_requirements_message(("absent_module_xyz", "broken_torchlike"))
    assert "-m pip install absent-xyz torch" in message
    assert "are not usable" in message


def test_version_pins_are_quoted():
    assert dependencies.install_hint(["numpy<2", "torch"]).endswith('install "numpy<2" torch')
