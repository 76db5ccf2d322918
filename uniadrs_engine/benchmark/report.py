"""Benchmark reports: ``results.csv``, ``results.md`` and a figure of a few scenes.

Example:
    >>> write_results_csv(results, Path("out/results.csv"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from uniadrs_engine.benchmark.manifest import BenchmarkScene
from uniadrs_engine.figures import agg_figure, save_png
from uniadrs_engine.raster.reader import band_nodata, quiet_gdal_errors
from uniadrs_engine.raster.writer import write_text_file

if TYPE_CHECKING:  # pragma: no cover
    from uniadrs_engine.benchmark.runner import SceneResult

#: Largest |AUC - manifest rx_auc| accepted for global RX (the manifest rounds to 1e-4).
RX_AUC_TOLERANCE = 1e-3

#: Columns of results.csv, in order.
CSV_COLUMNS = (
    "modality",
    "scene",
    "detector",
    "auc",
    "seconds",
    "manifest_rx_auc",
    "auc_dt",
    "auc_ft",
    "td",
    "bs",
    "odp",
    "tdbs",
    "snpr",
    "n_pixels",
    "n_anomalies",
    "settings",
    "error",
)

#: Largest side of the thumbnails in the figure.
THUMBNAIL_SIZE = 256


def _number(value: Optional[float], digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.{digits}f}"


def write_results_csv(results: Sequence[SceneResult], path: Path) -> Path:
    """Writes one row per scene and detector (see :data:`CSV_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in results:
        family = result.roc3d.as_dict() if result.roc3d is not None else {}
        writer.writerow(
            [
                result.modality,
                result.scene,
                result.detector,
                _number(result.auc, 6),
                _number(result.seconds, 3),
                _number(result.manifest_rx_auc, 4),
                *(
                    _number(family.get(name), 6)
                    for name in ("auc_dt", "auc_ft", "td", "bs", "odp", "tdbs", "snpr")
                ),
                result.n_pixels,
                result.n_anomalies,
                result.settings,
                result.error or "",
            ]
        )
    write_text_file(path, buffer.getvalue())
    return path


def write_pooled_csv(
    pooled: Dict[Tuple[str, str], float], results: Sequence[SceneResult], path: Path
) -> Path:
    """Writes ``modality, detector, pooled_auc, scenes`` rows (scenes = those pooled)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("modality", "detector", "pooled_auc", "scenes"))
    for (modality, detector), value in pooled.items():
        count = sum(
            1
            for result in results
            if (result.modality, result.detector) == (modality, detector) and result.ok
        )
        writer.writerow((modality, detector, _number(value, 6), count))
    write_text_file(path, buffer.getvalue())
    return path


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _mean_auc(results: Sequence[SceneResult]) -> str:
    good = [result.auc for result in results if result.ok]
    if not good:
        return "—"
    text = f"{np.mean(good):.4f}"
    return text if len(good) == len(results) else f"{text} ({len(good)}/{len(results)})"


def _times(results: Sequence[SceneResult]) -> str:
    good = [result.seconds for result in results if result.ok]
    if not good:
        return "—"
    return f"{np.sum(good):.1f} / {np.mean(good):.2f}"


def _rx_check_lines(results: Sequence[SceneResult]) -> List[str]:
    compared = [
        result
        for result in results
        if result.detector == "rx-global" and result.ok and result.manifest_rx_auc is not None
    ]
    if not compared:
        return []
    differences = np.array([result.auc - result.manifest_rx_auc for result in compared])
    worst = int(np.argmax(np.abs(differences)))
    off = [
        result
        for result, difference in zip(compared, differences)
        if abs(difference) > RX_AUC_TOLERANCE
    ]
    lines = [
        "## Global RX against the manifest's `rx_auc`",
        "",
        f"{len(compared)} scenes compared: mean |difference| {np.mean(np.abs(differences)):.2e}, "
        f"largest {differences[worst]:+.2e} ({compared[worst].modality}/{compared[worst].scene}).",
    ]
    if off:
        lines.append(
            f"Scenes off by more than {RX_AUC_TOLERANCE}: "
            + ", ".join(
                f"{result.modality}/{result.scene} ({result.auc:.4f} vs "
                f"{result.manifest_rx_auc:.4f})"
                for result in off
            )
            + "."
        )
    else:
        lines.append(f"Every scene is within {RX_AUC_TOLERANCE}.")
    return lines + [""]


def write_results_markdown(
    results: Sequence[SceneResult],
    path: Path,
    manifest_path: str = "",
    detectors: Optional[Sequence[str]] = None,
    pooled: Optional[Dict[Tuple[str, str], float]] = None,
    figure: Optional[str] = None,
) -> Path:
    """Writes the per-modality summary, the RX check, the settings and the per-scene table.

    Args:
        results: One result per scene and detector.
        path: The Markdown file.
        manifest_path: Shown in the header.
        detectors: Column order (default: as they appear in ``results``).
        pooled: Optional pooled AUC per ``(modality, detector)``.
        figure: Optional link (relative to ``path``) of the figure to show below the header.
    """
    detectors = list(detectors or dict.fromkeys(result.detector for result in results))
    modalities = list(dict.fromkeys(result.modality for result in results))
    scenes = list(dict.fromkeys((result.modality, result.scene) for result in results))
    by_key: Dict[Tuple[str, str, str], SceneResult] = {
        (result.modality, result.scene, result.detector): result for result in results
    }

    def select(modality: Optional[str], detector: str) -> List[SceneResult]:
        return [
            result
            for result in results
            if result.detector == detector and (modality is None or result.modality == modality)
        ]

    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Benchmark results",
        "",
        f"Manifest `{manifest_path}`, {len(scenes)} scenes, detectors "
        f"{', '.join(detectors)}; run {stamp}. Pixel AUC-ROC with anomalies positive "
        "(exact, as scikit-learn's `roc_auc_score`).",
        "",
    ]
    if figure:
        lines += [f"![Images, masks and score maps of a few scenes]({figure})", ""]
    lines += [
        "## Mean pixel AUC per modality",
        "",
    ]
    rows = []
    for modality in [*modalities, None]:
        count = len({scene for scene in scenes if modality is None or scene[0] == modality})
        rows.append(
            [
                modality or "**all**",
                str(count),
                *(_mean_auc(select(modality, detector)) for detector in detectors),
            ]
        )
    lines += _table(["modality", "scenes", *detectors], rows) + [""]
    if pooled:
        lines += [
            "## Pooled pixel AUC per modality",
            "",
            "All pixels of all scenes of a modality ranked together (score scales matter).",
            "",
        ]
        rows = [
            [modality, *(_number(pooled.get((modality, detector))) for detector in detectors)]
            for modality in modalities
        ]
        lines += _table(["modality", *detectors], rows) + [""]
    lines += ["## Detector time per modality (seconds: total / mean per scene)", ""]
    rows = [
        [modality or "**all**", *(_times(select(modality, detector)) for detector in detectors)]
        for modality in [*modalities, None]
    ]
    lines += _table(["modality", *detectors], rows) + [""]
    lines += _rx_check_lines(results)
    lines += ["## Settings", ""]
    settings_rows = []
    for detector in detectors:
        for modality in modalities:
            chosen = select(modality, detector)
            if chosen:
                settings_rows.append([detector, modality, chosen[0].settings])
    lines += _table(["detector", "modality", "settings"], settings_rows) + [""]
    lines += ["## Per scene", ""]
    rows = []
    for modality, scene in scenes:
        row = [modality, scene]
        for detector in detectors:
            result = by_key.get((modality, scene, detector))
            row.append(
                "error"
                if result is not None and not result.ok
                else _number(result.auc)
                if result is not None
                else ""
            )
        manifest_auc = next(
            (
                result.manifest_rx_auc
                for result in results
                if (result.modality, result.scene) == (modality, scene)
            ),
            None,
        )
        row.append(_number(manifest_auc))
        for detector in detectors:
            result = by_key.get((modality, scene, detector))
            row.append(_number(result.seconds, 2) if result is not None else "")
        rows.append(row)
    header = [
        "modality",
        "scene",
        *(f"AUC {name}" for name in detectors),
        "manifest RX",
        *(f"s {name}" for name in detectors),
    ]
    lines += _table(header, rows) + [""]
    failures = [result for result in results if result.error]
    if failures:
        lines += ["## Errors", ""]
        lines += [
            f"- {result.detector} on {result.modality}/{result.scene}: {result.error}"
            for result in failures
        ]
        lines.append("")
    write_text_file(path, "\n".join(lines))
    return path


def _thumbnail(path: Path, bands: Optional[List[int]] = None) -> np.ndarray:
    """Reads a raster decimated to at most :data:`THUMBNAIL_SIZE` pixels a side, ``[C, h, w]``.

    Nodata pixels become NaN.
    """
    with quiet_gdal_errors():
        dataset = gdal.Open(str(path))
        width, height = dataset.RasterXSize, dataset.RasterYSize
        factor = max(1.0, max(width, height) / THUMBNAIL_SIZE)
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        layers = []
        for index in bands or list(range(1, dataset.RasterCount + 1)):
            band = dataset.GetRasterBand(index)
            values = band.ReadAsArray(buf_xsize=size[0], buf_ysize=size[1]).astype(np.float64)
            nodata = band_nodata(band)
            if nodata is not None:
                values[values == nodata] = np.nan
            layers.append(values)
    return np.stack(layers)


def _display_bands(path: Path) -> List[int]:
    """Bands shown for an image: the single band, the first three, or three spread ones."""
    with quiet_gdal_errors():
        count = gdal.Open(str(path)).RasterCount
    if count < 3:
        return [1]
    if count == 3:
        return [1, 2, 3]
    return [max(1, round(count * fraction)) for fraction in (0.75, 0.5, 0.25)]


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    lower, upper = np.percentile(finite, [low, high])
    scaled = (values - lower) / (upper - lower) if upper > lower else values * 0.0
    return np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)


def save_benchmark_figure(
    scenes: Sequence[BenchmarkScene], results: Sequence[SceneResult], path: Path
) -> Optional[Path]:
    """Draws image | mask | score maps (one column per detector) for a few scenes.

    Score maps are those whose ``score_path`` is still present; returns None if there is
    nothing to draw.
    """
    detectors = list(dict.fromkeys(result.detector for result in results))
    if not scenes:
        return None
    columns = 2 + len(detectors)
    figure = agg_figure(2.4 * columns, 2.5 * len(scenes))
    axes = figure.subplots(len(scenes), columns, squeeze=False)
    for row, scene in enumerate(scenes):
        image = _thumbnail(scene.image_path, _display_bands(scene.image_path))
        shown = np.moveaxis(np.stack([_stretch(band, 2, 98) for band in image]), 0, -1)
        axes[row, 0].imshow(shown if shown.shape[-1] == 3 else shown[..., 0], cmap="gray")
        axes[row, 0].set_ylabel(f"{scene.modality}\n{scene.name[:24]}", fontsize=7)
        axes[row, 1].imshow(_thumbnail(scene.mask_path)[0] > 0, cmap="gray")
        for column, detector in enumerate(detectors, start=2):
            result = next(
                (
                    item
                    for item in results
                    if item.detector == detector
                    and (item.modality, item.scene) == (scene.modality, scene.name)
                ),
                None,
            )
            axis = axes[row, column]
            if result is not None and result.score_path and Path(result.score_path).exists():
                axis.imshow(_stretch(_thumbnail(Path(result.score_path))[0], 1, 99.5), cmap="magma")
                axis.set_title(f"{detector}: AUC {result.auc:.3f}", fontsize=7)
            else:
                axis.set_title(f"{detector}: no map", fontsize=7)
        if row == 0:
            axes[row, 0].set_title("image", fontsize=8)
            axes[row, 1].set_title("mask", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    return save_png(figure, path)
