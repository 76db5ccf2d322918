"""Processing algorithm "Simulate anomalies": training samples written to a folder to look at.

A thin wrapper around :func:`uniadrs_engine.simulation.export.simulate_to_dir`, or, given a
training configuration, :func:`uniadrs_engine.training.preview.simulate_config_to_dir`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..dependencies import SIMULATION_MODULES, TRAINING_MODULES, missing_requirements_message
from .base import GROUP_TRAINING, UniadrsAlgorithm, engine_module, make_advanced, tr


def background_paths(
    algorithm: UniadrsAlgorithm,
    parameters: Dict[str, Any],
    context: QgsProcessingContext,
    layers_name: str,
    folder_name: str,
) -> List[str]:
    """Files of the background raster layers plus the background folder, if any.

    Raises:
        QgsProcessingException: If neither is given, or a layer is not a raster file.
    """
    paths = [
        algorithm.gdal_source(layer, algorithm.parameterDefinition(layers_name).description())
        for layer in algorithm.parameterAsLayerList(parameters, layers_name, context)
    ]
    folder = algorithm.parameterAsFile(parameters, folder_name, context)
    if folder:
        paths.append(folder)
    if not paths:
        raise QgsProcessingException(
            "Give background rasters, a background folder, or both (the anomalies are pasted "
            "into these images)"
        )
    return paths


def split_patterns(text: str) -> List[str]:
    """``"a*, b"`` -> ``["a*", "b"]``."""
    return [item.strip() for item in text.split(",") if item.strip()]


def add_background_parameters(algorithm: UniadrsAlgorithm) -> None:
    """Adds the background layers, background folder and exclude patterns parameters.

    The algorithm names them with its ``BACKGROUNDS``, ``BACKGROUND_FOLDER`` and ``EXCLUDE``
    attributes (read back with :func:`background_sources`).
    """
    algorithm.addParameter(
        QgsProcessingParameterMultipleLayers(
            algorithm.BACKGROUNDS,
            tr("Background rasters"),
            QgsProcessing.TypeRaster,
            optional=True,
        )
    )
    algorithm.addParameter(
        QgsProcessingParameterFile(
            algorithm.BACKGROUND_FOLDER,
            tr("Folder of background rasters (searched recursively)"),
            behavior=QgsProcessingParameterFile.Folder,
            optional=True,
        )
    )
    algorithm.addParameter(
        QgsProcessingParameterString(
            algorithm.EXCLUDE,
            tr("Leave out backgrounds matching (comma-separated patterns)"),
            optional=True,
        )
    )
    nodata = QgsProcessingParameterString(
        algorithm.NODATA,
        tr("No data values of the backgrounds (besides each file's)"),
        optional=True,
    )
    nodata.setHelp(
        tr(
            "Values that hold no data in every background, besides each file's nodata value: "
            "numbers and LOW..HIGH ranges separated by commas, e.g. 0 for black collars the "
            "files do not declare. Such pixels are neither simulated on nor scored in "
            "validation. The layers' own no data settings in QGIS are not read: declare the "
            "nodata in the files, or give it here. With a training configuration, its "
            "'nodata' key applies instead."
        )
    )
    algorithm.addParameter(make_advanced(nodata))


def background_sources(
    algorithm: UniadrsAlgorithm, parameters: Dict[str, Any], context: QgsProcessingContext
) -> Tuple[List[str], List[str]]:
    """The background paths and exclude patterns of :func:`add_background_parameters`."""
    paths = background_paths(
        algorithm, parameters, context, algorithm.BACKGROUNDS, algorithm.BACKGROUND_FOLDER
    )
    exclude = split_patterns(algorithm.parameterAsString(parameters, algorithm.EXCLUDE, context))
    return paths, exclude


def background_nodata(
    algorithm: UniadrsAlgorithm, parameters: Dict[str, Any], context: QgsProcessingContext
) -> str:
    """The backgrounds' no data values of :func:`add_background_parameters` (text)."""
    return (algorithm.parameterAsString(parameters, algorithm.NODATA, context) or "").strip()


