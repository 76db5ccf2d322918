"""The pool of real background rasters that simulated anomalies are pasted into.

:meth:`BackgroundPool.from_paths` takes GDAL rasters or folders of them (searched recursively),
leaves out what matches the ``exclude`` patterns, and describes each file once:

* **bands**: a band is dropped when it has no valid pixel or is constant over its valid pixels
  (EnMAP's bands 130-135 hold -32768 everywhere), or when an ENVI header's bad band list marks
  it (:func:`~uniadrs_engine.raster.reader.envi_bad_bands`), as detection does, and an alpha
  band is no channel. Valid means finite and not the band's nodata value. A pixel is valid
  when every kept band is valid there and an alpha band does not make it transparent.
* **modality**: ``"hyperspectral"`` with at least :data:`HYPERSPECTRAL_MIN_BANDS` (10) kept
  bands, else ``"visible"`` (1-9 bands: RGB, grey, and multispectral images, which go to the
  spatial simulation).
* **objects**: ``<stem>_objects.<ext>`` next to ``<stem>.<ext>`` is an instance mask of that
  raster (uint16 ids, 0 = background), never a background itself.

Memory stays bounded: a file of at most :data:`CACHE_FILE_BYTES` is kept in memory in its
native data type (up to :data:`CACHE_TOTAL_BYTES` for the whole pool); larger files are read
by windows at each request, and their band statistics come from one decimated read. The pool
opens no long-lived GDAL handles, so it can be pickled to data-loader workers.

Example:
    >>> pool = BackgroundPool.from_paths(["backgrounds"], exclude=["*slide*"])  # doctest: +SKIP
    >>> window = pool.random_window(rng, pool.hyperspectral[0], 100, 100)  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, gdal_array

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.nodata import NodataRule
from uniadrs_engine.raster.reader import (
    alpha_bands,
    band_holds_value,
    band_nodata,
    band_unscaling,
    envi_bad_bands,
    is_gdal_name,
    rgb_palette,
    stored_type,
)

gdal.UseExceptions()

LOGGER = logging.getLogger(__name__)

HYPERSPECTRAL = "hyperspectral"
VISIBLE = "visible"

#: Files with at least this many usable bands are hyperspectral (spectral simulation).
HYPERSPECTRAL_MIN_BANDS = 10

#: Files up to this size (native type, usable bands) are read once and kept in memory.
CACHE_FILE_BYTES = 64 * 1024 * 1024
#: Total memory the pool may hold as cached files.
CACHE_TOTAL_BYTES = 1024 * 1024 * 1024
#: Side of the decimated read that gives the band statistics of files too large to cache.
STATISTICS_READ_SIDE = 512
#: Rows of an object mask read at once when looking for object boxes in a large file.
OBJECT_STRIP_ROWS = 1024

#: Suffix of the instance-mask file that goes with a background (``<stem>_objects.tif``).
OBJECTS_SUFFIX = "_objects"

#: Extensions looked at inside folders (files given by name are opened whatever they end in).
RASTER_EXTENSIONS = frozenset(
    {
        ".tif",
        ".tiff",
        ".vrt",
        ".img",
        ".jp2",
        ".png",
        ".jpg",
        ".jpeg",
        ".bsq",
        ".bil",
        ".bip",
        ".dat",
        ".nc",
        ".hdf",
        ".h5",
        ".he5",
        ".ers",
        ".rst",
        ".sdat",
        ".kea",
    }
)

#: A window as ``(xoff, yoff, xsize, ysize)`` in pixels.
Window = Tuple[int, int, int, int]


@dataclass(frozen=True)
class BackgroundFile:
    """One background raster as the pool uses it.

    Attributes:
        path: Absolute path of the raster.
        name: Path relative to the folder it was found in, that folder's name included
            (``hsi/samson.tif`` for the folder ``hsi``); the file name for files given directly.
        modality: ``"hyperspectral"`` or ``"visible"``.
        rows: Raster height.
        cols: Raster width.
        band_count: Bands in the file.
        bands: 0-based indices of the bands used (the others are empty or constant).
        nodata: Nodata value of each used band (None where the band has none).
        dtype: numpy name of the data type of the first band.
        value_max: Largest valid value over the used bands (from a decimated read for files
            too large to cache).
        objects_path: The ``*_objects`` instance mask of this raster, or None.
        alpha_band: 0-based index of the file's alpha band, or None: a pixel it makes
            transparent (0) holds no data.
        nodata_rule: Values that hold no data besides (or instead of) the file's nodata
            (:class:`~uniadrs_engine.raster.nodata.NodataRule`), or None.
        unscaling: GDAL's ``(scale, offset)`` of each used band, or None: the rule's values
            are given as read (the pixels themselves are used as stored).
        stored_types: numpy name of each used band's type, as the rule rounds its bounds.
    """

    path: Path
    name: str
    modality: str
    rows: int
    cols: int
    band_count: int
    bands: Tuple[int, ...]
    nodata: Tuple[Optional[float], ...]
    dtype: str
    value_max: float
    objects_path: Optional[Path] = None
    alpha_band: Optional[int] = None
    nodata_rule: Optional[NodataRule] = None
    unscaling: Tuple[Optional[Tuple[float, float]], ...] = ()
    stored_types: Tuple[str, ...] = ()

    @property
    def channels(self) -> int:
        """Number of bands used."""
        return len(self.bands)

    def provenance(self) -> Dict[str, object]:
        """A JSON-ready record of this file for a model card or a training log."""
        dropped = sorted(set(range(self.band_count)) - set(self.bands))
        return {
            "name": self.name,
            "path": str(self.path),
            "modality": self.modality,
            "rows": self.rows,
            "cols": self.cols,
            "band_count": self.band_count,
            "bands_used": self.channels,
            "bands_dropped_1based": [index + 1 for index in dropped],
            "dtype": self.dtype,
            "bytes": _file_size(self.path),
            "objects": None if self.objects_path is None else self.objects_path.name,
        }


@dataclass
class BackgroundWindow:
    """Pixels of one window of a background file.

    Attributes:
        image: float32 ``[C, h, w]`` of the used bands; invalid pixels hold 0.
        valid: bool ``[h, w]``, True where every used band holds data.
        objects: Instance ids ``[h, w]`` (0 = background) or None without an object mask.
        file: The file the window comes from.
        window: ``(xoff, yoff, xsize, ysize)`` in the file.
    """

    image: np.ndarray
    valid: np.ndarray
    objects: Optional[np.ndarray]
    file: BackgroundFile
    window: Window

    @property
    def valid_fraction(self) -> float:
        """Fraction of the window's pixels that hold data."""
        return float(self.valid.mean()) if self.valid.size else 0.0


