"""Window-by-window writing of score (and mask) rasters that appear only when complete.

:class:`ScoreRasterWriter` creates a tiled, DEFLATE-compressed GeoTIFF on the grid (size,
geotransform, projection) of an input raster, under a temporary name in the output's folder.
Windows are written as they are computed; invalid pixels get the nodata value. On a clean exit
of the ``with`` block (or :meth:`~ScoreRasterWriter.commit`) the file is renamed to its final
name; on an exception (or :meth:`~ScoreRasterWriter.abort`) the temporary file is deleted, so
no partial output ever exists under the final name. Final outputs larger than
:data:`OVERVIEW_MIN_SIDE` get internal overviews on commit; a grid georeferenced by ground
control points keeps them.

Example:
    >>> with open_raster("scene.tif") as source, ScoreRasterWriter("scores.tif", source) as out:
    ...     block = source.read_window(source.full_window())  # doctest: +SKIP
    ...     out.write(source.full_window(), score_map, block.valid)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, gdal_array

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import NO_GEOTRANSFORM, Window, quiet_gdal_errors

LOGGER = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: Nodata value of every score raster the engine writes.
SCORE_NODATA = -9999.0

#: GeoTIFF creation options of score rasters: tiled, lossless, floating-point predictor.
DEFAULT_CREATION_OPTIONS: Tuple[str, ...] = (
    "TILED=YES",
    "BLOCKXSIZE=256",
    "BLOCKYSIZE=256",
    "COMPRESS=DEFLATE",
    "PREDICTOR=3",
    "BIGTIFF=IF_SAFER",
)


class GridLike(Protocol):
    """Anything that describes a raster grid (a :class:`RasterSource`, a :class:`RasterGrid`).

    A grid that also has ``gcps`` (GDAL ground control points) and ``gcp_projection``, or
    ``rpc`` (rational polynomial coefficients), as a :class:`RasterSource` has, passes them on
    to what is written on it (:func:`set_georeference`).
    """

    width: int
    height: int
    geotransform: Tuple[float, ...]
    projection: str


def set_georeference(dataset: gdal.Dataset, like: GridLike) -> None:
    """Gives a new raster the georeference of ``like``, whose grid it has.

    The geotransform and CRS, or, for a raster georeferenced by ground control points only
    (such as Sentinel-1 GRD), its points; rational polynomial coefficients (raw optical
    satellite products) are copied too. QGIS then draws the new raster where it draws
    ``like``.
    """
    gcps = tuple(getattr(like, "gcps", ()))
    if gcps and tuple(like.geotransform) == NO_GEOTRANSFORM:
        # georeferenced by ground control points (e.g. Sentinel-1 GRD), kept as such
        dataset.SetGCPs(gcps, getattr(like, "gcp_projection", ""))
    else:
        if tuple(like.geotransform) != NO_GEOTRANSFORM:
            # an input without georeferencing gets none either: GDAL's placeholder,
            # written out, would flip the output against its input in QGIS
            dataset.SetGeoTransform(tuple(like.geotransform))
        if like.projection:
            dataset.SetProjection(like.projection)
    rpc = dict(getattr(like, "rpc", None) or {})
    if rpc:
        dataset.SetMetadata(rpc, "RPC")


@dataclass(frozen=True)
class RasterGrid:
    """A raster's pixel grid: size and georeference.

    Attributes:
        width: Columns.
        height: Rows.
        geotransform: GDAL's 6-tuple geotransform.
        projection: The coordinate reference system as WKT, or ``''``.
    """

    width: int
    height: int
    geotransform: Tuple[float, ...] = NO_GEOTRANSFORM
    projection: str = ""


def _creation_options_for(dtype: np.dtype, options: Sequence[str]) -> list:
    """Uses the integer predictor for integer rasters (PREDICTOR=3 is for floats only)."""
    if dtype.kind == "f":
        return list(options)
    return ["PREDICTOR=2" if option.upper() == "PREDICTOR=3" else option for option in options]


#: Resampling of the overviews of score rasters (the mean score of the pixels covered).
SCORE_OVERVIEWS = "AVERAGE"

#: Resampling of the overviews of masks (labels are never averaged).
MASK_OVERVIEWS = "NEAREST"

#: Overviews are built for outputs whose longer side exceeds this (pixels) ...
OVERVIEW_MIN_SIDE = 2048

#: ... halving until the coarsest level's longer side is at most this.
OVERVIEW_SMALLEST_SIDE = 256


def overview_levels(width: int, height: int) -> List[int]:
    """Decimation factors of the internal overviews of a ``width`` x ``height`` output.

    Example:
        >>> overview_levels(1000, 800)
        []
        >>> overview_levels(8000, 3000)
        [2, 4, 8, 16, 32]
    """
    side = max(int(width), int(height))
    if side <= OVERVIEW_MIN_SIDE:
        return []
    levels = [2]
    while side // levels[-1] > OVERVIEW_SMALLEST_SIDE:
        levels.append(levels[-1] * 2)
    return levels


#: Name endings of the GeoTIFF files the writer makes.
GEOTIFF_SUFFIXES = (".tif", ".tiff")


#: Longest file name, in bytes, that common file systems take (ext4, XFS, NTFS, APFS).
MAX_NAME_BYTES = 255

#: GDAL's sidecar of a raster (statistics, metadata): ``{name}.aux.xml``.
SIDECAR_SUFFIX = ".aux.xml"


@functools.cache
def _host_tag() -> str:
    """Sixteen hex digits that tell this machine and this process id space from others.

    A temporary's owner is a process *here*. The tag hashes the machine's id
    (``/etc/machine-id``, which survives reboots), its host name and the PID namespace, so
    that another machine or container sharing the folder never takes a live run's files for
    a dead one's: it sees another tag and leaves them alone.
    """
    parts = [socket.gethostname()]
    for source in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            parts.append(Path(source).read_text(encoding="ascii", errors="replace").strip())
            break
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    identity = "/".join(parts).encode("utf-8", "replace")
    return hashlib.sha256(identity).hexdigest()[:16]


#: What a temporary's or work folder's label may hold (:func:`check_label`).
_LABEL = r"[a-z0-9-]+"


def check_label(label: str) -> str:
    """Returns ``label`` if the names of temporaries can carry it, so that they are swept.

    Raises:
        ValueError: If it holds anything but lower-case letters, digits and hyphens.
    """
    if not re.fullmatch(_LABEL, label):
        raise ValueError(f"a temporary's label takes a-z, 0-9 and -, got {label!r}")
    return label


#: A temporary's name: ``.{stem}.{pid}-{host}.{8 hex}.{label}{suffix}``.
_TEMPORARY_NAME = re.compile(
    r"\.(?P<stem>.*)\.(?P<pid>[0-9]{1,7})-(?P<host>[0-9a-f]{16})\.[0-9a-f]{8}\."
    r"(?P<label>" + _LABEL + r")(?:\..*)?",
    re.DOTALL,
)

#: A work folder's name: ``.uniadrs-{label}-{pid}-{host}.{random}`` (:func:`work_folder`).
WORK_FOLDER_PREFIX = ".uniadrs-"
_WORK_FOLDER_NAME = re.compile(
    re.escape(WORK_FOLDER_PREFIX) + r"(?P<label>" + _LABEL + r")-(?P<pid>[0-9]{1,7})-"
    r"(?P<host>[0-9a-f]{16})\..+",
    re.DOTALL,
)


#: The largest process id there may be (Linux's ``PID_MAX_LIMIT``); larger ones are not ours.
MAX_PROCESS_ID = 4_194_304


def process_is_alive(pid: int) -> bool:
    """Whether a process ``pid`` may run on this machine (one of another user's counts).

    Where that cannot be told (not a process id; Windows, where ``os.kill(pid, 0)`` sends a
    Ctrl-C instead of asking), the answer is yes: nothing is ever taken for dead there.
    """
    if os.name != "posix" or not 0 < pid <= MAX_PROCESS_ID:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # PermissionError: another user's
        return True
    return True


def temporary_owner_tag() -> str:
    """``{pid}-{host}``: which process on which machine writes a temporary file."""
    return f"{os.getpid()}-{_host_tag()}"


def stale_owner(name: str) -> bool:
    """Whether a file or folder named ``name`` is a temporary of a dead process of this machine.

    Names of :func:`temporary_sibling` and of :func:`work_folder` carry their writer's
    process id and the machine's tag (``_host_tag``). One whose process no longer runs here was
    left by a run that was killed (``kill -9``, a power cut) before it could clean up.
    """
    match = _TEMPORARY_NAME.fullmatch(name) or _WORK_FOLDER_NAME.fullmatch(name)
    if match is None or match.group("host") != _host_tag():
        return False
    return not process_is_alive(int(match.group("pid")))


@contextlib.contextmanager
def work_folder(folder: PathLike, label: str) -> Iterator[Path]:
    """A hidden work folder in ``folder`` for files written before they are complete.

    Named ``.uniadrs-{label}-{pid}-{host}.{8 hex}`` so that a later run can tell one whose
    run was killed (:func:`stale_owner`); those in ``folder`` are deleted first. The folder
    and what it holds are deleted when the block ends, however it ends: the folder is made
    inside the block that deletes it, so a stop (Ctrl-C, a stop signal) arriving just after
    it is made leaves nothing either.

    Example:
        >>> with work_folder(out_dir, "threshold") as work:  # doctest: +SKIP
        ...     (work / "raw_mask.tif").write_bytes(b"")

    Raises:
        OSError: If it cannot be created.
        ValueError: If the label does not pass :func:`check_label`.
    """
    check_label(label)
    sweep_stale_temporaries(folder)
    prefix = f"{WORK_FOLDER_PREFIX}{label}-{temporary_owner_tag()}."
    path: Optional[Path] = None
    try:
        while path is None:
            path = Path(folder) / f"{prefix}{uuid.uuid4().hex[:8]}"
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                path = None  # another folder of this process's: never deleted here
        yield path
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


def sweep_stale_temporaries(folder: PathLike) -> List[Path]:
    """Deletes the temporaries dead runs left in ``folder`` (:func:`stale_owner`).

    Those are temporary files, their GDAL sidecars and work folders. Files of
    live processes, of other machines or containers (a shared folder) and anything else are
    left alone, as is whatever cannot be deleted.

    Returns:
        What was deleted.
    """
    removed: List[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or not stale_owner(entry.name):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def temporary_sibling(path: PathLike, suffix: str, label: str = "partial") -> Path:
    """A hidden, unique name beside ``path`` for a file written before it is complete.

    ``.{stem}.{pid}-{host}.{8 hex}.{label}{suffix}``; the stem is shortened when the name
    would exceed :data:`MAX_NAME_BYTES`, so that any name an output may have leaves room for
    it. The process id and the machine's tag let a later run tell a temporary whose writer
    died (:func:`stale_owner`): those in the folder are deleted here, with their sidecars,
    before the new name is given.

    Example:
        >>> name = temporary_sibling("out/scores.tif", ".tif").name
        >>> name.startswith(".scores.") and name.endswith(".partial.tif")
        True
        >>> len(temporary_sibling("a" * 250 + ".tif", ".tif").name.encode()) <= MAX_NAME_BYTES
        True
    """
    path = Path(path)
    tail = f".{temporary_owner_tag()}.{uuid.uuid4().hex[:8]}.{check_label(label)}{suffix}"
    # room for the leading dot, the tail and a sidecar GDAL may add (".aux.xml")
    room = MAX_NAME_BYTES - 1 - len(os.fsencode(tail)) - len(SIDECAR_SUFFIX)
    stem = path.stem
    encoded = os.fsencode(stem)
    if len(encoded) > room:
        cut = encoded[: max(room, 1)]
        try:
            encoded.decode("utf-8")  # a UTF-8 name: a character cut in two is dropped whole
            stem = cut.decode("utf-8", errors="ignore")
        except UnicodeDecodeError:  # a name in another encoding: its bytes are cut as they are
            stem = os.fsdecode(cut)
    sweep_stale_temporaries(path.parent)
    return path.parent / f".{stem}{tail}"


def check_output_folder(path: PathLike) -> Path:
    """Refuses an output file whose folder is missing or not writable, or that is a folder.

    Raises:
        InputError: In those cases, or when the file name is longer than
            :data:`MAX_NAME_BYTES`, with a one-line reason.
    """
    path = Path(path)
    size = len(os.fsencode(path.name))
    if size > MAX_NAME_BYTES:
        raise InputError(
            f"the output file name is {size} bytes long; file systems take at most "
            f"{MAX_NAME_BYTES}: {path.name[:40]}..."
        )
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write to the output folder {folder}: permission denied")
    if path.is_dir():
        raise InputError(f"output path is a folder: {path}")
    return path


def check_not_an_input(output: PathLike, *inputs: Optional[PathLike]) -> None:
    """Refuses an output that is one of the inputs: writing it would destroy what is read.

    An input's files are all those GDAL reads for it: the file itself, and for a VRT (or
    an ENVI header, a shapefile...) the files it refers to.

    Args:
        output: The output file.
        *inputs: The input files (None entries are skipped).

    Raises:
        InputError: If ``output`` is one of the files of one of ``inputs``.
    """
    target = Path(output)
    if not target.exists():
        return
    for item in inputs:
        if item is None:
            continue
        for path in _files_read_for(item):
            if path.exists() and target.samefile(path):
                which = "" if path == Path(item) else f" (a file {item} reads)"
                raise InputError(f"the output {target} would overwrite the input {path}{which}")


def _files_read_for(item: PathLike) -> List[Path]:
    """The file ``item`` names, and every other file GDAL reads to open it."""
    files = [Path(item)]
    with quiet_gdal_errors():
        try:
            dataset = gdal.OpenEx(str(item))
        except RuntimeError:
            dataset = None
        if dataset is not None:
            files += [Path(name) for name in dataset.GetFileList() or []]
    return files


def check_geotiff_path(path: PathLike) -> Path:
    """Refuses an output GeoTIFF path: a name of another format or a folder unfit for it.

    Raises:
        InputError: If the name ends in anything but ``.tif`` or ``.tiff`` (any case), or
            :func:`check_output_folder` refuses its folder.
    """
    path = check_output_folder(path)
    if path.suffix.lower() not in GEOTIFF_SUFFIXES:
        ending = f"'{path.suffix}'" if path.suffix else "no ending"
        raise InputError(
            f"the output {path.name} must end in .tif or .tiff: the engine writes GeoTIFF "
            f"(got {ending}); convert it afterwards with gdal_translate if needed"
        )
    return path


def write_failure_message(target: PathLike, message: Union[str, Sequence[str]]) -> str:
    """One line on a failed write of ``target``; a full disk (or quota) is named as such.

    Args:
        target: The file the user asked for.
        message: GDAL's (or the system's) message, or all the messages of the failure: the
            first says what failed, and any of them may say that the disk is full.
    """
    target = Path(target)
    messages = [message] if isinstance(message, str) else list(message)
    lowered = " ".join(messages).lower()
    if any(sign in lowered for sign in ("no space left", "disk is full", "disk full", "quota")):
        return f"no space left on the device of {target.parent} (writing {target.name})"
    first = next((text.strip() for text in messages if text.strip()), "GDAL error")
    return f"cannot write {target}: {first}"


@contextlib.contextmanager
def gdal_write_errors(target: PathLike) -> Iterator[None]:
    """Turns a failure GDAL reports while writing ``target`` into one :class:`InputError`.

    GDAL reports a failed write (a full disk, a file-size limit) in several messages, as a
    ``RuntimeError`` when exceptions are enabled or only as errors; either way the file is
    unusable, and the error says why, once, instead of GDAL's lines on stderr. Every failure
    message of the block is kept (the first one says what failed, a later one may say that
    the disk is full).
    """
    failures: List[str] = []

    def record(error_class: int, number: int, message: str) -> None:
        if error_class >= gdal.CE_Failure:
            failures.append(str(message))

    gdal.PushErrorHandler(record)
    try:
        gdal.ErrorReset()
        try:
            yield
        except RuntimeError as error:
            failures.append(str(error))
        else:
            if not failures and gdal.GetLastErrorType() >= gdal.CE_Failure:
                failures.append(gdal.GetLastErrorMsg())
    finally:
        gdal.PopErrorHandler()
    if failures:
        raise InputError(write_failure_message(target, failures))


class ScoreRasterWriter:
    """Writes a raster window by window under a temporary name, then renames it.

    Args:
        path: Final output path (a GeoTIFF).
        like: The grid to copy: a :class:`~uniadrs_engine.raster.reader.RasterSource` or a
            :class:`RasterGrid`.
        band_count: Number of output bands.
        dtype: Output pixel type.
        nodata: Value written at invalid pixels (also set as the bands' nodata); None for none.
        creation_options: GeoTIFF creation options.
        band_descriptions: Optional description of each band.
        overviews: GDAL resampling of internal overviews built on commit for outputs larger
            than :data:`OVERVIEW_MIN_SIDE` (``"AVERAGE"``, ``"NEAREST"``...), so that GIS
            software shows them at any zoom without reading every pixel; None: none (for
            intermediate files).
        reported_as: The file a failed write is reported as (the final output of which this
            is an intermediate); ``path`` by default.
        metadata: Dataset metadata items (:func:`provenance`: how the scores were made, for
            QGIS's layer properties and ``gdalinfo``).

    Raises:
        InputError: If :func:`check_geotiff_path` refuses the path (its ending, its folder)
            or the file cannot be created.
    """

    def __init__(
        self,
        path: PathLike,
        like: GridLike,
        band_count: int = 1,
        dtype: Any = np.float32,
        nodata: Optional[float] = SCORE_NODATA,
        creation_options: Sequence[str] = DEFAULT_CREATION_OPTIONS,
        band_descriptions: Optional[Sequence[str]] = None,
        overviews: Optional[str] = None,
        reported_as: Optional[PathLike] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.path = check_geotiff_path(path)
        self.reported_as = Path(reported_as) if reported_as is not None else self.path
        self.overviews = overviews
        self.width = int(like.width)
        self.height = int(like.height)
        self.band_count = int(band_count)
        self.dtype = np.dtype(dtype)
        self.nodata = nodata
        self.temp_path = temporary_sibling(self.path, ".tif")
        self._dataset: Optional[gdal.Dataset] = None
        self.committed = False
        # from here on the temporary file may exist: anything that stops the set-up (an
        # error, or Ctrl-C and the stop signals, which arrive between any two steps)
        # deletes it, since no ``with`` block or caller holds the writer yet
        try:
            type_code = gdal_array.NumericTypeCodeToGDALTypeCode(self.dtype)
            if type_code is None:
                raise InputError(f"cannot write rasters of type {self.dtype}")
            with quiet_gdal_errors():
                try:
                    dataset = gdal.GetDriverByName("GTiff").Create(
                        str(self.temp_path),
                        self.width,
                        self.height,
                        self.band_count,
                        type_code,
                        options=_creation_options_for(self.dtype, creation_options),
                    )
                except RuntimeError as error:
                    dataset = None
                    message = str(error)
                else:
                    message = gdal.GetLastErrorMsg()
            if dataset is None:
                raise InputError(f"cannot create {self.path}: {message or 'GDAL error'}")
            self._dataset = dataset
            set_georeference(dataset, like)
            if metadata:
                dataset.SetMetadata({str(key): str(value) for key, value in metadata.items()})
            for index in range(self.band_count):
                band = dataset.GetRasterBand(index + 1)
                if nodata is not None:
                    band.SetNoDataValue(float(nodata))
                if band_descriptions is not None and index < len(band_descriptions):
                    band.SetDescription(str(band_descriptions[index]))
        except BaseException as error:
            band = dataset = None
            self._close_for_removal(error)
            raise

    @classmethod
    def for_grid(
        cls,
        path: PathLike,
        width: int,
        height: int,
        geotransform: Sequence[float] = NO_GEOTRANSFORM,
        projection: str = "",
        **options: Any,
    ) -> ScoreRasterWriter:
        """Creates a writer from an explicit grid (e.g. a ``uint8`` mask with nodata 255)."""
        grid = RasterGrid(int(width), int(height), tuple(geotransform), projection or "")
        return cls(path, grid, **options)

    @property
    def is_open(self) -> bool:
        """True until the writer is committed or aborted."""
        return self._dataset is not None

    def write(self, window: Window, values: np.ndarray, valid: Optional[np.ndarray] = None) -> None:
        """Writes one window.

        Args:
            window: Where to write, inside the grid.
            values: ``[rows, cols]`` (one band) or ``[bands, rows, cols]``.
            valid: Optional ``bool [rows, cols]``; nodata is written where False. Non-finite
                values of float outputs are written as nodata too.

        Raises:
            ValueError: If shapes disagree with the window or the band count.
        """
        if self._dataset is None:
            raise ValueError(f"writer of {self.path} is already closed")
        xoff, yoff, xsize, ysize = (int(value) for value in window)
        if xoff < 0 or yoff < 0 or xoff + xsize > self.width or yoff + ysize > self.height:
            raise ValueError(f"window {tuple(window)} lies outside {self.width}x{self.height}")
        stack = values[None] if values.ndim == 2 else values
        if stack.shape != (self.band_count, ysize, xsize):
            raise ValueError(
                f"values of shape {values.shape} do not fit window {tuple(window)} "
                f"with {self.band_count} band(s)"
            )
        invalid = None if valid is None else ~np.asarray(valid, dtype=bool)
        if invalid is not None and invalid.shape != (ysize, xsize):
            raise ValueError(f"valid mask of shape {invalid.shape} does not fit the window")
        if self.dtype.kind == "f":
            non_finite = ~np.isfinite(stack).all(axis=0)
            if non_finite.any():
                invalid = non_finite if invalid is None else invalid | non_finite
        output = stack.astype(self.dtype, copy=True)
        if invalid is not None and invalid.any():
            if self.nodata is None:
                raise ValueError("cannot mark invalid pixels: the writer has no nodata value")
            output[:, invalid] = self.nodata
        with gdal_write_errors(self.reported_as):
            for index in range(self.band_count):
                self._dataset.GetRasterBand(index + 1).WriteArray(output[index], xoff, yoff)

    def commit(self) -> Path:
        """Closes the file and renames it to its final name; returns the final path."""
        if self.committed:
            return self.path
        if self._dataset is None:
            raise ValueError(f"writer of {self.path} was aborted")
        try:
            levels = overview_levels(self.width, self.height) if self.overviews else []
            if levels:
                with quiet_gdal_errors():
                    try:
                        self._dataset.BuildOverviews(self.overviews, levels)
                    except RuntimeError as error:
                        message = write_failure_message(self.reported_as, str(error))
                        if message.startswith("cannot write"):
                            message = f"cannot build the overviews of {self.path}: {error}"
                        raise InputError(message) from None
            with gdal_write_errors(self.reported_as):
                self._dataset.FlushCache()
                self._dataset = None  # closes the file, writing what is left
            with gdal_write_errors(self.reported_as):  # GDAL resets its error state when it opens
                written = gdal.Open(str(self.temp_path))
                if written is None:
                    raise RuntimeError(gdal.GetLastErrorMsg() or "the file cannot be read back")
                written = None
            remove_stale_sidecar(self.path)
            os.replace(self.temp_path, self.path)
        except BaseException as error:
            self._close_for_removal(error)
            raise
        self.committed = True
        return self.path

    def abort(self) -> None:
        """Closes and deletes the temporary file; nothing appears under the final name."""
        self._dataset = None
        if not self.committed:
            self._remove_temp()

    def _close_for_removal(self, error: BaseException) -> None:
        """Closes the file and deletes it, on the way out of ``error``.

        The traceback's frames may still hold the dataset (a GDAL call that failed or was
        interrupted); they are cleared first so that GDAL closes the file before it is
        deleted (Windows cannot delete an open file). A file that cannot be deleted is
        logged, so that ``error`` is what the caller sees.
        """
        self._dataset = None
        release_frames(error)
        self._remove_temp()

    def _remove_temp(self) -> None:
        for leftover in (self.temp_path, Path(f"{self.temp_path}{SIDECAR_SUFFIX}")):
            delete_leftover(leftover)

    def __enter__(self) -> ScoreRasterWriter:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None and self._dataset is not None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "committed" if self.committed else ("open" if self.is_open else "aborted")
        return f"ScoreRasterWriter({str(self.path)!r}, {self.width}x{self.height}, {state})"


def provenance(**items: object) -> Dict[str, str]:
    """Metadata items saying how an output was made: ``UNIADRS_<NAME>``, and the version.

    Example:
        >>> provenance(preset="sar", scales=(0.5, 1))["UNIADRS_SCALES"]
        '0.5,1'
    """
    from uniadrs_engine import __version__

    metadata = {"UNIADRS_VERSION": __version__}
    for name, value in items.items():
        if isinstance(value, (tuple, list)):
            value = ",".join(
                f"{item:g}" if isinstance(item, float) else str(item) for item in value
            )
        elif isinstance(value, float):
            value = f"{value:g}"
        metadata[f"UNIADRS_{name.upper()}"] = str(value)
    return metadata


def delete_leftover(path: PathLike) -> None:
    """Deletes a temporary file if it is there; one that cannot be deleted is logged.

    Called on the way out of an error or a stop, so that a file Windows keeps (in use by
    another program, an antivirus scan) never hides what went wrong; a later run's sweep
    (:func:`sweep_stale_temporaries`) deletes it.
    """
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as failure:
        LOGGER.warning("could not delete the temporary file %s: %s", path, failure)


def release_frames(error: BaseException) -> None:
    """Lets go of what the frames ``error`` passed through hold, GDAL datasets above all.

    A GDAL call that failed or was interrupted leaves its dataset in the traceback's frames
    (those still running keep theirs); clearing them closes it now, so that its files can be
    deleted (Windows cannot delete an open file) and nothing more is written to them.
    """
    with quiet_gdal_errors():  # what GDAL says while closing a failed file
        traceback.clear_frames(error.__traceback__)


def write_text_file(path: PathLike, text: str) -> Path:
    """Writes a text output (a report, a table) complete or not at all.

    The text goes to a temporary name in the same folder (:func:`temporary_sibling`), which
    is then renamed.

    Raises:
        InputError: If the folder is refused (:func:`check_output_folder`) or the file cannot
            be written (a full disk, say).
    """
    path = check_output_folder(path)
    temp_path = temporary_sibling(path, path.suffix)
    try:
        temp_path.write_text(text, encoding="utf-8")
        os.replace(temp_path, path)
    except OSError as error:
        raise InputError(write_failure_message(path, error.strerror or str(error))) from None
    finally:
        delete_leftover(temp_path)
    return path


#: Files GDAL (and QGIS's Build Pyramids) keep beside a raster: its statistics, external
#: overviews and their statistics, an external mask. An older file's would describe, or
#: draw (overviews), the older content over a new file of that name.
STALE_SIDECAR_SUFFIXES = (SIDECAR_SUFFIX, ".ovr", f".ovr{SIDECAR_SUFFIX}", ".msk")


def remove_stale_sidecar(path: PathLike) -> None:
    """Deletes what GDAL kept beside an older file of that name (:data:`STALE_SIDECAR_SUFFIXES`).

    A name too long to have a sidecar has none; any other failure is raised.
    """
    for suffix in STALE_SIDECAR_SUFFIXES:
        try:
            Path(f"{path}{suffix}").unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            if error.errno != errno.ENAMETOOLONG:
                raise


def remove_if_exists(path: PathLike) -> None:
    """Deletes ``path`` if it exists (used to clean up temporary rasters)."""
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
