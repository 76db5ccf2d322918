"""Compares sets of input scales on held-out simulated validation samples, through inference.

Every validation sample that a preset would score (``--min-bands``; by default the samples of
5 bands or more, those the hyperspectral preset scores) is written as a GeoTIFF the way a
real raster holds it (a spectral sample's distinct source bands, in source order) and scored
by :func:`~uniadrs_engine.inference.detector.detect_raster` at each single scale, exactly as
``uniadrs detect --scale S`` scores a raster (whitening over the raster, tiles with their
mirrored halo, band repetition). Each scale set's fused map is then built from those maps by
the rule the detector fuses scales with (averaged ranks,
:func:`~uniadrs_engine.inference.fusion.fuse_score_arrays`), and scored against the labels.
A candidate may also name its tiling, ``SCALES@tile=T@halo=H`` (network input pixels, as
``uniadrs detect --tile T --halo H``; the detector's defaults otherwise), e.g. METHOD §7's
local hyperspectral tiles ``2.5@tile=48@halo=40``, and its input statistics,
``@norm=tile`` (each tile's window normalised by its own, ``uniadrs detect
--normalisation-scope tile``), its test-time views, ``@views=4`` (``uniadrs detect --views
4``), and join parts with ``+`` to fuse all their passes, e.g.
``1,2+2.5@tile=48@halo=40``. ``--preset`` names the preset whose other settings (the model
card's networks for it, its tiling, statistics, views and RX weight) apply wherever a
candidate names none: ``auto`` by default (the ``hyperspectral`` settings for samples of 5
bands or more), ``visible`` to score visible samples as the visible preset does. Never run
on benchmark scenes: scale presets are chosen on simulated data. ``--fusion-powers 1 4`` scores
every candidate with each fusion power (the detector's ``--fusion-power``; a column ``S p=4``
for powers other than 1) from the same maps. ``--per-sample FILE`` also
writes every sample's AUC per set and candidate as JSON, which ``scripts/paired_bootstrap.py``
compares between two runs (two models scored on the same samples).

Usage:
    .venv/bin/python scripts/compare_scales.py \\
        --model resources/models/uniadrs_default.safetensors \\
        --configs configs/experiments/validation_small_spectra.yaml@seed=20261127 \\
        --scale-sets 1,2 2,4 1,2,4 2.5@tile=48@halo=40 [--samples 96] [--preset auto] \\
        [--fusion-powers 1 4] [--per-sample scores.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from compare_models import validation_samples
from osgeo import gdal

from uniadrs_engine.errors import InputError
from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
from uniadrs_engine.inference.fusion import check_fusion_power, fuse_score_arrays
from uniadrs_engine.inference.presets import HYPERSPECTRAL_MIN_BANDS, check_scales
from uniadrs_engine.inference.views import VIEW_COUNTS
from uniadrs_engine.model.model_file import LoadedModel, load_model
from uniadrs_engine.raster.normalisation import NORMALISATION_SCOPES
from uniadrs_engine.simulation.sample import SimulatedSample
from uniadrs_engine.training.validation import sample_auc, summarise_aucs

gdal.UseExceptions()

#: Value written where a sample holds no data (declared as the rasters' nodata).
NODATA = -9999.0


def raster_bands(sample: SimulatedSample) -> np.ndarray:
    """The sample as a raster holds it: a spectral sample's distinct source bands in order."""
    if sample.band_indices is None:
        return np.asarray(sample.image, dtype=np.float32)
    _, first = np.unique(np.asarray(sample.band_indices), return_index=True)
    return np.asarray(sample.image[first], dtype=np.float32)


def write_raster(sample: SimulatedSample, path: Path) -> None:
    """Writes a sample's raster bands as a float32 GeoTIFF, invalid pixels as nodata."""
    bands = raster_bands(sample)
    if sample.valid is not None:
        bands = np.where(sample.valid[None], bands, np.float32(NODATA))
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), bands.shape[2], bands.shape[1], bands.shape[0], gdal.GDT_Float32
    )
    for index, band in enumerate(bands, start=1):
        raster_band = dataset.GetRasterBand(index)
        raster_band.SetNoDataValue(NODATA)
        raster_band.WriteArray(band)
    dataset = None


def read_score(path: Path) -> np.ndarray:
    """Reads a score GeoTIFF's first band."""
    dataset = gdal.Open(str(path))
    try:
        return dataset.GetRasterBand(1).ReadAsArray().astype(np.float32)
    finally:
        dataset = None


class Pass(NamedTuple):
    """One detector pass: a single scale with a tiling, a normalisation scope and views.

    None stands for the detector's default.
    """

    scale: float
    tile: Optional[int]
    halo: Optional[int]
    norm: Optional[str] = None
    views: Optional[int] = None


class Candidate(NamedTuple):
    """A scale set with its tiling, as given on the command line."""

    name: str
    passes: Tuple[Pass, ...]