@dataclass
class _CachedRaster:
    """A whole raster held in memory: used bands in native type, validity, object ids."""

    data: np.ndarray
    valid: np.ndarray
    objects: Optional[np.ndarray] = None


@dataclass
class BackgroundPool:
    """Background rasters for the simulators, with per-file provenance.

    Attributes:
        files: Every usable background, in a stable order (sorted by path within a folder).
    """

    files: List[BackgroundFile]
    _cache: Dict[Path, _CachedRaster] = field(default_factory=dict, repr=False)
    _cached_bytes: int = field(default=0, repr=False)

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[Union[str, Path]],
        exclude: Sequence[str] = (),
        nodata: Optional[NodataRule] = None,
    ) -> BackgroundPool:
        """Builds a pool from rasters and folders of rasters.

        Args:
            paths: Raster files or folders (searched recursively, in sorted order).
            exclude: Glob patterns; a file is left out when a pattern matches a folder or
                file name on its path below the given folder (that folder included), a run
                of consecutive names (``visible/dota``), or the whole absolute path.
            nodata: Values that hold no data in every background besides (or instead of)
                each file's nodata (an undeclared fill; as ``uniadrs detect --nodata``), or
                None.

        Raises:
            InputError: A path does not exist, a file given by name cannot be read, or no
                usable background remains.
        """
        pool = cls(files=[])
        seen: set = set()
        left_out = 0
        for raster_path, name, explicit in _discover(paths):
            if raster_path in seen:
                continue
            if _is_excluded(name, raster_path, exclude):
                left_out += 1
                continue
            seen.add(raster_path)
            try:
                background = pool._describe(raster_path, name, nodata)
            except (RuntimeError, ValueError) as error:
                if explicit:
                    raise InputError(f"cannot read background {raster_path}: {error}") from error
                LOGGER.warning("skipping %s: %s", raster_path, error)
                continue
            if background is not None:
                pool.files.append(background)
        if not pool.files:
            listed = ", ".join(str(path) for path in paths)
            why = (
                f" ({left_out} raster(s) there are left out by the exclusions and held-out "
                "validation backgrounds)"
                if left_out
                else ""
            )
            raise InputError(f"no usable background raster found in {listed}{why}")
        return pool

    @property
    def hyperspectral(self) -> List[BackgroundFile]:
        """Files for the spectral simulation."""
        return [item for item in self.files if item.modality == HYPERSPECTRAL]

    @property
    def visible(self) -> List[BackgroundFile]:
        """Files for the spatial simulation."""
        return [item for item in self.files if item.modality == VISIBLE]

    def provenance(self) -> List[Dict[str, object]]:
        """One JSON-ready record per file (see :meth:`BackgroundFile.provenance`)."""
        return [item.provenance() for item in self.files]

    def describe(self) -> str:
        """One line counting the files per modality."""
        with_objects = sum(item.objects_path is not None for item in self.files)
        return (
            f"{len(self.files)} backgrounds: {len(self.hyperspectral)} hyperspectral, "
            f"{len(self.visible)} visible ({with_objects} with object masks)"
        )

    def read(
        self, background: BackgroundFile, window: Optional[Window] = None, objects: bool = False
    ) -> BackgroundWindow:
        """Reads a window (the whole raster when None) of a background file.

        Args:
            background: A file of this pool.
            window: ``(xoff, yoff, xsize, ysize)``; must lie inside the raster.
            objects: Also read the instance mask (None in the result when the file has none).
        """
        if window is None:
            window = (0, 0, background.cols, background.rows)
        xoff, yoff, xsize, ysize = window
        cached = self._cache.get(background.path)
        if cached is None and self._fits_cache(background):
            cached = self._load(background)
        if cached is not None:
            rows, cols = slice(yoff, yoff + ysize), slice(xoff, xoff + xsize)
            data = cached.data[:, rows, cols]
            valid = cached.valid[rows, cols]
            object_ids = None
            if objects and cached.objects is not None:
                object_ids = cached.objects[rows, cols].copy()
        else:
            data, valid = _read_bands(background, window)
            object_ids = None
            if objects and background.objects_path is not None:
                object_ids = _read_objects(background.objects_path, window)
        image = data.astype(np.float32)
        image[:, ~valid] = 0.0
        return BackgroundWindow(image, valid.copy(), object_ids, background, window)

    def random_window(
        self,
        rng: np.random.Generator,
        background: BackgroundFile,
        height: int,
        width: int,
        min_valid_fraction: float = 0.5,
        objects: bool = False,
        attempts: int = 8,
    ) -> BackgroundWindow:
        """Reads a random window, retrying while too few of its pixels hold data.

        Returns the first window with at least ``min_valid_fraction`` valid pixels, or the
        best of ``attempts`` windows. ``height`` and ``width`` are clipped to the raster.
        """
        height, width = min(height, background.rows), min(width, background.cols)
        best: Optional[BackgroundWindow] = None
        for _ in range(attempts):
            yoff = int(rng.integers(0, background.rows - height + 1))
            xoff = int(rng.integers(0, background.cols - width + 1))
            window = self.read(background, (xoff, yoff, width, height), objects=objects)
            if window.valid_fraction >= min_valid_fraction:
                return window
            if best is None or window.valid_fraction > best.valid_fraction:
                best = window
        assert best is not None
        return best

    def object_boxes(self, background: BackgroundFile) -> Dict[int, Tuple[int, int, int, int]]:
        """Bounding boxes ``(row0, col0, row1, col1)`` (end exclusive) of each object id."""
        if background.objects_path is None:
            return {}
        cached = self._cache.get(background.path)
        if cached is None and self._fits_cache(background):
            cached = self._load(background)
        if cached is not None and cached.objects is not None:
            return _boxes_in(cached.objects, 0, {})
        boxes: Dict[int, Tuple[int, int, int, int]] = {}
        for row in range(0, background.rows, OBJECT_STRIP_ROWS):
            strip_rows = min(OBJECT_STRIP_ROWS, background.rows - row)
            strip = _read_objects(background.objects_path, (0, row, background.cols, strip_rows))
            boxes = _boxes_in(strip, row, boxes)
        return boxes

    def _describe(
        self, path: Path, name: str, rule: Optional[NodataRule] = None
    ) -> Optional[BackgroundFile]:
        """Opens a raster, finds its usable bands and modality; None when nothing is usable."""
        dataset = gdal.Open(str(path))
        band_count, rows, cols = dataset.RasterCount, dataset.RasterYSize, dataset.RasterXSize
        if band_count == 0 or rows == 0 or cols == 0:
            LOGGER.warning("skipping %s: no raster bands", path)
            return None
        if rgb_palette(dataset) is not None:
            LOGGER.warning(
                "skipping %s: a paletted image; expand it to its colours first "
                "(gdal_translate -expand rgb)",
                path,
            )
            return None
        file_bands = [dataset.GetRasterBand(index + 1) for index in range(band_count)]
        use_file_nodata = rule is None or rule.use_file_nodata
        nodata = tuple(band_nodata(band) if use_file_nodata else None for band in file_bands)
        unscaling = tuple(band_unscaling(band) for band in file_bands)
        stored_types = tuple(stored_type(band).name for band in file_bands)
        file_bands = []  # released before the dataset
        dtype = np.dtype(
            gdal_array.GDALTypeCodeToNumericTypeCode(dataset.GetRasterBand(1).DataType)
        )
        alpha = alpha_bands(dataset)
        bad = set(envi_bad_bands(dataset)) | set(alpha)
        small = rows * cols * band_count * dtype.itemsize <= CACHE_FILE_BYTES
        if small:
            data = _as_3d(dataset.ReadAsArray())
        else:
            side = STATISTICS_READ_SIDE
            data = _as_3d(dataset.ReadAsArray(buf_xsize=min(cols, side), buf_ysize=min(rows, side)))
        dataset = None
        valid_per_band = _validity(data, nodata, rule, unscaling, stored_types)
        kept = []
        for index in range(band_count):
            if index + 1 in bad:
                continue
            values = data[index][valid_per_band[index]]
            if values.size and values.min() != values.max():
                kept.append(index)
        if not kept:
            LOGGER.warning("skipping %s: every band is empty or constant", path)
            return None
        valid = valid_per_band[kept].all(axis=0)
        if alpha:
            valid &= data[alpha[0] - 1] != 0
        if not valid.any():
            LOGGER.warning("skipping %s: no pixel holds data in every band", path)
            return None
        kept_data = data[kept]
        value_max = float(kept_data[:, valid].max())
        objects_path = _objects_path_of(path)
        background = BackgroundFile(
            path=path,
            name=name,
            modality=HYPERSPECTRAL if len(kept) >= HYPERSPECTRAL_MIN_BANDS else VISIBLE,
            rows=rows,
            cols=cols,
            band_count=band_count,
            bands=tuple(kept),
            nodata=tuple(nodata[index] for index in kept),
            dtype=dtype.name,
            value_max=value_max,
            objects_path=objects_path,
            alpha_band=alpha[0] - 1 if alpha else None,
            nodata_rule=rule if rule is not None and rule.ranges else None,
            unscaling=tuple(unscaling[index] for index in kept),
            stored_types=tuple(stored_types[index] for index in kept),
        )
        if objects_path is not None and not _objects_match(objects_path, rows, cols):
            LOGGER.warning("ignoring %s: its size differs from %s", objects_path, path)
            background = _without_objects(background)
        if small:
            self._store(background, kept_data, valid)
        return background

    def _fits_cache(self, background: BackgroundFile) -> bool:
        """Whether the file is small enough to be cached and the budget allows it."""
        size = (
            background.rows
            * background.cols
            * background.channels
            * np.dtype(background.dtype).itemsize
        )
        return size <= CACHE_FILE_BYTES and self._cached_bytes + size <= CACHE_TOTAL_BYTES

    def _load(self, background: BackgroundFile) -> _CachedRaster:
        """Reads a whole small file into the cache."""
        data, valid = _read_bands(background, (0, 0, background.cols, background.rows))
        return self._store(background, data, valid)

    def _store(
        self, background: BackgroundFile, data: np.ndarray, valid: np.ndarray
    ) -> _CachedRaster:
        """Keeps a file's pixels (and object ids) in memory when the budget allows it."""
        if self._cached_bytes + data.nbytes > CACHE_TOTAL_BYTES:
            return _CachedRaster(data, valid, self._whole_objects(background))
        cached = _CachedRaster(np.ascontiguousarray(data), valid, self._whole_objects(background))
        self._cache[background.path] = cached
        self._cached_bytes += data.nbytes + valid.nbytes
        if cached.objects is not None:
            self._cached_bytes += cached.objects.nbytes
        return cached

    @staticmethod
    def _whole_objects(background: BackgroundFile) -> Optional[np.ndarray]:
        """The whole instance mask of a file, or None."""
        if background.objects_path is None:
            return None
        return _read_objects(background.objects_path, (0, 0, background.cols, background.rows))


