"""Processing algorithm "Detect anomalies (UniADRS)": a raster in, an anomaly-score raster out.

A thin wrapper around :func:`uniadrs_engine.inference.detector.detect_raster`; the presets
offered come from :data:`uniadrs_engine.inference.presets.PRESETS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .. import settings
from ..dependencies import DETECTION_MODULES
from ..styling import attach_styler, style_score_layer
from .base import GROUP_DETECTION, UniadrsAlgorithm, engine_module, make_advanced, tr

#: Shown when the engine (and so the preset table) cannot be imported at all.
_FALLBACK_PRESETS: Tuple[Tuple[str, str], ...] = (("auto", "any modality"),)

MODEL_SUFFIX = ".safetensors"

#: Units of the expected anomaly size: (key, label).
SIZE_UNITS = (("pixels", "Pixels"), ("map_units", "Map units of the raster's CRS"))

#: Choices of the input statistics parameter: the engine's normalisation scopes (None: the
#: preset's), with their labels.
STATISTICS_SCOPES: Tuple[Tuple[Optional[str], str], ...] = (
    (None, "The preset's"),
    ("raster", "Whole raster"),
    ("tile", "Each tile's window, as training normalises each crop"),
)

#: Choices of the test-time views parameter: the engine's view counts (None: the preset's),
#: with their labels.
VIEW_CHOICES: Tuple[Tuple[Optional[int], str], ...] = (
    (None, "The preset's"),
    (1, "1: the tile as is"),
    (2, "2: also mirrored left-right"),
    (4, "4: also mirrored top-bottom and turned 180°"),
    (8, "8: also transposed (every flip and quarter turn)"),
)


def preset_choices() -> List[Tuple[str, str]]:
    """``(name, description)`` of every preset of the engine's table, ``auto`` first."""
    try:
        from uniadrs_engine.inference.presets import PRESETS
    except Exception:  # noqa: BLE001 - the provider must load even with a broken engine
        return list(_FALLBACK_PRESETS)
    return [(name, preset.description) for name, preset in PRESETS.items()]


def parse_scales(text: str) -> Optional[Tuple[float, ...]]:
    """Parses ``"0.5, 1"`` into ``(0.5, 1.0)``; empty text gives None.

    Raises:
        QgsProcessingException: If an item is not a number.
    """
    items = [item for item in text.replace(";", ",").replace(" ", ",").split(",") if item]
    if not items:
        return None
    try:
        return tuple(float(item) for item in items)
    except ValueError:
        raise QgsProcessingException(
            f"Input scales: {text!r} is not a comma-separated list of numbers (e.g. 0.5,1)"
        ) from None


