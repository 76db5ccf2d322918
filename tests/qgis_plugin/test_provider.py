from __future__ import annotations

from pathlib import Path

import processing
from processing.core.ProcessingConfig import ProcessingConfig
from qgis.core import QgsApplication, QgsProcessingFeedback

from qgis_plugin import settings
from qgis_plugin.engine_import import ensure_engine_importable
from qgis_plugin.resources import icon_path, shipped_model_files
from uniadrs_engine.inference.presets import PRESETS

EXPECTED = {
    "uniadrs:detectanomalies": "Detect anomalies (UniADRS)",
    "uniadrs:rx": "RX anomaly detector",
    "uniadrs:threshold": "Threshold anomaly scores",
    "uniadrs:evaluate": "Evaluate anomaly map",
    "uniadrs:simulate": "Simulate anomalies",
    "uniadrs:train": "Train UniADRS model",
}


def test_provider_offers_the_algorithms(provider):
    offered = {algorithm.id(): algorithm for algorithm in provider.algorithms()}
    for algorithm_id, name in EXPECTED.items():
        algorithm = offered[algorithm_id]
        assert algorithm.displayName() == name
        assert algorithm.group() and algorithm.groupId()
        assert len(algorithm.shortHelpString()) > 200
        assert algorithm.canExecute() == (True, "")
        for definition in algorithm.parameterDefinitions():
            assert definition.description(), definition.name()
    assert provider.name() == "UniADRS" and Path(provider.svgIconPath()).is_file()
    assert not provider.supportsNonFileBasedOutput()


def test_preset_choices_come_from_the_engine_table(provider):
    algorithm = QgsApplication.processingRegistry().algorithmById("uniadrs:detectanomalies")
    options = algorithm.parameterDefinition("PRESET").options()
    assert [option.split(":")[0] for option in options] == list(PRESETS)


def test_settings_are_registered_and_used(provider, scene, tiny_model, tmp_path):
    for name in (settings.DEVICE_SETTING, settings.MEMORY_SETTING, settings.MODEL_FOLDER_SETTING):
        assert name in ProcessingConfig.settings
    assert settings.default_device() == "auto"
    lines = []

    class Feedback(QgsProcessingFeedback):
        def pushInfo(self, text):  # noqa: N802 - QGIS API
            lines.append(text)

    ProcessingConfig.setSettingValue(settings.MEMORY_SETTING, 300)
    ProcessingConfig.setSettingValue(settings.DEVICE_SETTING, "cpu")
    try:
        assert settings.default_memory_mb() == 300
        result = processing.run(
            "uniadrs:detectanomalies",
            {"INPUT": str(scene), "MODEL": str(tiny_model), "OUTPUT": str(tmp_path / "s.tif")},
            feedback=Feedback(),
        )
    finally:
        ProcessingConfig.setSettingValue(settings.MEMORY_SETTING, settings.DEFAULT_MEMORY_MB)
        ProcessingConfig.setSettingValue(settings.DEVICE_SETTING, settings.DEFAULT_DEVICE)
    assert any("device cpu, memory budget 300 MB" in line for line in lines), lines
    assert result["DEVICE_USED"] == "cpu"
    assert settings.default_memory_mb() == settings.DEFAULT_MEMORY_MB


def test_model_folder_defaults_to_the_profile():
    folder = settings.model_folder()
    assert folder.parts[-2:] == ("uniadrs", "models")


def test_engine_is_found_in_the_checkout():
    location = ensure_engine_importable()
    assert location.origin == "checkout"
    assert location.folder == Path(__file__).resolve().parents[2]


def test_an_engine_already_imported_is_kept(tmp_path):
    vendored = tmp_path / "uniadrs" / "_vendor" / "uniadrs_engine"
    vendored.mkdir(parents=True)
    (vendored / "__init__.py").write_text("")
    location = ensure_engine_importable(tmp_path / "uniadrs")
    # the engine is already imported in this process, so the vendored copy is not used
    assert location.origin == "installed"
    assert location.folder == Path(__file__).resolve().parents[2]


def test_icon_and_shipped_model_are_found():
    assert icon_path().endswith("icon.svg")
    assert [path.name for path in shipped_model_files()] == ["detect_threshold_stats.model3"]


def test_detect_and_rx_offer_the_same_band_choice(provider):
    registry = QgsApplication.processingRegistry()
    for algorithm_id in ("uniadrs:detectanomalies", "uniadrs:rx"):
        bands = registry.algorithmById(algorithm_id).parameterDefinition("BANDS")
        assert bands.description() == "Bands (empty: all usable bands)"
        assert bands.allowMultiple() and "ENVI bad band list" in bands.help()
