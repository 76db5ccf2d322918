"""Processing algorithm "Train UniADRS model": a model file from simulated anomalies.

A thin wrapper around :func:`uniadrs_engine.training.trainer.train_from_config`. The run is
described either by a YAML configuration file (as for ``uniadrs train``) or by the
algorithm's parameters, which fill a :class:`~uniadrs_engine.training.config.TrainingConfig`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from .. import settings
from ..dependencies import TRAINING_MODULES
from .base import GROUP_TRAINING, UniadrsAlgorithm, engine_module, make_advanced, tr
from .simulate import add_background_parameters, background_nodata, background_sources

#: Shown when the engine cannot be imported (the algorithm cannot run then anyway).
_FALLBACK_CONFIGS = ("lite8s32",)
_FALLBACK_PIXEL_LOSSES = ("margin",)
_FALLBACK_NORMALISATIONS = ("band_max",)
_FALLBACK_WEIGHT_STORAGES = ("float32",)


def _engine_choices(
    module: str, names: str, config_field: str, fallback: Tuple[str, ...]
) -> List[str]:
    """Names in the engine's ``module.names``, the training configuration's default first."""
    try:
        choices = getattr(importlib.import_module(module), names)
    except Exception:  # noqa: BLE001 - the provider must load even with a broken engine
        return list(fallback)
    default = config_default(config_field, fallback[0])
    return sorted(choices, key=lambda name: (name != default, name))


def config_default(config_field: str, fallback: Any) -> Any:
    """The training configuration's default for ``config_field`` (one place defines it)."""
    try:
        from uniadrs_engine.training.config import TrainingConfig
    except Exception:  # noqa: BLE001 - the provider must load even with a broken engine
        return fallback
    return TrainingConfig.__dataclass_fields__[config_field].default


def network_configurations() -> List[str]:
    """Names of the engine's network configurations, the default (``lite8s32``) first."""
    return _engine_choices(
        "uniadrs_engine.model.config", "NAMED_CONFIGS", "model", _FALLBACK_CONFIGS
    )


def pixel_losses() -> List[str]:
    """Names of the engine's pixel losses, the default (``margin``) first."""
    return _engine_choices(
        "uniadrs_engine.training.config", "PIXEL_LOSSES", "pixel_loss", _FALLBACK_PIXEL_LOSSES
    )


def normalisations() -> List[str]:
    """Names of the engine's input normalisations, the default (``band_max``) first."""
    return _engine_choices(
        "uniadrs_engine.raster.normalisation",
        "NORMALISATIONS",
        "normalisation",
        _FALLBACK_NORMALISATIONS,
    )


def weight_storages() -> List[str]:
    """Names of the engine's weight storages, the default (``float32``) first."""
    return _engine_choices(
        "uniadrs_engine.model.weight_storage",
        "WEIGHT_STORAGES",
        "weight_storage",
        _FALLBACK_WEIGHT_STORAGES,
    )