class DetectAnomaliesAlgorithm(UniadrsAlgorithm):
    """Scores every pixel of a raster with a UniADRS model."""

    ALGORITHM_ID = "detectanomalies"
    DISPLAY_NAME = "Detect anomalies (UniADRS)"
    GROUP = GROUP_DETECTION
    TAGS = ("zero-shot", "hyperspectral", "sar", "infrared", "deep learning", "score")
    REQUIRED_MODULES = DETECTION_MODULES
    HELP = "\n".join(
        (
            "Scores every pixel of a raster by how much it deviates from its surroundings, with a "
            "UniADRS network trained once on simulated anomalies: no training on your image, any "
            "number of bands, any modality (hyperspectral, RGB/multispectral, SAR, thermal "
            "infrared, low-light).",
            "Output: a float32 anomaly-score raster on the input's grid and CRS (higher = more "
            "anomalous, nodata -9999 where the input has no valid value). Threshold it with "
            "'Threshold anomaly scores'.",
            "Modality preset sets the input scales, tile and halo, the model's networks that "
            "score and how the scales are fused; 'auto' uses the hyperspectral "
            "settings from 5 bands on. The detectable anomaly size is roughly 15-55 pixels after "
            "scaling: give the expected anomaly size (in pixels) or explicit input scales (e.g. "
            "0.5,1; several scales are fused) to adapt it. An RX weight above 0 (advanced) also "
            "computes global RX and fuses its rank with the network's.",
            "Model: empty uses the model shipped with the plugin; otherwise a .safetensors model "
            "file (a bare file name is looked up in the model folder of the UniADRS settings).",
            "Large rasters are processed in tiles within the memory budget; the run can be "
            "cancelled at any time and then leaves no output file.",
            "Needs PyTorch in QGIS's Python.",
        )
    )

    INPUT = "INPUT"
    BANDS = "BANDS"
    MODEL = "MODEL"
    PRESET = "PRESET"
    SCALES = "SCALES"
    OBJECT_SIZE = "OBJECT_SIZE"
    OBJECT_SIZE_UNITS = "OBJECT_SIZE_UNITS"
    RX_WEIGHT = "RX_WEIGHT"
    FUSION_POWER = "FUSION_POWER"
    NETWORKS = "NETWORKS"
    TILE = "TILE"
    HALO = "HALO"
    STATISTICS = "STATISTICS"
    VIEWS = "VIEWS"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, configuration: Optional[Dict[str, Any]] = None) -> None:  # noqa: N802
        """Declares the parameters and outputs."""
        self._presets = preset_choices()
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, tr("Input raster")))
        self.addParameter(self.band_parameter(self.BANDS, self.INPUT))
        model = QgsProcessingParameterFile(
            self.MODEL,
            tr("Model file (empty: the shipped default model)"),
            extension=MODEL_SUFFIX.lstrip("."),
            optional=True,
        )
        model.setHelp(
            tr(
                "A UniADRS .safetensors model file. Empty: the default model shipped with the "
                "plugin. A bare file name is looked up in the model folder of the settings."
            )
        )
        self.addParameter(model)
        preset = QgsProcessingParameterEnum(
            self.PRESET,
            tr("Modality preset"),
            options=[
                f"{name}: {description}" if description else name
                for name, description in self._presets
            ],
            defaultValue=0,
        )
        preset.setHelp(
            tr(
                "Input scales, tile and halo, the networks that score and how the scales are "
                "fused, chosen for one kind of imagery."
            )
        )
        self.addParameter(preset)
        scales = QgsProcessingParameterString(
            self.SCALES, tr("Input scales (e.g. 0.5,1; empty: the preset's)"), optional=True
        )
        scales.setHelp(
            tr(
                "Resampling factors applied before scoring; several are fused. Overrides the "
                "preset's scales. Do not combine with an expected anomaly size."
            )
        )
        self.addParameter(scales)
        object_size = QgsProcessingParameterNumber(
            self.OBJECT_SIZE,
            tr("Expected anomaly size (empty: the preset's scales)"),
            QgsProcessingParameterNumber.Double,
            optional=True,
            minValue=0.0,
        )
        object_size.setHelp(
            tr(
                "Typical width of the anomalies sought, in pixels or map units (next "
                "parameter); the input scale is chosen so that they reach the size the network "
                "scores best. Map units need a projected CRS (metres, feet), not degrees."
            )
        )
        self.addParameter(object_size)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.OBJECT_SIZE_UNITS,
                tr("Anomaly size given in"),
                options=[tr(label) for _, label in SIZE_UNITS],
                defaultValue=0,
            )
        )
        rx_weight = QgsProcessingParameterNumber(
            self.RX_WEIGHT,
            tr("Weight of global RX in the fused score (empty: the preset's)"),
            QgsProcessingParameterNumber.Double,
            optional=True,
            minValue=0.0,
            maxValue=0.99,
        )
        rx_weight.setHelp(
            tr(
                "Also computes global RX (Mahalanobis distance to the raster's mean) on the same "
                "bands and fuses its rank with the network's at this weight: 0 scores with the "
                "network alone, 0.5 weighs both equally. Empty: the preset's weight."
            )
        )
        self.addParameter(make_advanced(rx_weight))
        fusion_power = QgsProcessingParameterNumber(
            self.FUSION_POWER,
            tr("Power of the fusion of scales (empty: the preset's)"),
            QgsProcessingParameterNumber.Double,
            optional=True,
            minValue=1.0,
        )
        fusion_power.setHelp(
            tr(
                "Several input scales are fused by a power mean of their ranks: 1 averages "
                "them (a pixel must rank high at every scale), larger powers (up to 64) come "
                "nearer to their maximum (a pixel that ranks high at any one scale stays high). "
                "Empty: the preset's power."
            )
        )
        self.addParameter(make_advanced(fusion_power))
        networks = QgsProcessingParameterString(
            self.NETWORKS,
            tr("Networks of the model to score with (e.g. 5,6; empty: the preset's)"),
            optional=True,
        )
        networks.setHelp(
            tr(
                "The shipped model is an ensemble of several networks whose scores are averaged "
                "('uniadrs info' lists them with their sizes). Numbers (1-based, with ranges "
                "such as 1-2) score "
                "with those networks only: faster, and sometimes better suited to one kind of "
                "imagery. Empty: the preset's choice, usually every network."
            )
        )
        self.addParameter(make_advanced(networks))
        tile = QgsProcessingParameterNumber(
            self.TILE,
            tr("Tile size in network input pixels (0: the preset's)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=0,
            minValue=0,
        )
        tile.setHelp(
            tr(
                "Core size of the tiles the raster is scored in, in pixels of the network's "
                "input (raster pixels times the scale). 0: the preset's. Lowered automatically "
                "when a tile does not fit the memory budget."
            )
        )
        self.addParameter(make_advanced(tile))
        halo = QgsProcessingParameterNumber(
            self.HALO,
            tr("Halo in network input pixels (empty: the preset's)"),
            QgsProcessingParameterNumber.Integer,
            optional=True,
            minValue=0,
        )
        halo.setHelp(tr("Context added around each tile so that tiles join without seams."))
        self.addParameter(make_advanced(halo))
        statistics = QgsProcessingParameterEnum(
            self.STATISTICS,
            tr("Input statistics"),
            options=[tr(label) for _, label in STATISTICS_SCOPES],
            defaultValue=0,
            # Optional, so that models and scripts saved before it existed stay valid.
            optional=True,
        )
        statistics.setHelp(
            tr(
                "Which pixels the input normalisation takes its statistics from: the whole "
                "raster, or each tile's window (core and halo) on its own, as training "
                "normalises each crop. The preset's: the whole raster unless the preset says "
                "otherwise."
            )
        )
        self.addParameter(make_advanced(statistics))
        views = QgsProcessingParameterEnum(
            self.VIEWS,
            tr("Test-time views"),
            options=[tr(label) for _, label in VIEW_CHOICES],
            defaultValue=0,
            # Optional, so that models and scripts saved before it existed stay valid.
            optional=True,
        )
        views.setHelp(
            tr(
                "Scores each tile in several orientations (mirrored, turned) and averages the "
                "scores, mapped back: a little steadier, at one more forward pass per view. "
                "The preset's: one view unless the preset says otherwise."
            )
        )
        self.addParameter(make_advanced(views))
        batch = QgsProcessingParameterNumber(
            self.BATCH_SIZE,
            tr("Batch size (tiles scored together)"),
            QgsProcessingParameterNumber.Integer,
            defaultValue=4,
            minValue=1,
        )
        self.addParameter(make_advanced(batch))
        self.add_nodata_parameter()
        self.add_device_parameter()
        self.add_memory_parameter()
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Anomaly scores"))
        )
        for name, description in (
            ("SCORE_MIN", "Lowest score"),
            ("SCORE_MAX", "Highest score"),
            ("SCORE_MEAN", "Mean score"),
            ("TILE_COUNT", "Tiles scored"),
            ("SECONDS", "Run time (s)"),
        ):
            self.addOutput(QgsProcessingOutputNumber(name, tr(description)))
        self.addOutput(QgsProcessingOutputString("DEVICE_USED", tr("Device used")))

    def model_argument(self, parameters: Dict[str, Any], context: QgsProcessingContext) -> str:
        """The engine's ``model`` argument: ``"default"`` or an existing model file.

        Raises:
            QgsProcessingException: If no default model is shipped and none is given, or the
                file cannot be found.
        """
        text = (self.parameterAsFile(parameters, self.MODEL, context) or "").strip()
        if not text:
            default = engine_module("uniadrs_engine.model.default")
            if not default.has_default_model():
                raise QgsProcessingException(
                    f"No default model is shipped with this installation (expected at "
                    f"{default.default_model_path()}). Give a UniADRS model file (.safetensors) "
                    "in the 'Model file' parameter, e.g. one trained with 'Train UniADRS model'."
                )
            return default.DEFAULT_MODEL_NAME
        path = Path(text).expanduser()
        if not path.is_file() and path.parent == Path("."):
            folder = settings.model_folder()
            if (folder / text).is_file():
                return str(folder / text)
            raise QgsProcessingException(
                f"Model file not found: {text} (not a path, and not in the model folder {folder})"
            )
        if not path.is_file():
            raise QgsProcessingException(f"Model file not found: {path}")
        return str(path)

    def execute(
        self,
        parameters: Dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> Dict[str, Any]:
        """Scores the raster with the engine and returns the outputs."""
        input_path = self.raster_path(parameters, self.INPUT, context)
        output_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        preset_index = self.parameterAsEnum(parameters, self.PRESET, context)
        presets = getattr(self, "_presets", None) or preset_choices()
        self.require(0 <= preset_index < len(presets), f"Modality preset: no choice {preset_index}")
        object_size = (
            None
            if parameters.get(self.OBJECT_SIZE) in (None, "")
            else self.parameterAsDouble(parameters, self.OBJECT_SIZE, context)
        )
        size_units = SIZE_UNITS[self.parameterAsEnum(parameters, self.OBJECT_SIZE_UNITS, context)][
            0
        ]
        halo = parameters.get(self.HALO)
        rx_weight = parameters.get(self.RX_WEIGHT)
        fusion_power = parameters.get(self.FUSION_POWER)
        tile = self.parameterAsInt(parameters, self.TILE, context)
        bands = self.band_list(parameters, self.BANDS, context)
        detector = engine_module("uniadrs_engine.inference.detector")
        options = detector.DetectionOptions(
            model=self.model_argument(parameters, context),
            bands=bands,
            preset=presets[preset_index][0],
            scales=parse_scales(self.parameterAsString(parameters, self.SCALES, context) or ""),
            object_size=object_size if size_units == "pixels" else None,
            object_size_map_units=object_size if size_units == "map_units" else None,
            tile=tile or None,
            halo=None
            if halo in (None, "")
            else self.parameterAsInt(parameters, self.HALO, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=self.device(parameters, context),
            memory_mb=self.memory_mb(parameters, context),
            rx_weight=None
            if rx_weight in (None, "")
            else self.parameterAsDouble(parameters, self.RX_WEIGHT, context),
            fusion_power=None
            if fusion_power in (None, "")
            else self.parameterAsDouble(parameters, self.FUSION_POWER, context),
            networks=self.number_list(parameters, self.NETWORKS, context, "network"),
            normalisation_scope=STATISTICS_SCOPES[
                self.parameterAsEnum(parameters, self.STATISTICS, context)
            ][0],
            views=VIEW_CHOICES[self.parameterAsEnum(parameters, self.VIEWS, context)][0],
            nodata=self.nodata_rule(parameters, self.INPUT, bands, context, feedback),
            crs=self.layer_crs(parameters, self.INPUT, context, feedback),
        )
        feedback.pushInfo(
            f"UniADRS: preset {options.preset}, device {options.device}, "
            f"memory budget {options.memory_mb} MB"
        )
        progress, is_cancelled = self.callbacks(feedback)
        report = detector.detect_raster(
            input_path, output_path, options, progress=progress, is_cancelled=is_cancelled
        )
        feedback.pushInfo(f"Model: {report.model_summary}; {report.describe_networks()}")
        left_out = report.describe_bands_left_out()
        if left_out:
            feedback.pushWarning(f"UniADRS: {left_out}")
        feedback.pushInfo(
            f"Device: {report.device}; scales: {', '.join(f'{s:g}' for s in report.scales)}"
            + (f" + global RX (weight {report.rx_weight:g})" if report.rx_weight > 0 else "")
            + (f"; fusion power {report.fusion_power:g}" if report.fusion_power != 1 else "")
            + (f"; {report.views} views a tile" if report.views > 1 else "")
            + f"; {report.tile_count} tile(s) in {report.seconds:.1f} s"
        )
        feedback.pushInfo(
            f"Scores: min {report.score_min:.4g}, max {report.score_max:.4g}, "
            f"mean {report.score_mean:.4g} over {report.valid_pixels} valid pixels"
        )
        attach_styler(
            context,
            output_path,
            style_score_layer,
        )
        return {
            self.OUTPUT: output_path,
            "SCORE_MIN": report.score_min,
            "SCORE_MAX": report.score_max,
            "SCORE_MEAN": report.score_mean,
            "TILE_COUNT": report.tile_count,
            "SECONDS": report.seconds,
            "DEVICE_USED": str(report.device),
        }