def parse_scale_set(text: str) -> Candidate:
    """``"1,2"``, ``"2.5@tile=48@halo=40@norm=tile@views=4"`` or parts joined by ``+`` (all
    fused).

    Scales are checked as the detector checks them; whatever is wrong is an
    :class:`argparse.ArgumentTypeError`, which argparse reports in one line.
    """
    passes: List[Pass] = []
    for part in text.split("+"):
        scales_text, *settings = part.split("@")
        tiling: Dict[str, Optional[int]] = {"tile": None, "halo": None, "views": None}
        norm: Optional[str] = None
        for setting in settings:
            key, _, value = setting.partition("=")
            if key == "norm" and value in NORMALISATION_SCOPES:
                norm = value
                continue
            valid_views = key != "views" or value in {str(count) for count in VIEW_COUNTS}
            if key not in tiling or not value.isdigit() or not valid_views:
                raise argparse.ArgumentTypeError(
                    f"expected tile=N, halo=N, norm={'|'.join(NORMALISATION_SCOPES)} or "
                    f"views={'|'.join(str(count) for count in VIEW_COUNTS)}, got {setting!r}"
                )
            tiling[key] = int(value)
        try:
            scales = check_scales([float(value) for value in scales_text.split(",")])
        except (InputError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"{part!r}: {error}") from error
        passes += [
            Pass(scale, tiling["tile"], tiling["halo"], norm, tiling["views"]) for scale in scales
        ]
    if len(set(passes)) != len(passes):
        raise argparse.ArgumentTypeError(f"a pass is named twice in {text!r}")
    return Candidate(text, tuple(passes))


def score_passes(
    samples: Sequence[SimulatedSample],
    model: LoadedModel,
    passes: Sequence[Pass],
    folder: Path,
    preset: str = "auto",
) -> Dict[Pass, List[np.ndarray]]:
    """Each sample's score map for each detector pass, from ``detect_raster``.

    Args:
        samples: The validation samples.
        model: The model that scores them.
        passes: The detector passes.
        folder: Where the samples' rasters and score maps are written.
        preset: The preset (built-in or the model card's) whose settings apply where a pass
            names none: its networks, tiling, statistics, views and RX weight; never its
            scales, which the pass names.
    """
    maps: Dict[Pass, List[np.ndarray]] = {item: [] for item in passes}
    for index, sample in enumerate(samples):
        image_path = folder / f"sample_{index:04d}.tif"
        write_raster(sample, image_path)
        for number, item in enumerate(passes):
            score_path = folder / f"score_{index:04d}_{number}.tif"
            options = DetectionOptions(
                model=model,
                preset=preset,
                scales=[item.scale],
                tile=item.tile,
                halo=item.halo,
                normalisation_scope=item.norm,
                views=item.views,
                device="cpu",
            )
            detect_raster(image_path, score_path, options)
            maps[item].append(read_score(score_path))
    return maps


def fused(
    samples: Sequence[SimulatedSample],
    maps: Dict[Pass, List[np.ndarray]],
    candidate: Candidate,
    power: float = 1.0,
) -> List[np.ndarray]:
    """Each sample's map for a candidate: ranks over its valid pixels, (power) averaged."""
    result = []
    for index, sample in enumerate(samples):
        per_scale = [maps[item][index] for item in candidate.passes]
        result.append(
            per_scale[0]
            if len(per_scale) == 1
            else fuse_score_arrays(per_scale, sample.valid, power=power)
        )
    return result


def column_name(candidate: Candidate, power: float) -> str:
    """A candidate's name with its fusion power, ``"0.5,1 p=4"`` (the name alone for 1)."""
    return candidate.name if power == 1.0 else f"{candidate.name} p={power:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--configs", nargs="+", required=True)
    parser.add_argument("--scale-sets", nargs="+", required=True, type=parse_scale_set)
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--min-bands", type=int, default=HYPERSPECTRAL_MIN_BANDS)
    parser.add_argument(
        "--preset", default="auto", help="preset whose networks and settings apply (auto)"
    )
    parser.add_argument(
        "--fusion-powers",
        nargs="+",
        type=float,
        default=[1.0],
        help="fusion powers each candidate is scored with (1: averaged ranks)",
    )
    parser.add_argument(
        "--per-sample", help="also write every sample's AUC per set and candidate (JSON)"
    )
    args = parser.parse_args()
    powers = [check_fusion_power(power) for power in args.fusion_powers]
    columns = [
        (column_name(candidate, power), candidate, power)
        for candidate in args.scale_sets
        for power in powers
    ]
    model = load_model(args.model)
    passes = sorted({item for candidate in args.scale_sets for item in candidate.passes}, key=str)
    names = [name for name, _, _ in columns]
    print("| validation set | samples | " + " | ".join(f"scales {n}" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    totals: Dict[str, List[float]] = {name: [] for name in names}
    per_sample: Dict[str, Dict[str, List[float]]] = {}
    for config_path in args.configs:
        samples = [
            sample
            for sample in validation_samples(config_path, args.samples)
            if raster_bands(sample).shape[0] >= args.min_bands
        ]
        with tempfile.TemporaryDirectory(prefix="uniadrs-scales-") as folder:
            maps = score_passes(samples, model, passes, Path(folder), args.preset)
        row = []
        for name, candidate, power in columns:
            aucs = [
                sample_auc(score, sample.labels)
                for sample, score in zip(samples, fused(samples, maps, candidate, power))
            ]
            per_sample.setdefault(config_path, {})[name] = aucs
            auc = summarise_aucs(samples, aucs)["auc"]
            totals[name].append(auc)
            row.append(f"{auc:.4f}")
        print(f"| {config_path} | {len(samples)} | " + " | ".join(row) + " |", flush=True)
    means = [f"{np.mean(totals[name]):.4f}" for name in names]
    print("| mean | | " + " | ".join(means) + " |")
    if args.per_sample:
        record = {"model": args.model, "preset": args.preset, "sets": per_sample}
        Path(args.per_sample).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
