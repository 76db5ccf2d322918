"""Writes simulated samples to a folder so that a person can look at them.

:func:`simulate_to_dir` writes, for sample ``i``:

* ``sample_{i:04d}_image.tif``: float32, one band per channel. Spatial samples are exactly
  the array the network is given. Spectral samples are written by default BEFORE the last
  step of METHOD §6 (the random pick of 270 bands with replacement): every usable band of the
  background, in order, so that spectra can be plotted; the network sees 270 bands drawn at
  random from these. ``out_channels=270`` writes the network's exact input instead. Each
  band's description names its source band; the metadata names the kind and background;
* ``sample_{i:04d}_labels.tif``: uint8 labels (0 background, 1 anomaly, 2 ignore, 3 large
  normal) with a colour table, so a GIS shows them at once;

and, once for the run, ``contact_sheet.png`` (the first 16 samples; spectral samples in false
colour from three source bands at 75 %, 50 % and 25 % of the band range, visible ones in RGB
or grey; anomalies outlined in red, large normals in yellow, ignored objects in blue),
``samples.csv`` (one row per sample) and ``simulation.json`` (settings and background
provenance). Files are written to a hidden staging folder inside ``out_dir`` and moved to their
final names only when every sample is done; on error or cancellation nothing is left.

Example:
    >>> simulate_to_dir(["backgrounds/hsi"], "samples", n=8, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from osgeo import gdal
from scipy import ndimage

from uniadrs_engine.errors import InputError
from uniadrs_engine.figures import agg_figure, save_png
from uniadrs_engine.progress import CancelCheck, ProgressCallback, ProgressReporter
from uniadrs_engine.raster.nodata import NodataRule, nodata_provenance
from uniadrs_engine.raster.reader import is_gdal_name
from uniadrs_engine.raster.writer import gdal_write_errors, work_folder
from uniadrs_engine.simulation.backgrounds import BackgroundPool
from uniadrs_engine.simulation.mixer import AnomalySimulator
from uniadrs_engine.simulation.sample import (
    ANOMALY,
    IGNORE,
    LABEL_VALUES,
    LARGE_NORMAL,
    SimulatedSample,
)

gdal.UseExceptions()

CONTACT_SHEET_NAME = "contact_sheet.png"
#: The name of a sample's image or labels file (its number is group 1).
_SAMPLE_FILE = re.compile(r"sample_(\d{4,})_(?:image|labels)\.tif")
INDEX_NAME = "samples.csv"
SETTINGS_NAME = "simulation.json"
#: Samples shown on the contact sheet.
CONTACT_SHEET_SAMPLES = 16

#: Outline colours of the contact sheet, drawn in this order (anomalies on top).
OUTLINE_COLOURS = (
    (IGNORE, (0.1, 0.45, 1.0)),
    (LARGE_NORMAL, (1.0, 0.9, 0.0)),
    (ANOMALY, (1.0, 0.0, 0.0)),
)
#: Colour table of the label rasters (RGBA).
LABEL_COLOURS = {
    0: (0, 0, 0, 255),
    1: (255, 0, 0, 255),
    2: (30, 110, 255, 255),
    3: (255, 230, 0, 255),
}
LABEL_NAMES = {0: "background", 1: "anomaly", 2: "ignore", 3: "large normal"}


def simulate_to_dir(
    background_paths: Sequence[Union[str, Path]],
    out_dir: Union[str, Path],
    n: int,
    seed: int,
    size: int = 128,
    spectral_share: float = 0.5,
    exclude: Sequence[str] = (),
    progress: Optional[ProgressCallback] = None,
    is_cancelled: Optional[CancelCheck] = None,
    out_channels: Optional[int] = None,
    nodata: Optional[NodataRule] = None,
) -> List[Path]:
    """Simulates ``n`` samples from the given backgrounds and writes them to ``out_dir``.

    The object bank is drawn from ``default_rng(seed)`` and the samples from
    ``default_rng([seed, 1])``, so a seed gives the same folder every time.

    Args:
        background_paths: Background rasters or folders (see :class:`BackgroundPool`).
        out_dir: Output folder (created if needed; files of the same names are replaced).
        n: Number of samples (at least 1).
        seed: Random seed.
        size: Side of the samples (a multiple of 8).
        spectral_share: Probability of a spectral sample.
        exclude: Glob patterns of backgrounds to leave out.
        progress: ``progress(fraction, message)``, or None.
        is_cancelled: Returns True to stop, or None.
        out_channels: Bands of spectral samples picked at random as for the network
            (270 in training); None writes every usable band in order.
        nodata: Values that hold no data in the backgrounds besides (or instead of) each
            file's nodata, or None.

    Returns:
        The files written: each sample's image then labels, then the contact sheet, the
        index CSV and the settings JSON.

    Raises:
        InputError: Bad arguments or unusable backgrounds.
        CancelledError: ``is_cancelled`` returned True (nothing is left behind).
    """
    check_sample_count(n)
    check_outside_backgrounds(out_dir, background_paths)
    reporter = ProgressReporter(progress, is_cancelled)
    reporter.update(0.0, "reading backgrounds")
    pool = BackgroundPool.from_paths(background_paths, exclude, nodata=nodata)
    simulator = AnomalySimulator.from_pool(
        pool, size, seed=seed, spectral_share=spectral_share, out_channels=out_channels
    )
    reporter.check_cancelled()
    rng = np.random.default_rng([seed, 1])
    settings = {
        "n": n,
        "seed": seed,
        "size": size,
        "spectral_share": spectral_share,
        "out_channels": out_channels,
        "exclude": list(exclude),
        **nodata_provenance(nodata),  # nothing without a rule
        "simulator": simulator.provenance(),
    }
    return write_samples_to_dir(lambda index: simulator.sample(rng), n, out_dir, settings, reporter)


def check_outside_backgrounds(out_dir: Union[str, Path], backgrounds: Sequence[Any]) -> None:
    """Refuses an output folder inside a background folder, or holding a sample given as one.

    Background folders are searched recursively, so samples written there would be read as
    backgrounds by the next run, and that run would write over them (and delete some).

    Raises:
        InputError: In that case, naming the background.
    """
    target = Path(out_dir).expanduser().resolve()
    for given in backgrounds:
        if is_gdal_name(str(given)):
            continue
        root = Path(given).expanduser().resolve()
        inside_a_folder = target == root or root in target.parents
        a_sample_there = root.parent == target and bool(_SAMPLE_FILE.fullmatch(root.name))
        if inside_a_folder or a_sample_there:
            raise InputError(
                f"the output folder {out_dir} and the background {given} overlap: samples "
                "written there would be read as backgrounds, and written over; choose a "
                "folder outside the backgrounds"
            )


def written_sample_count(written: Sequence[Path]) -> int:
    """How many samples the files a simulation wrote hold (one image file each)."""
    return sum(1 for path in written if _SAMPLE_FILE.fullmatch(path.name) and "_image" in path.name)


def check_sample_count(n: int) -> None:
    """Refuses a sample count below 1 (called before any background is read).

    Raises:
        InputError: ``n`` is below 1.
    """
    if n < 1:
        raise InputError(f"the number of samples must be at least 1, not {n}")


def write_samples_to_dir(
    draw: Callable[[int], SimulatedSample],
    n: int,
    out_dir: Union[str, Path],
    settings: Dict[str, Any],
    reporter: ProgressReporter,
) -> List[Path]:
    """Writes samples ``draw(0)``, ..., ``draw(n - 1)`` and the run's files to ``out_dir``.

    Args:
        draw: Returns sample ``index`` (called in order).
        n: Number of samples (at least 1).
        out_dir: Output folder (created if needed; files of the same names are replaced, and
            the sample files of an earlier run numbered ``n`` and up are deleted).
        settings: What made the samples, written to ``simulation.json``.
        reporter: Progress and cancellation.

    Returns:
        The files written, as :func:`simulate_to_dir` returns them.

    Raises:
        InputError: ``n`` is below 1 or ``out_dir`` cannot be written.
        CancelledError: The reporter's cancel check returned True (nothing is left behind).
    """
    check_sample_count(n)
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:  # the staging folder goes when it closes
        if not os.path.exists(out_dir):  # made for this run: not left behind empty by a stop
            stack.callback(_remove_if_empty, out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            staging = stack.enter_context(work_folder(out_dir, "simulate"))
        except OSError as error:
            raise InputError(f"cannot write to {out_dir}: {error}") from error
        names: List[str] = []
        rows: List[Dict[str, object]] = []
        shown: List[SimulatedSample] = []
        for index in range(n):
            reporter.check_cancelled()
            sample = draw(index)
            image_name, labels_name = (
                f"sample_{index:04d}_image.tif",
                f"sample_{index:04d}_labels.tif",
            )
            write_sample(sample, staging / image_name, staging / labels_name)
            names += [image_name, labels_name]
            rows.append(_index_row(index, sample))
            if len(shown) < CONTACT_SHEET_SAMPLES:
                shown.append(sample)
            reporter.update((index + 1) / n, f"sample {index + 1}/{n}")
        reporter.check_cancelled()
        write_contact_sheet(shown, staging / CONTACT_SHEET_NAME)
        _write_index(rows, staging / INDEX_NAME)
        (staging / SETTINGS_NAME).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        names += [CONTACT_SHEET_NAME, INDEX_NAME, SETTINGS_NAME]
        written = []
        for name in names:
            os.replace(staging / name, out_dir / name)
            written.append(out_dir / name)
        _remove_stale_samples(out_dir, n)
        return written


def _remove_if_empty(folder: Path) -> None:
    """Deletes ``folder`` if it is there and empty (a run stopped before writing to it)."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def _remove_stale_samples(out_dir: Path, n: int) -> None:
    """Deletes sample files numbered ``n`` and up: an earlier, longer run's, not in the index."""
    for path in out_dir.glob("sample_*_*.tif"):
        match = _SAMPLE_FILE.fullmatch(path.name)
        if match is not None and int(match.group(1)) >= n:
            path.unlink()


