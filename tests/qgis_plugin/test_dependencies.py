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


def test_version_pins_are_quoted(monkeypatch):
    monkeypatch.setattr(dependencies, "externally_managed", lambda: False)
    hint = dependencies.install_hint(["numpy<2", "torch"])
    assert hint.endswith(
        'install "numpy<2" torch --extra-index-url ' + dependencies.TORCH_CPU_INDEX
    )


def test_a_system_python_gets_apt_packages_and_a_user_install(monkeypatch):
    monkeypatch.setattr(dependencies, "externally_managed", lambda: True)
    monkeypatch.setattr(dependencies, "python_command", lambda: "python3")
    hint = dependencies.install_hint(["torch", "safetensors", "scikit-learn"])
    assert hint == (
        "sudo apt install python3-sklearn then python3 -m pip install --user "
        "--break-system-packages torch safetensors --extra-index-url "
        "https://download.pytorch.org/whl/cpu"
    )
    assert dependencies.install_hint(["scipy"]) == "sudo apt install python3-scipy"


def test_a_virtual_environment_gets_a_plain_pip_command(monkeypatch):
    monkeypatch.setattr(dependencies, "externally_managed", lambda: False)
    monkeypatch.setattr(dependencies, "python_command", lambda: "python3")
    assert dependencies.install_hint(["scikit-learn"]) == "python3 -m pip install scikit-learn"


def test_the_presets_are_listed_without_torch(tmp_path):
    # Detect's preset list must not shrink to "auto" where torch is missing: saved batches
    # and models name presets by number, and the message to show is "install torch".
    import subprocess

    script = (
        "import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None\n"
        "from qgis_plugin.algorithms.detect import preset_choices\n"
        "print(','.join(name for name, _ in preset_choices()))\n"
    )
    import os

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # QGIS's processing
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=environment,
    )
    from uniadrs_engine.inference.presets import PRESETS

    assert done.stdout.strip() == ",".join(PRESETS)


@pytest.mark.parametrize(
    "modules, work",
    [
        (
            "RX_MODULES",
            "from uniadrs_engine.baselines.rx import rx_raster\n"
            "rx_raster(f'{folder}/hsi.tif', f'{folder}/rx.tif', mode='local', inner=3, outer=9)\n",
        ),
        (
            "SIMULATION_MODULES",
            "from uniadrs_engine.simulation.export import simulate_to_dir\n"
            "simulate_to_dir([f'{folder}/hsi.tif', f'{folder}/rgb.tif'], f'{folder}/sim', n=4,"
            " seed=1, size=32, spectral_share=0.5)\n",
        ),
        (
            "EVALUATION_MODULES",
            "from uniadrs_engine.metrics.evaluation import evaluate_rasters\n"
            "evaluate_rasters(f'{folder}/scores.tif', f'{folder}/mask.tif')\n",
        ),
    ],
)
def test_an_algorithm_runs_with_only_the_modules_it_declares(tmp_path, modules, work):
    """Every optional package an algorithm does not declare is blocked, and the engine work
    it does still runs (so it is never refused for a package it does not use)."""
    import os
    import subprocess

    import numpy as np

    from tests.raster_factory import write_raster

    rng = np.random.default_rng(0)
    write_raster(tmp_path / "hsi.tif", (rng.random((12, 48, 48)) * 1000).astype("float32"))
    write_raster(tmp_path / "rgb.tif", rng.integers(0, 255, (3, 48, 48)).astype("uint8"))
    write_raster(tmp_path / "scores.tif", rng.random((20, 20)).astype("float32"))
    write_raster(tmp_path / "mask.tif", (rng.random((20, 20)) > 0.9).astype("uint8"))
    optional = {"torch", "safetensors", "sklearn", "matplotlib", "PIL", "yaml", "scipy"}
    blocked = sorted(optional - set(getattr(dependencies, modules)))
    assert blocked, "nothing to block"
    script = (
        f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
        f"folder = {str(tmp_path)!r}\n{work}"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environment
    )
    assert done.returncode == 0, done.stderr[-2000:]
