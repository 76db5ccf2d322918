"""Runs detectors over the scenes of a manifest, times them, evaluates them, writes reports.

For each scene and detector, the detector writes a score raster, its wall-clock time is
recorded (evaluation excluded), and :func:`~uniadrs_engine.metrics.evaluation.evaluate_rasters`
gives the pixel AUC and the 3D-ROC family against the scene's mask. Once every scene of a
modality is done, the pooled AUC of each detector over that modality is computed from the
score rasters, which are then deleted (unless kept). Written to the output folder:

* ``results.csv``: one row per scene and detector;
* ``pooled.csv``: the pooled AUC per modality and detector;
* ``results.md``: per modality (mean and pooled AUC, times), global RX checked against the
  manifest's ``rx_auc``, the settings, and the per-scene table;
* ``figure.png`` (optional): image | mask | score maps of one scene per modality.

A detector that fails on a scene with a user-facing error is recorded with that error and
the run goes on.

Example:
    >>> results = run_benchmark("benchmarks/manifest.json", ("rx-global",), "out")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from uniadrs_engine.benchmark.detectors import DETECTOR_NAMES, make_detectors
from uniadrs_engine.benchmark.manifest import BenchmarkScene, load_manifest
from uniadrs_engine.benchmark.report import (
    save_benchmark_figure,
    write_pooled_csv,
    write_results_csv,
    write_results_markdown,
)
from uniadrs_engine.errors import CancelledError, InputError, UniadrsError
from uniadrs_engine.metrics.evaluation import evaluate_rasters, pooled_auc_rasters
from uniadrs_engine.metrics.roc3d import Roc3dResult
from uniadrs_engine.progress import CancelCheck, ProgressCallback, ProgressReporter
from uniadrs_engine.raster.writer import check_not_an_input, work_folder

PathLike = Union[str, Path]

logger = logging.getLogger(__name__)


@dataclass
class SceneResult:
    """One detector on one scene.

    Attributes:
        modality: The scene's modality.
        scene: The scene's name.
        detector: The detector's name.
        settings: What the detector ran with (preset, windows).
        seconds: Wall-clock time of the detector (NaN if it failed).
        auc: Pixel AUC-ROC (NaN if it failed).
        manifest_rx_auc: The manifest's global-RX AUC of the scene, or None.
        roc3d: The 3D-ROC family, or None if it failed.
        n_pixels: Pixels evaluated.
        n_anomalies: Anomaly pixels among them.
        error: The error message if the detector or the evaluation failed, else None.
        score_path: The kept score raster, or None.
    """

    modality: str
    scene: str
    detector: str
    settings: str
    seconds: float
    auc: float
    manifest_rx_auc: Optional[float]
    roc3d: Optional[Roc3dResult]
    n_pixels: int = 0
    n_anomalies: int = 0
    error: Optional[str] = None
    score_path: Optional[str] = None

    @property
    def ok(self) -> bool:
        """Whether the detector ran and was evaluated."""
        return self.error is None and math.isfinite(self.auc)


def _figure_scene_keys(scenes: Sequence[BenchmarkScene], count: int) -> List[str]:
    """The first scene of each modality, up to ``count`` scenes."""
    keys: Dict[str, str] = {}
    for scene in scenes:
        keys.setdefault(scene.modality, scene.key)
    return list(keys.values())[:count]


def run_benchmark(
    manifest_path: PathLike,
    detectors: Sequence[str] = DETECTOR_NAMES,
    out_dir: PathLike = "benchmark-results",
    progress: Optional[ProgressCallback] = None,
    model: str = "default",
    scenes: Optional[str] = None,
    *,
    is_cancelled: Optional[CancelCheck] = None,
    device: str = "auto",
    memory_mb: float = 1024,
    figure: bool = True,
    figure_scenes: int = 4,
    keep_scores: bool = False,
    report_path: Optional[PathLike] = None,
) -> List[SceneResult]:
    """Runs detectors over a manifest's scenes and writes ``results.csv`` / ``results.md``.

    Args:
        manifest_path: Manifest JSON (paths inside are relative to its folder).
        detectors: Names among ``uniadrs``, ``rx-global``, ``rx-local``.
        out_dir: Output folder (created if needed).
        progress: Optional ``progress(fraction, message)``.
        model: Model file or ``"default"`` for the ``uniadrs`` detector.
        scenes: Optional glob(s) on ``modality/name`` or ``name``, comma-separated.
        is_cancelled: Optional ``is_cancelled() -> bool``.
        device: Torch device for the ``uniadrs`` detector.
        memory_mb: Memory budget passed to the detectors and the evaluation.
        figure: Also draw ``figure.png``.
        figure_scenes: Scenes in the figure (the first of each modality).
        keep_scores: Keep every score raster under ``out_dir/scores/<detector>/``; otherwise
            they are deleted after evaluation.
        report_path: Also write the Markdown report there (e.g. ``docs/BENCHMARKS.md``),
            with the figure linked relative to it.

    Returns:
        One :class:`SceneResult` per scene and detector, scene by scene.

    Raises:
        InputError: Bad manifest, filter or detector list; ModelFileError / DeviceError
            from loading the model.
        CancelledError: If cancelled (the reports are not written).
    """
    scene_list = load_manifest(manifest_path, scenes)
    if report_path is not None:
        scene_files = [path for scene in scene_list for path in (scene.image_path, scene.mask_path)]
        check_not_an_input(report_path, manifest_path, *scene_files)
    detector_list = make_detectors(list(detectors), model=model, device=device, memory_mb=memory_mb)
    out_dir = Path(out_dir)  # made once the model loads: a bad model leaves no empty folder
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {out_dir}: {error}") from None
    reporter = ProgressReporter(progress=progress, is_cancelled=is_cancelled)
    figure_keys = set(_figure_scene_keys(scene_list, figure_scenes)) if figure else set()
    results: List[SceneResult] = []
    pooled: Dict[Tuple[str, str], float] = {}
    remaining = Counter(scene.modality for scene in scene_list)
    pending: Dict[str, List[Tuple[SceneResult, Path, Path]]] = {}
    steps = len(scene_list) * len(detector_list)
    with work_folder(out_dir, "benchmark") as work_dir:
        try:
            for scene_index, scene in enumerate(scene_list):
                for detector_index, detector in enumerate(detector_list):
                    step = scene_index * len(detector_list) + detector_index
                    step_reporter = reporter.sub(step / steps, (step + 1) / steps)
                    folder = (out_dir / "scores" / detector.name) if keep_scores else work_dir
                    folder.mkdir(parents=True, exist_ok=True)
                    score_path = folder / f"{detector.name}__{scene.modality}__{scene.name}.tif"
                    if keep_scores:
                        score_path = folder / f"{scene.modality}__{scene.name}.tif"
                    result = _run_one(detector, scene, score_path, step_reporter, memory_mb)
                    results.append(result)
                    pending.setdefault(scene.modality, []).append(
                        (result, score_path, scene.mask_path)
                    )
                    logger.info(
                        "%s %s: AUC %.4f in %.2f s",
                        detector.name,
                        scene.key,
                        result.auc,
                        result.seconds,
                    )
                remaining[scene.modality] -= 1
                if remaining[scene.modality] == 0:
                    finished = pending.pop(scene.modality, [])
                    pooled.update(_pooled_aucs(scene.modality, finished, memory_mb, reporter))
                    for result, score_path, _ in finished:
                        keep = keep_scores or f"{result.modality}/{result.scene}" in figure_keys
                        if not keep and score_path.exists():
                            score_path.unlink()
                            result.score_path = None
            reporter.update(1.0, "writing reports")
            write_results_csv(results, out_dir / "results.csv")
            write_pooled_csv(pooled, results, out_dir / "pooled.csv")
            write_results_markdown(
                results,
                out_dir / "results.md",
                manifest_path=str(manifest_path),
                detectors=[detector.name for detector in detector_list],
                pooled=pooled,
            )
            if figure and figure_keys:
                save_benchmark_figure(
                    [scene for scene in scene_list if scene.key in figure_keys],
                    results,
                    out_dir / "figure.png",
                )
            if report_path is not None:
                report = Path(report_path)
                report.parent.mkdir(parents=True, exist_ok=True)
                figure_link = None
                if figure and figure_keys:
                    figure_link = os.path.relpath(out_dir / "figure.png", report.resolve().parent)
                write_results_markdown(
                    results,
                    report,
                    manifest_path=str(manifest_path),
                    detectors=[detector.name for detector in detector_list],
                    pooled=pooled,
                    figure=figure_link,
                )
        finally:
            if not keep_scores:
                for result in results:
                    result.score_path = None
    return results


def _pooled_aucs(
    modality: str,
    finished: Sequence[Tuple[SceneResult, Path, Path]],
    memory_mb: float,
    reporter: ProgressReporter,
) -> Dict[Tuple[str, str], float]:
    """Pooled AUC per detector over the successfully evaluated scenes of one modality."""
    pooled: Dict[Tuple[str, str], float] = {}
    detectors = list(dict.fromkeys(result.detector for result, _, _ in finished))
    for detector in detectors:
        pairs = [
            (score_path, mask_path)
            for result, score_path, mask_path in finished
            if result.detector == detector and result.ok and score_path.exists()
        ]
        if not pairs:
            continue
        try:
            pooled[(modality, detector)] = pooled_auc_rasters(
                pairs,
                memory_mb=memory_mb,
                progress=ProgressReporter(is_cancelled=reporter.is_cancelled),
            )
        except CancelledError:
            raise
        except UniadrsError as error:
            logger.warning("pooled AUC of %s on %s failed: %s", detector, modality, error)
    return pooled


def _run_one(
    detector: object,
    scene: BenchmarkScene,
    score_path: Path,
    reporter: ProgressReporter,
    memory_mb: float,
) -> SceneResult:
    """Runs one detector on one scene and evaluates it."""
    name = detector.name  # type: ignore[attr-defined]
    settings = detector.describe(scene.modality)  # type: ignore[attr-defined]
    reporter.update(0.0, f"{name} on {scene.key}")
    started = time.perf_counter()
    try:
        detector.run(  # type: ignore[attr-defined]
            scene,
            score_path,
            progress=reporter.sub(0.0, 0.9).update,
            is_cancelled=reporter.is_cancelled,
        )
        seconds = time.perf_counter() - started
        evaluation = evaluate_rasters(
            score_path, scene.mask_path, memory_mb=memory_mb, progress=reporter.sub(0.9, 1.0)
        )
    except CancelledError:
        raise
    except UniadrsError as error:
        logger.warning("%s on %s failed: %s", name, scene.key, error)
        return SceneResult(
            modality=scene.modality,
            scene=scene.name,
            detector=name,
            settings=settings,
            seconds=math.nan,
            auc=math.nan,
            manifest_rx_auc=scene.rx_auc,
            roc3d=None,
            error=str(error),
        )
    return SceneResult(
        modality=scene.modality,
        scene=scene.name,
        detector=name,
        settings=settings,
        seconds=seconds,
        auc=evaluation.auc,
        manifest_rx_auc=scene.rx_auc,
        roc3d=evaluation.roc3d,
        n_pixels=evaluation.n_pixels,
        n_anomalies=evaluation.n_anomalies,
        score_path=str(score_path),
    )
