"""``qgis_process`` runs of the plugin built as a ZIP: list, help, Detect, the .model3, no torch.

Each test runs ``qgis_process.bin`` in a subprocess with its own profile
(``QGIS_CUSTOM_CONFIG_PATH``), the plugin folder extracted from the ZIP on
``QGIS_PLUGINPATH``, the venv's ``bin`` first on ``PATH`` (qgis_process embeds the first
``python3`` there) and ``QT_QPA_PLATFORM=offscreen``. With ``--json`` only stdout is parsed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest

from tests.qgis_plugin.conftest import read_band
from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
from uniadrs_engine.inference.presets import PRESETS

REPO = Path(__file__).resolve().parents[2]
QGIS_PROCESS = shutil.which("qgis_process.bin")
MODEL_FILE = REPO / "resources" / "models" / "detect_threshold_stats.model3"

pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin not installed")

BLOCK_TORCH = '''
import sys


class _BlockTorch:
    """Makes "import torch" fail as if PyTorch were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return None


sys.meta_path.insert(0, _BlockTorch())
'''


def _build_script():
    spec = importlib.util.spec_from_file_location(
        "build_plugin_zip", REPO / "scripts" / "build_plugin_zip.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


class QgisProcess:
    """Runs ``qgis_process.bin`` with a private profile and the plugin from the ZIP."""

    def __init__(self, plugins: Path, profile: Path, extra_env: Optional[Dict[str, str]] = None):
        self.env = dict(os.environ)
        self.env.pop("PYTHONPATH", None)
        self.env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            QT_QPA_PLATFORM="offscreen",
            QGIS_PLUGINPATH=str(plugins),
            QGIS_CUSTOM_CONFIG_PATH=str(profile),
            **(extra_env or {}),
        )

    def __call__(self, *arguments: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [QGIS_PROCESS, *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_json(self, algorithm: str, parameters: Dict[str, object]) -> dict:
        arguments: List[str] = [f"{name}={value}" for name, value in parameters.items()]
        completed = self("run", algorithm, "--json", "--", *arguments)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def plugin_folder(tmp_path_factory) -> Path:
    """The plugin ZIP built by scripts/build_plugin_zip.py, extracted."""
    build = _build_script()
    zip_path = build.build_zip(tmp_path_factory.mktemp("zip"), include_default_model=False)
    plugins = tmp_path_factory.mktemp("plugins")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(plugins)
    assert (plugins / "uniadrs" / "_vendor" / "uniadrs_engine" / "__init__.py").is_file()
    return plugins


@pytest.fixture(scope="module")
def profile(plugin_folder, tmp_path_factory) -> Path:
    """A private QGIS profile with the plugin enabled."""
    folder = tmp_path_factory.mktemp("profile")
    enabled = QgisProcess(plugin_folder, folder)("plugins", "enable", "uniadrs")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return folder


@pytest.fixture(scope="module")
def qgis_process(plugin_folder, profile) -> QgisProcess:
    return QgisProcess(plugin_folder, profile)


def test_help_lists_the_parameters(qgis_process):
    completed = qgis_process("help", "uniadrs:detectanomalies")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "Detect anomalies (UniADRS)" in completed.stdout
    for text in ("INPUT", "MODEL", "PRESET", "OUTPUT", "Needs PyTorch", *PRESETS):
        assert text in completed.stdout


def test_detect_runs_headless_like_the_engine(qgis_process, scene, tiny_model, tmp_path):
    output = tmp_path / "scores.tif"
    result = qgis_process.run_json(
        "uniadrs:detectanomalies",
        {"INPUT": scene, "MODEL": tiny_model, "DEVICE": 2, "OUTPUT": output},
    )
    assert Path(result["results"]["OUTPUT"]) == output
    assert result["results"]["DEVICE_USED"] == "cpu"
    assert any("plugin-test-lite8" in line for line in result["log"]["info"])
    engine = detect_raster(
        scene, tmp_path / "engine.tif", DetectionOptions(model=str(tiny_model), device="cpu")
    )
    # Another process may use another number of threads: float sums differ in the last bits,
    # and the rank fusion of two scales (a 5-band scene is hyperspectral: scales 1 and 2) can
    # turn such a difference into a swap of neighbouring ranks, i.e. about 1/n of a pixel's
    # fused score (n = 1,920 pixels here).
    np.testing.assert_allclose(read_band(output), read_band(engine.output_path), atol=1e-3)


def test_shipped_model3_runs_headless(qgis_process, scene, tiny_model, tmp_path):
    outputs = {
        "detect:anomaly_scores": tmp_path / "scores.tif",
        "threshold:anomaly_mask": tmp_path / "mask.tif",
        "threshold:anomaly_polygons": tmp_path / "objects.gpkg",
        "statistics:mask_statistics": tmp_path / "stats.html",
    }
    result = qgis_process.run_json(
        str(MODEL_FILE),
        {"input_raster": scene, "model_file": tiny_model, "top_percent": 2, **outputs},
    )
    for name, path in outputs.items():
        assert Path(result["results"][name]) == path and path.exists(), name
    mask = read_band(outputs["threshold:anomaly_mask"])
    assert 0 < (mask == 1).sum() <= 0.05 * mask.size


def test_provider_loads_without_torch(plugin_folder, profile, scene, tmp_path, tmp_path_factory):
    blocker = tmp_path_factory.mktemp("no_torch")
    (blocker / "sitecustomize.py").write_text(BLOCK_TORCH, encoding="utf-8")
    runner = QgisProcess(plugin_folder, profile, {"PYTHONPATH": str(blocker)})
    detect = runner(
        "run", "uniadrs:detectanomalies", "--", f"INPUT={scene}", f"OUTPUT={tmp_path / 's.tif'}"
    )
    assert detect.returncode != 0
    message = detect.stdout + detect.stderr
    assert "UniADRS needs torch" in message and "-m pip install" in message, message[-3000:]
    assert not (tmp_path / "s.tif").exists()
    threshold = runner(  # the provider loaded; algorithms that do not need torch still run
        "run",
        "uniadrs:threshold",
        "--",
        f"INPUT={scene}",
        "TOP_PERCENT=5",
        f"OUTPUT_MASK={tmp_path / 'mask.tif'}",
    )
    assert threshold.returncode == 0, threshold.stdout[-2000:] + threshold.stderr[-2000:]
    assert (tmp_path / "mask.tif").exists()
    assert "Traceback" not in threshold.stderr