def _as_3d(array: np.ndarray) -> np.ndarray:
    """Adds the band axis to a single-band read."""
    return array[None] if array.ndim == 2 else array


def _validity(
    data: np.ndarray,
    nodata: Sequence[Optional[float]],
    rule: Optional[NodataRule] = None,
    unscaling: Sequence[Optional[Tuple[float, float]]] = (),
    stored_types: Sequence[str] = (),
) -> np.ndarray:
    """Bool ``[bands, rows, cols]``: finite, not the band's nodata value, nor the rule's."""
    valid = np.stack([band_holds_value(band, value) for band, value in zip(data, nodata)])
    if rule is not None and rule.ranges:
        for index, band in enumerate(data):
            valid[index] &= ~rule.matches(band, unscaling[index], np.dtype(stored_types[index]))
    return valid


def _read_bands(background: BackgroundFile, window: Window) -> Tuple[np.ndarray, np.ndarray]:
    """Reads the used bands of a window and its pixel validity."""
    xoff, yoff, xsize, ysize = window
    dataset = gdal.Open(str(background.path))
    band_list = [index + 1 for index in background.bands]
    data = _as_3d(dataset.ReadAsArray(xoff, yoff, xsize, ysize, band_list=band_list))
    valid = _validity(
        data,
        background.nodata,
        background.nodata_rule,
        background.unscaling,
        background.stored_types,
    ).all(axis=0)
    if background.alpha_band is not None:
        alpha = dataset.GetRasterBand(background.alpha_band + 1)
        valid &= alpha.ReadAsArray(xoff, yoff, xsize, ysize) != 0
    dataset = None
    return data, valid


