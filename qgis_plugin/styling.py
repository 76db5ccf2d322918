"""Default styles of the plugin's outputs, applied when Processing loads them into the project.

* Score rasters: single-band pseudocolor with a "hot" heat ramp (black → dark red → red →
  orange → pale yellow) stretched from the lowest to the highest score; nodata transparent.
* Mask rasters: anomalies (1) opaque red, everything else transparent.
* Anomaly polygons: translucent red fill with a red outline.

Styles reach a layer through a :class:`LayerStyler`, a
``QgsProcessingLayerPostProcessorInterface`` that Processing calls in the main thread once it
has loaded the output (``processAlgorithm`` never adds layers to the project itself). The
same happens for a model's final outputs, because the model's child algorithm attaches the
styler to the output the model loads.

Example:
    >>> attach_styler(context, path, style_mask_layer)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Callable, List, Optional

from qgis.core import (
    QgsColorRampShader,
    QgsFillSymbol,
    QgsMapLayer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

#: The heat ramp: (position in [0, 1], colour).
HEAT_RAMP = (
    (0.0, "#000000"),
    (0.35, "#8b0000"),
    (0.6, "#ff2000"),
    (0.8, "#ffa500"),
    (1.0, "#ffffe0"),
)

ANOMALY_COLOUR = "#ff0000"

LayerStyle = Callable[[QgsMapLayer], None]


#: Share of pixels below the start of the heat ramp: anomalies are rare, so the ramp spans the
#: top 10 % of scores and everything else stays dark (readable at a glance).
SCORE_STRETCH_LOWER_CUT = 0.90


def _score_range(layer: QgsRasterLayer) -> tuple:
    """``(start, end)`` of the heat ramp: the 90th percentile of the scores and their maximum."""
    provider = layer.dataProvider()
    stats = provider.bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
    lower, _ = provider.cumulativeCut(1, SCORE_STRETCH_LOWER_CUT, 1.0)
    if not stats.minimumValue <= lower < stats.maximumValue:
        lower = stats.minimumValue
    return lower, stats.maximumValue


def style_score_layer(
    layer: QgsRasterLayer, minimum: Optional[float] = None, maximum: Optional[float] = None
) -> None:
    """Gives a score raster the heat-ramp pseudocolor style stretched to ``[minimum, maximum]``.

    Args:
        layer: A single-band score raster.
        minimum: Start of the ramp; by default the 90th percentile of the scores.
        maximum: End of the ramp; by default the highest score.
    """
    if minimum is None or maximum is None:
        minimum, maximum = _score_range(layer)
    if not maximum > minimum:
        maximum = minimum + 1.0
    ramp_shader = QgsColorRampShader(minimum, maximum)
    ramp_shader.setColorRampType(QgsColorRampShader.Interpolated)
    ramp_shader.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(
                minimum + position * (maximum - minimum),
                QColor(colour),
                f"{minimum + position * (maximum - minimum):.4g}",
            )
            for position, colour in HEAT_RAMP
        ]
    )
    shader = QgsRasterShader(minimum, maximum)
    shader.setRasterShaderFunction(ramp_shader)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_mask_layer(layer: QgsRasterLayer) -> None:
    """Shows anomaly pixels (value 1) in red and leaves the rest transparent."""
    transparent = QColor(0, 0, 0, 0)
    classes = [
        QgsPalettedRasterRenderer.Class(0, transparent, "background"),
        QgsPalettedRasterRenderer.Class(1, QColor(ANOMALY_COLOUR), "anomaly"),
    ]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    layer.triggerRepaint()


def style_polygon_layer(layer: QgsVectorLayer) -> None:
    """Translucent red fill and a red outline."""
    symbol = QgsFillSymbol.createSimple(
        {
            "color": "255,0,0,60",
            "outline_color": ANOMALY_COLOUR,
            "outline_width": "0.6",
        }
    )
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    layer.triggerRepaint()


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies a style function to an output layer once Processing has loaded it."""

    #: Keeps the Python objects alive: QGIS holds only a C++ pointer to them.
    _alive: List[LayerStyler] = []
    _MAX_ALIVE = 64

    def __init__(self, style: LayerStyle) -> None:
        super().__init__()
        self._style = style

    def postProcessLayer(  # noqa: N802 - QGIS API name
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        """Called by Processing in the main thread after loading ``layer``."""
        if layer is not None and layer.isValid():
            self._style(layer)

    @classmethod
    def keep(cls, styler: LayerStyler) -> LayerStyler:
        """Keeps ``styler`` referenced (the oldest ones are released)."""
        cls._alive.append(styler)
        del cls._alive[: -cls._MAX_ALIVE]
        return styler


def attach_styler(context: QgsProcessingContext, destination: str, style: LayerStyle) -> bool:
    """Styles the output at ``destination`` when Processing loads it into the project.

    Returns:
        True when the output will be loaded (and styled), False otherwise.
    """
    if not context.willLoadLayerOnCompletion(destination):
        return False
    styler = LayerStyler.keep(LayerStyler(style))
    context.layerToLoadOnCompletionDetails(destination).setPostProcessor(styler)
    return True