class SimulateAnomaliesAlgorithm(UniadrsAlgorithm):
    """Writes simulated training samples (image, labels) and a contact sheet."""

    ALGORITHM_ID = "simulate"
    DISPLAY_NAME = "Simulate anomalies"
    GROUP = GROUP_TRAINING
    TAGS = ("simulation", "training data", "synthetic", "samples")
    REQUIRED_MODULES = SIMULATION_MODULES
    HELP = "\n".join(
        (
            "Pastes simulated anomalies into real background images, as UniADRS training "
            "does, and writes the samples to a folder so that you can look at them.",
            "Spectral samples (from backgrounds of 10 bands or more) get small rectangles "
            "whose spectra are band-permuted copies (anomalies) and larger ones (large "
            "normal objects); spatial samples (from RGB/grey backgrounds) get objects cut from "
            "other images.",
            "Output folder: sample_NNNN_image.tif (float32) and sample_NNNN_labels.tif (0 "
            "background, 1 anomaly, 2 ignore, 3 large normal object, with a colour table), "
            "contact_sheet.png, samples.csv and simulation.json. The same seed gives the same "
            "samples.",
            "With a training configuration (YAML, as for 'Train UniADRS model'), the samples "
            "its run simulates instead: the first ones it trains on, or its validation samples; "
            "the backgrounds and settings below are then ignored (needs PyTorch).",
        )
    )

    CONFIG = "CONFIG"
    VALIDATION = "VALIDATION"
    BACKGROUNDS = "BACKGROUNDS"
    BACKGROUND_FOLDER = "BACKGROUND_FOLDER"
    EXCLUDE = "EXCLUDE"
    COUNT = "COUNT"
    SEED = "SEED"
    SIZE = "SIZE"
    SPECTRAL_SHARE = "SPECTRAL_SHARE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self.addParameter(
            QgsProcessingParameterFile(
                self.CONFIG,
                tr("Training configuration (YAML; empty: the backgrounds and settings below)"),
                extension="yaml",
                optional=True,
            )
        )
        validation = QgsProcessingParameterBoolean(
            self.VALIDATION,
            tr("With a training configuration: its validation samples, not its training ones"),
            defaultValue=False,
        )
        validation.setHelp(
            tr(
                "The fixed samples, from its held-out backgrounds, that the run's validation "
                "AUC is measured on."
            )
        )
        self.addParameter(make_advanced(validation))
        add_background_parameters(self)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.COUNT,
                tr("Number of samples"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=16,
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SEED, tr("Random seed"), QgsProcessingParameterNumber.Integer, defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SIZE,
                tr("Sample size in pixels (a multiple of 8)"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=128,
                minValue=16,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SPECTRAL_SHARE,
                tr("Share of spectral samples (0-1)"),
                QgsProcessingParameterNumber.Double,
                defaultValue=0.5,
                minValue=0.0,
                maxValue=1.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, tr("Output folder"))
        )
        self.addOutput(QgsProcessingOutputFile("CONTACT_SHEET", tr("Contact sheet (PNG)")))
        self.addOutput(QgsProcessingOutputNumber("SAMPLE_COUNT", tr("Samples written")))

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Simulates with the engine and returns the outputs."""
        export = engine_module("uniadrs_engine.simulation.export")
        output_folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        count = self.parameterAsInt(parameters, self.COUNT, context)
        progress, is_cancelled = self.callbacks(feedback)
        config_file = self.parameterAsFile(parameters, self.CONFIG, context)
        if config_file:
            message = missing_requirements_message(TRAINING_MODULES)
            if message is not None:
                raise QgsProcessingException(message)
            config = engine_module("uniadrs_engine.training.config").TrainingConfig.from_yaml(
                config_file
            )
            feedback.pushInfo(f"Training configuration: {config_file}")
            written = engine_module("uniadrs_engine.training.preview").simulate_config_to_dir(
                config,
                output_folder,
                n=count,
                validation=self.parameterAsBool(parameters, self.VALIDATION, context),
                progress=progress,
                is_cancelled=is_cancelled,
            )
        else:
            paths, exclude = background_sources(self, parameters, context)
            nodata = engine_module("uniadrs_engine.raster.nodata")
            rule = nodata.nodata_rule_of(
                nodata.parse_nodata_values(background_nodata(self, parameters, context))
            )
            written = export.simulate_to_dir(
                paths,
                output_folder,
                n=count,
                seed=self.parameterAsInt(parameters, self.SEED, context),
                size=self.parameterAsInt(parameters, self.SIZE, context),
                spectral_share=self.parameterAsDouble(parameters, self.SPECTRAL_SHARE, context),
                exclude=exclude,
                progress=progress,
                is_cancelled=is_cancelled,
                nodata=rule,
            )
        contact_sheet = next(
            (str(path) for path in written if path.name == export.CONTACT_SHEET_NAME), ""
        )
        samples = export.written_sample_count(written)
        feedback.pushInfo(f"{samples} sample(s) written to {output_folder}")
        return {
            self.OUTPUT_FOLDER: output_folder,
            "CONTACT_SHEET": contact_sheet,
            "SAMPLE_COUNT": samples,
        }