def write_sample(sample: SimulatedSample, image_path: Path, labels_path: Path) -> None:
    """Writes a sample's image (float32) and labels (uint8 with a colour table) as GeoTIFFs.

    Raises:
        InputError: If GDAL cannot write them (a full disk, say).
    """
    with gdal_write_errors(image_path):
        _write_sample(sample, image_path, labels_path)


def _write_sample(sample: SimulatedSample, image_path: Path, labels_path: Path) -> None:
    driver = gdal.GetDriverByName("GTiff")
    channels, rows, cols = sample.image.shape
    options = ["COMPRESS=DEFLATE", "INTERLEAVE=BAND"]
    image = driver.Create(str(image_path), cols, rows, channels, gdal.GDT_Float32, options)
    image.SetMetadata({"UNIADRS_KIND": sample.kind, "UNIADRS_SOURCE": sample.source})
    for index in range(channels):
        band = image.GetRasterBand(index + 1)
        band.WriteArray(sample.image[index])
        if sample.band_indices is not None:
            band.SetDescription(f"source band {int(sample.band_indices[index]) + 1}")
    image.FlushCache()
    image = None

    labels = driver.Create(str(labels_path), cols, rows, 1, gdal.GDT_Byte, ["COMPRESS=DEFLATE"])
    labels.SetMetadata({f"LABEL_{value}": LABEL_NAMES[value] for value in LABEL_VALUES})
    band = labels.GetRasterBand(1)
    band.WriteArray(sample.labels)
    table = gdal.ColorTable()
    for value, colour in LABEL_COLOURS.items():
        table.SetColorEntry(value, colour)
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    labels.FlushCache()
    labels = None


