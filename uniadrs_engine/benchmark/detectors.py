"""The detectors a benchmark can run: UniADRS (with the modality's preset), global and local RX.

Local RX windows per modality (inner guard / outer window, pixels) were fixed before any run
on the benchmark and are not tuned on it: the guard is about the size of a typical target of
the modality's benchmark sources, the outer window three times the guard.

=========  ==========  ====================================================================
modality   windows     typical target
=========  ==========  ====================================================================
hsi        5 / 15      ABU / HYDICE / San Diego targets: vehicles, aircraft of a few pixels
ir         9 / 27      SIRST small targets: at most 9 x 9 pixels (SPIE small-target size)
sar        31 / 93     HRSID ships: mostly small and medium, up to about 30 pixels
visible    61 / 183    aircraft at 0.5 m: 30-60 m, about 60 pixels
other      7 / 21      :data:`~uniadrs_engine.baselines.rx.DEFAULT_INNER` / ``DEFAULT_OUTER``
=========  ==========  ====================================================================

Example:
    >>> detectors = make_detectors(["rx-global", "rx-local"])
    >>> [detector.name for detector in detectors]
    ['rx-global', 'rx-local']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from uniadrs_engine.baselines.rx import DEFAULT_INNER, DEFAULT_OUTER, rx_raster
from uniadrs_engine.benchmark.manifest import BenchmarkScene
from uniadrs_engine.errors import InputError
from uniadrs_engine.progress import CancelCheck, ProgressCallback

#: Detector names, in the order results list them.
DETECTOR_NAMES: Tuple[str, ...] = ("uniadrs", "rx-global", "rx-local")

#: The UniADRS preset used for each manifest modality.
MODALITY_PRESETS: Dict[str, str] = {
    "hsi": "hyperspectral",
    "ir": "infrared",
    "sar": "sar",
    "visible": "visible",
}

#: Local RX ``(inner, outer)`` windows per modality (see the module docstring).
LOCAL_RX_WINDOWS: Dict[str, Tuple[int, int]] = {
    "hsi": (5, 15),
    "ir": (9, 27),
    "sar": (31, 93),
    "visible": (61, 183),
}


def preset_for(modality: str) -> str:
    """The UniADRS preset for a manifest modality (``auto`` for an unknown one)."""
    return MODALITY_PRESETS.get(modality, "auto")


def local_windows_for(modality: str) -> Tuple[int, int]:
    """The local RX ``(inner, outer)`` windows for a manifest modality."""
    return LOCAL_RX_WINDOWS.get(modality, (DEFAULT_INNER, DEFAULT_OUTER))


@dataclass
class RxDetector:
    """Global or local RX through :func:`~uniadrs_engine.baselines.rx.rx_raster`."""

    name: str
    mode: str
    memory_mb: float = 1024

    def describe(self, modality: str) -> str:
        """A short description of the settings used on a modality."""
        if self.mode == "global":
            return "global RX, all bands"
        inner, outer = local_windows_for(modality)
        return f"local RX, windows {inner}/{outer} px"

    def run(
        self,
        scene: BenchmarkScene,
        output_path: Path,
        progress: Optional[ProgressCallback] = None,
        is_cancelled: Optional[CancelCheck] = None,
    ) -> None:
        """Writes the scene's score raster."""
        inner, outer = local_windows_for(scene.modality) if self.mode == "local" else (None, None)
        rx_raster(
            scene.image_path,
            output_path,
            mode=self.mode,
            inner=inner,
            outer=outer,
            memory_mb=self.memory_mb,
            progress=progress,
            is_cancelled=is_cancelled,
        )


@dataclass
class UniadrsDetector:
    """The UniADRS model through ``inference.detector.detect_raster``, one preset per modality.

    The model is loaded once (:meth:`load`), so per-scene times exclude loading it.
    """

    name: str
    loaded_model: Any
    device: str = "auto"
    memory_mb: float = 1024

    @classmethod
    def load(
        cls, model: str = "default", device: str = "auto", memory_mb: float = 1024
    ) -> UniadrsDetector:
        """Loads the model on the device.

        Raises:
            InputError: If the inference engine is not installed.
            ModelFileError: If the model file is missing or foreign.
            DeviceError: If the device is unavailable.
        """
        try:
            from uniadrs_engine.inference.device import resolve_device
            from uniadrs_engine.model.model_file import load_model
        except ImportError as error:
            raise InputError(f"the uniadrs detector is not available: {error}") from None
        loaded = load_model(model, resolve_device(device))
        return cls(name="uniadrs", loaded_model=loaded, device=device, memory_mb=memory_mb)

    def describe(self, modality: str) -> str:
        """A short description of the settings used on a modality."""
        from uniadrs_engine.inference.presets import get_preset

        card = self.loaded_model.card
        networks = f", {card.member_count} networks" if card.member_count > 1 else ""
        preset = get_preset(preset_for(modality), card.presets)
        rx = f", fused with global RX at weight {preset.rx_weight:g}" if preset.rx_weight else ""
        chosen = (
            f" (networks {', '.join(str(number) for number in preset.networks)})"
            if preset.networks
            else ""
        )
        return (
            f"UniADRS {Path(self.loaded_model.path).name} ('{card.name}' v{card.model_version}"
            f"{networks}), preset {preset.name}{chosen}{rx}"
        )

    def run(
        self,
        scene: BenchmarkScene,
        output_path: Path,
        progress: Optional[ProgressCallback] = None,
        is_cancelled: Optional[CancelCheck] = None,
    ) -> None:
        """Writes the scene's score raster."""
        from uniadrs_engine.inference.detector import DetectionOptions, detect_raster

        options = DetectionOptions(
            model=self.loaded_model,
            preset=preset_for(scene.modality),
            device=self.device,
            memory_mb=int(self.memory_mb),
        )
        detect_raster(scene.image_path, output_path, options, progress, is_cancelled)


def make_detectors(
    names: Sequence[str],
    model: str = "default",
    device: str = "auto",
    memory_mb: float = 1024,
) -> List[Any]:
    """Builds the named detectors (``uniadrs``, ``rx-global``, ``rx-local``).

    Raises:
        InputError: On an unknown or repeated name (or the uniadrs detector's load errors).
    """
    if not names:
        raise InputError("no detector given")
    unknown = [name for name in names if name not in DETECTOR_NAMES]
    if unknown:
        raise InputError(
            f"unknown detector {unknown[0]!r} (expected some of {', '.join(DETECTOR_NAMES)})"
        )
    if len(set(names)) != len(names):
        raise InputError("a detector is listed twice")
    detectors: List[Any] = []
    for name in names:
        if name == "uniadrs":
            detectors.append(UniadrsDetector.load(model, device, memory_mb))
        else:
            detectors.append(RxDetector(name=name, mode=name.split("-")[1], memory_mb=memory_mb))
    return detectors