class TrainModelAlgorithm(UniadrsAlgorithm):
    """Trains a UniADRS network on simulated anomalies and writes a model file."""

    ALGORITHM_ID = "train"
    DISPLAY_NAME = "Train UniADRS model"
    GROUP = GROUP_TRAINING
    TAGS = ("training", "deep learning", "model", "simulation")
    REQUIRED_MODULES = TRAINING_MODULES
    HELP = "\n".join(
        (
            "Trains a UniADRS network on anomalies simulated in your background images (no "
            "labelled anomalies needed) and writes a model file (model.safetensors, with a "
            "model card) for 'Detect anomalies (UniADRS)'.",
            "Either give a training configuration file (YAML, as for 'uniadrs train'; the "
            "other training parameters are then ignored, and its output_dir is replaced by the "
            "output folder) or the backgrounds and the settings below.",
            "The output folder also holds the checkpoint (checkpoint.pt) and the training "
            "log (train_log.csv), in member_k sub-folders when several networks are trained. "
            "Training can be cancelled: tick 'Resume' and run again with the same output "
            "folder to go on from the last checkpoint. An output folder that holds an earlier "
            "run is refused unless 'Replace a run already in the output folder' is ticked.",
            "To fine-tune a trained model (for example the shipped default model) on your own "
            "backgrounds, give it as 'Start from model': training then starts from its weights "
            "instead of a random start, and takes its network configuration and input "
            "normalisation from it; a lower learning rate (e.g. 0.001) keeps more of what it "
            "learnt.",
            "Training is slow on a CPU: a few thousand steps of the lite networks take about "
            "an hour. Needs PyTorch in QGIS's Python.",
        )
    )

    CONFIG = "CONFIG"
    BACKGROUNDS = "BACKGROUNDS"
    BACKGROUND_FOLDER = "BACKGROUND_FOLDER"
    EXCLUDE = "EXCLUDE"
    NETWORK = "NETWORK"
    STEPS = "STEPS"
    BATCH_SIZE = "BATCH_SIZE"
    CROP_SIZE = "CROP_SIZE"
    SEED = "SEED"
    PIXEL_LOSS = "PIXEL_LOSS"
    MEMBERS = "MEMBERS"
    NORMALISATION = "NORMALISATION"
    WEIGHT_STORAGE = "WEIGHT_STORAGE"
    MODEL_NAME = "MODEL_NAME"
    INIT_MODEL = "INIT_MODEL"
    LEARNING_RATE = "LEARNING_RATE"
    RESUME = "RESUME"
    OVERWRITE = "OVERWRITE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self._networks = network_configurations()
        self.addParameter(
            QgsProcessingParameterFile(
                self.CONFIG,
                tr("Training configuration (YAML; empty: the parameters below)"),
                extension="yaml",
                optional=True,
            )
        )
        add_background_parameters(self)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.NETWORK, tr("Network configuration"), options=self._networks, defaultValue=0
            )
        )
        for name, label, default, minimum in (
            (self.STEPS, "Training steps", config_default("steps", 3000), 1),
            (self.BATCH_SIZE, "Samples per step", config_default("batch_size", 4), 1),
            (
                self.CROP_SIZE,
                "Sample size in pixels (a multiple of 8)",
                config_default("crop_size", 128),
                16,
            ),
        ):
            self.addParameter(
                QgsProcessingParameterNumber(
                    name,
                    tr(label),
                    QgsProcessingParameterNumber.Integer,
                    defaultValue=default,
                    minValue=minimum,
                )
            )
        init_model = QgsProcessingParameterFile(
            self.INIT_MODEL,
            tr("Start from model (fine-tune its weights; empty: a random start)"),
            extension="safetensors",
            optional=True,
        )
        init_model.setHelp(
            tr(
                "A UniADRS model file whose weights start the training. Its network "
                "configuration and input normalisation are used, whatever is chosen below; an "
                "ensemble file starts network k of the new model from its network k."
            )
        )
        self.addParameter(init_model)
        learning_rate = QgsProcessingParameterNumber(
            self.LEARNING_RATE,
            tr("Peak learning rate"),
            QgsProcessingParameterNumber.Double,
            defaultValue=config_default("learning_rate", 0.003),
            minValue=1e-7,
        )
        self.addParameter(make_advanced(learning_rate))
        seed = QgsProcessingParameterNumber(
            self.SEED, tr("Random seed"), QgsProcessingParameterNumber.Integer, defaultValue=0
        )
        self.addParameter(make_advanced(seed))
        self._pixel_losses = pixel_losses()
        self._add_advanced_choice(
            self.PIXEL_LOSS,
            tr("Pixel loss (margin: large-margin AUC loss; balanced_bce: balanced cross-entropy)"),
            self._pixel_losses,
        )
        members = QgsProcessingParameterNumber(
            self.MEMBERS,
            tr("Networks (more than 1: a seed ensemble, scores averaged)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=1,
            minValue=1,
        )
        members.setHelp(
            tr(
                "Trains this many networks with seeds seed, seed + 1, ... one after the other and "
                "writes one model file that averages their scores: steadier from scene to scene, "
                "as many times slower to train and to run."
            )
        )
        self.addParameter(make_advanced(members))
        self._normalisations = normalisations()
        self._add_advanced_choice(
            self.NORMALISATION,
            tr("Input normalisation (band_max: bands divided by their maximum; whiten: RX-style)"),
            self._normalisations,
            tr(
                "whiten: every training sample, and later every raster scored with the model, is "
                "whitened with its own band mean and covariance (the statistics global RX uses). "
                "soft_whiten: the same, but the weak (mostly noise) spectral directions are "
                "damped instead of raised to unit variance. "
                "The model file records the choice; detection applies it."
            ),
        )
        self._weight_storages = weight_storages()
        self._add_advanced_choice(
            self.WEIGHT_STORAGE,
            tr(
                "Weight storage in the model file (float16: half the size; int8: a quarter; "
                "int4: about a seventh)"
            ),
            self._weight_storages,
            tr(
                "The network always computes in float32; this only decides how its weights are "
                "rounded in the model file. float16 moves scores by about 0.001, int8 (one scale "
                "per output channel) by about 0.01, int4 (one scale per group of 32 weights) by "
                "a few hundredths."
            ),
        )
        self.addParameter(
            QgsProcessingParameterString(self.MODEL_NAME, tr("Model name"), defaultValue="uniadrs")
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.RESUME, tr("Resume from the output folder's checkpoint"), defaultValue=False
            )
        )
        overwrite = QgsProcessingParameterBoolean(
            self.OVERWRITE,
            tr("Replace a run already in the output folder (when not resuming)"),
            defaultValue=False,
        )
        overwrite.setHelp(
            tr(
                "Off: an output folder that holds an earlier run's checkpoint or model is "
                "refused, so that hours of training are not replaced by mistake."
            )
        )
        self.addParameter(overwrite)
        self.add_device_parameter()
        self.addParameter(
            QgsProcessingParameterFolderDestination(
                self.OUTPUT_FOLDER,
                tr("Output folder"),
                defaultValue=str(settings.model_folder() / "uniadrs_model"),
            )
        )
        self.addOutput(QgsProcessingOutputFile("MODEL_FILE", tr("Model file")))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_AUC", tr("Validation AUC")))
        self.addOutput(QgsProcessingOutputNumber("STEPS_DONE", tr("Steps trained")))

    def _add_advanced_choice(
        self, name: str, description: str, options: List[str], help_text: str = ""
    ) -> None:
        """Adds an advanced enum parameter over the engine's ``options`` (its default first)."""
        parameter = QgsProcessingParameterEnum(name, description, options=options, defaultValue=0)
        if help_text:
            parameter.setHelp(help_text)
        self.addParameter(make_advanced(parameter))

    def cancelled_message(self, error: Exception) -> str:
        """Training keeps its last checkpoint: say how to go on."""
        return f"{error} (in QGIS: run again with 'Resume' ticked and the same output folder)"

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Trains with the engine and returns the outputs."""
        training_config = engine_module("uniadrs_engine.training.config")
        trainer = engine_module("uniadrs_engine.training.trainer")
        output_folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        if (
            Path(output_folder)
            .resolve()
            .is_relative_to(Path(QgsProcessingUtils.tempFolder()).resolve())
        ):
            feedback.pushWarning(
                f"The model goes to {output_folder}, a temporary folder that QGIS deletes when "
                "it closes: copy the model file out of it, or choose a folder of your own."
            )
        config_file = self.parameterAsFile(parameters, self.CONFIG, context)
        device_index = self.parameterAsEnum(parameters, self.DEVICE, context)
        if config_file:
            config = training_config.TrainingConfig.from_yaml(config_file)
            config.output_dir = output_folder
            if device_index > 0:
                config.device = self.device(parameters, context)
            feedback.pushInfo(f"Training configuration: {config_file}")
        else:
            networks = getattr(self, "_networks", None) or network_configurations()
            losses = getattr(self, "_pixel_losses", None) or pixel_losses()
            names = getattr(self, "_normalisations", None) or normalisations()
            storages = getattr(self, "_weight_storages", None) or weight_storages()
            backgrounds, exclude = background_sources(self, parameters, context)
            init_model = self.parameterAsFile(parameters, self.INIT_MODEL, context) or None
            network = {
                "model": networks[self.parameterAsEnum(parameters, self.NETWORK, context)],
                "normalisation": names[
                    self.parameterAsEnum(parameters, self.NORMALISATION, context)
                ],
            }
            if init_model:
                initial_weights = engine_module("uniadrs_engine.training.initial_weights")
                network = initial_weights.settings_of_model(init_model)
                feedback.pushInfo(
                    f"Starting from {init_model}: network {network['model']}, "
                    f"normalisation {network['normalisation']}"
                )
            config = training_config.TrainingConfig(
                backgrounds=backgrounds,
                exclude=exclude,
                **network,
                init_model=init_model,
                learning_rate=self.parameterAsDouble(parameters, self.LEARNING_RATE, context),
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
                crop_size=self.parameterAsInt(parameters, self.CROP_SIZE, context),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                pixel_loss=losses[self.parameterAsEnum(parameters, self.PIXEL_LOSS, context)],
                members=self.parameterAsInt(parameters, self.MEMBERS, context),
                weight_storage=storages[
                    self.parameterAsEnum(parameters, self.WEIGHT_STORAGE, context)
                ],
                device=self.device(parameters, context),
                output_dir=output_folder,
                model_name=self.parameterAsString(parameters, self.MODEL_NAME, context)
                or "uniadrs",
                nodata=background_nodata(self, parameters, context),
            )
        Path(output_folder).mkdir(parents=True, exist_ok=True)
        feedback.pushInfo(
            f"Training {config.members} x {config.model} for {config.steps} steps of "
            f"{config.batch_size} samples "
            f"({config.crop_size} px) on {config.device}; output: {output_folder}"
        )
        progress, is_cancelled = self.callbacks(feedback)
        result = trainer.train_from_config(
            config,
            resume=self.parameterAsBoolean(parameters, self.RESUME, context),
            progress=progress,
            is_cancelled=is_cancelled,
            overwrite=self.parameterAsBoolean(parameters, self.OVERWRITE, context),
        )
        figures = ", ".join(f"{name} {value:.4g}" for name, value in result.validation.items())
        feedback.pushInfo(
            f"Model written to {result.model_path} after {result.steps} steps "
            f"({result.wall_seconds:.0f} s); validation: {figures}"
        )
        return {
            self.OUTPUT_FOLDER: output_folder,
            "MODEL_FILE": str(result.model_path),
            "VALIDATION_AUC": result.validation.get("auc"),
            "STEPS_DONE": result.steps,
        }