def display_rgb(sample: SimulatedSample) -> np.ndarray:
    """An RGB rendering ``[H, W, 3]`` in ``[0, 1]`` of a sample, stretched per channel (2-98 %).

    Spectral samples use the channels whose source bands are nearest to 75 %, 50 % and 25 % of
    the band range (a false colour); one-channel samples are grey.
    """
    image = sample.image
    if sample.band_indices is not None and image.shape[0] >= 3:
        bands = sample.band_indices
        low, high = float(bands.min()), float(bands.max())
        targets = [low + fraction * (high - low) for fraction in (0.75, 0.5, 0.25)]
        channels = [int(np.argmin(np.abs(bands - target))) for target in targets]
    elif image.shape[0] >= 3:
        channels = [0, 1, 2]
    else:
        channels = [0, 0, 0]
    rgb = np.stack([image[channel] for channel in channels], axis=-1).astype(np.float64)
    low = np.percentile(rgb, 2, axis=(0, 1))
    high = np.percentile(rgb, 98, axis=(0, 1))
    return np.clip((rgb - low) / np.maximum(high - low, 1e-12), 0.0, 1.0)


def outlined(rgb: np.ndarray, labels: np.ndarray, zoom: int = 2) -> np.ndarray:
    """Enlarges an RGB image ``zoom`` times and draws the outline of each label's regions."""
    rgb = np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)
    labels = np.repeat(np.repeat(labels, zoom, axis=0), zoom, axis=1)
    for value, colour in OUTLINE_COLOURS:
        region = labels == value
        edge = region & ~ndimage.binary_erosion(region, iterations=1, border_value=1)
        rgb[edge] = colour
    return rgb


def write_contact_sheet(samples: Sequence[SimulatedSample], path: Path, columns: int = 4) -> None:
    """Draws samples in a grid with their label outlines and writes a PNG."""
    count = max(len(samples), 1)
    columns = min(columns, count)
    rows = (count + columns - 1) // columns
    figure = agg_figure(3.0 * columns, 3.5 * rows + 0.4)
    for index, sample in enumerate(samples):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(outlined(display_rgb(sample), sample.labels), interpolation="nearest")
        source = sample.source.split("/")[-1]
        axes.set_title(f"{index}: {sample.kind}, {sample.channels} ch\n{source}", fontsize=8)
        axes.set_axis_off()
    figure.suptitle("red: anomaly (1), yellow: large normal (3), blue: ignore (2)", fontsize=9)
    save_png(figure, path, rect=(0, 0, 1, 0.97))


def _index_row(index: int, sample: SimulatedSample) -> Dict[str, object]:
    """One row of ``samples.csv``."""
    counts = np.bincount(sample.labels.ravel(), minlength=len(LABEL_VALUES))
    total = sample.labels.size
    return {
        "index": index,
        "kind": sample.kind,
        "source": sample.source,
        "channels": sample.channels,
        "anomaly_fraction": round(counts[ANOMALY] / total, 5),
        "large_normal_fraction": round(counts[LARGE_NORMAL] / total, 5),
        "ignore_fraction": round(counts[IGNORE] / total, 5),
    }


def _write_index(rows: List[Dict[str, object]], path: Path) -> None:
    """Writes ``samples.csv``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