def _read_objects(path: Path, window: Window) -> np.ndarray:
    """Reads a window of an instance mask as int64 ids."""
    dataset = gdal.Open(str(path))
    ids = dataset.GetRasterBand(1).ReadAsArray(*window)
    dataset = None
    return ids.astype(np.int64)


def _boxes_in(
    ids: np.ndarray, row_offset: int, boxes: Dict[int, Tuple[int, int, int, int]]
) -> Dict[int, Tuple[int, int, int, int]]:
    """Merges the bounding boxes of the ids in one strip into ``boxes``."""
    from scipy import ndimage

    positive = np.where(ids > 0, ids, 0)
    for index, found in enumerate(ndimage.find_objects(positive)):
        if found is None:
            continue
        object_id = index + 1
        box = (
            found[0].start + row_offset,
            found[1].start,
            found[0].stop + row_offset,
            found[1].stop,
        )
        if object_id in boxes:
            old = boxes[object_id]
            box = (
                min(old[0], box[0]),
                min(old[1], box[1]),
                max(old[2], box[2]),
                max(old[3], box[3]),
            )
        boxes[object_id] = box
    return boxes


def _objects_path_of(path: Path) -> Optional[Path]:
    """The ``<stem>_objects.*`` raster beside ``path``, if any."""
    for extension in (path.suffix, ".tif", ".tiff"):
        candidate = path.with_name(f"{path.stem}{OBJECTS_SUFFIX}{extension}")
        if candidate.is_file():
            return candidate
    return None


