"""The Detect dialog opens offscreen, runs, and its styled output reaches the project."""

from __future__ import annotations

from pathlib import Path

import processing
import pytest
from qgis.core import QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer
from qgis.gui import QgsBrowserGuiModel

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def real_browser_model(qgis_iface, monkeypatch):
    """pytest-qgis's stub iface returns a MagicMock browser model, which breaks the dialog."""
    model = QgsBrowserGuiModel()
    model.initialize()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: model, raising=False)
    yield model


def test_detect_dialog_runs_and_loads_a_styled_layer(
    provider, real_browser_model, qtbot, scene, tiny_model, tmp_path
):
    output = tmp_path / "dialog_scores.tif"
    dialog = processing.createAlgorithmDialog(
        "uniadrs:detectanomalies",
        {"INPUT": str(scene), "MODEL": str(tiny_model), "DEVICE": 2, "OUTPUT": str(output)},
    )
    assert dialog is not None
    dialog.show()
    dialog.resize(1100, 800)
    qtbot.wait(50)
    ARTIFACTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(ARTIFACTS / "detect_dialog_parameters.png"))
    with qtbot.waitSignal(dialog.algorithmFinished, timeout=120_000) as finished:
        dialog.runAlgorithm()
    successful, results = finished.args
    assert successful, dialog.log() if hasattr(dialog, "log") else results
    assert Path(results["OUTPUT"]) == output and output.exists()
    qtbot.waitUntil(
        lambda: any(
            Path(layer.source()) == output for layer in QgsProject.instance().mapLayers().values()
        ),
        timeout=10_000,
    )
    layer = next(
        layer
        for layer in QgsProject.instance().mapLayers().values()
        if Path(layer.source()) == output
    )
    assert isinstance(layer, QgsRasterLayer)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer)
    # The heat ramp spans the top 10 % of the scores (from about their 90th percentile).
    assert results["SCORE_MIN"] < renderer.classificationMin() < results["SCORE_MAX"]
    assert renderer.classificationMax() == pytest.approx(results["SCORE_MAX"])
    assert renderer.classificationMax() == pytest.approx(results["SCORE_MAX"])
    assert dialog.grab().save(str(ARTIFACTS / "detect_dialog_log.png"))
    QgsProject.instance().removeMapLayer(layer.id())
    dialog.close()
