"""The RX algorithm runs in Processing's batch dialog (two rows, offscreen)."""

from __future__ import annotations

import numpy as np
from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
from qgis.core import QgsApplication, QgsProcessingContext

from tests.qgis_plugin.conftest import read_band
from tests.raster_factory import anomaly_scene, write_raster
from uniadrs_engine.baselines.rx import rx_raster


def test_rx_in_batch_mode(provider, qgis_iface, tmp_path):
    inputs = []
    for seed in (1, 2):
        image, _ = anomaly_scene(rows=24, cols=28, bands=4, seed=seed)
        inputs.append(write_raster(tmp_path / f"scene{seed}.tif", image))
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("uniadrs:rx")
    dialog = BatchAlgorithmDialog(algorithm)
    panel = dialog.mainWidget()
    panel.addRow()
    assert panel.batchRowCount() == 2
    input_column = panel.parameter_to_column["INPUT"]
    output_column = panel.parameter_to_column["OUTPUT"]
    context = QgsProcessingContext()
    for row, path in enumerate(inputs):
        panel.wrappers[row][input_column].setParameterValue(str(path), context)
        panel.tblParameters.cellWidget(row + 1, output_column).setValue(
            str(tmp_path / f"rx{row}.tif")
        )
    panel.checkLoadLayersOnCompletion.setChecked(False)
    dialog.runAlgorithm()
    for row, path in enumerate(inputs):
        engine = rx_raster(path, tmp_path / f"engine{row}.tif")
        np.testing.assert_allclose(
            read_band(tmp_path / f"rx{row}.tif"), read_band(engine.output_path)
        )
    dialog.close()