def _objects_match(path: Path, rows: int, cols: int) -> bool:
    """Whether an instance mask can be opened and has the raster's size."""
    try:
        dataset = gdal.Open(str(path))
    except RuntimeError:
        return False
    return (dataset.RasterYSize, dataset.RasterXSize) == (rows, cols)


def _without_objects(background: BackgroundFile) -> BackgroundFile:
    """The same file description without its instance mask."""
    values = {name: getattr(background, name) for name in BackgroundFile.__dataclass_fields__}
    values["objects_path"] = None
    return BackgroundFile(**values)


def _file_size(path: Path) -> Optional[int]:
    """File size in bytes, or None when it cannot be read."""
    try:
        return path.stat().st_size
    except OSError:
        return None


def _is_background_candidate(path: Path) -> bool:
    """Whether a file inside a folder should be opened as a background."""
    if path.name.startswith("."):
        return False
    if path.stem.endswith(OBJECTS_SUFFIX):
        return False
    suffix = path.suffix.lower()
    if suffix in RASTER_EXTENSIONS:
        return True
    # ENVI data files often have no extension; their header sits beside them.
    return suffix == "" and path.with_suffix(".hdr").is_file()


def _discover(paths: Sequence[Union[str, Path]]) -> Iterator[Tuple[Path, str, bool]]:
    """Yields ``(absolute path, relative name, given explicitly)`` for each candidate raster."""
    for given in paths:
        root = Path(given).expanduser()
        if root.is_file():
            if root.stem.endswith(OBJECTS_SUFFIX):
                LOGGER.warning("skipping %s: object masks are not backgrounds", root)
                continue
            yield root.resolve(), root.name, True
        elif root.is_dir():
            base = root.resolve()
            for directory, folders, names in os.walk(base):
                folders[:] = sorted(folder for folder in folders if not folder.startswith("."))
                for file_name in sorted(names):
                    path = Path(directory) / file_name
                    if _is_background_candidate(path):
                        relative = path.relative_to(base).as_posix()
                        yield path, f"{base.name}/{relative}", False
        elif is_gdal_name(str(given)):
            raise InputError(
                f"background {given}: backgrounds are raster files or folders, not GDAL names "
                "such as a subdataset; save it as a GeoTIFF first (gdal_translate)"
            )
        else:
            raise InputError(f"background path not found: {given}")


def _is_excluded(name: str, path: Path, patterns: Sequence[str]) -> bool:
    """Whether an exclude pattern matches a run of path parts, or the whole absolute path."""
    if not patterns:
        return False
    parts = name.split("/")
    candidates = {
        "/".join(parts[start:stop])
        for start in range(len(parts))
        for stop in range(start + 1, len(parts) + 1)
    }
    candidates.add(path.as_posix())
    return any(
        fnmatch.fnmatchcase(candidate, pattern.rstrip("/"))
        for pattern in patterns
        for candidate in candidates
    )
