"""Windowed reading of any GDAL raster, with nodata and non-finite pixels masked.

A raster is never read whole: :func:`open_raster` returns a :class:`RasterSource` whose
:meth:`~RasterSource.read_window` reads one ``(xoff, yoff, xsize, ysize)`` window of the
selected bands as ``float32 [bands, rows, cols]`` plus a ``bool [rows, cols]`` validity mask.
A pixel is valid when every selected band is finite and differs from that band's nodata value
(and, where the file has one, GDAL's explicit mask says so: an alpha band, an internal or
``.msk`` mask); invalid pixels hold 0 in the returned data. A
:class:`~uniadrs_engine.raster.nodata.NodataRule` adds values that hold no data (a fill the
file does not declare) or sets the file's nodata aside.

Example:
    >>> with open_raster("scene.tif", bands=[1, 2, 3]) as source:  # doctest: +SKIP
    ...     block = source.read_window(Window(0, 0, source.width, 16))
    ...     block.data.shape, block.valid.shape
    ((3, 16, 512), (16, 512))
"""

from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from osgeo import gdal, gdal_array, osr

from uniadrs_engine.errors import ContainerError, InputError
from uniadrs_engine.raster.nodata import NodataRule

PathLike = Union[str, Path]

#: Pixel types whose every value float32 holds exactly.
FLOAT32_EXACT_TYPES = frozenset(
    np.dtype(name)
    for name in ("uint8", "int8", "uint16", "int16", "float16", "float32", "complex64")
)

#: GDAL's geotransform of a raster without one (pixel coordinates).
NO_GEOTRANSFORM: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

#: Subdatasets a container's error names (the rest are counted).
MAX_SUBDATASETS_NAMED = 3

#: The metadata key of a subdataset's GDAL name.
_SUBDATASET_NAME_KEY = re.compile(r"SUBDATASET_(\d+)_NAME")

#: ``NETCDF:"file.nc":var``-style GDAL names (a driver prefix of two or more letters).
_GDAL_PREFIXED_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:")


class Window(NamedTuple):
    """A rectangle of pixels, as GDAL's ``ReadAsArray(xoff, yoff, xsize, ysize)`` takes it."""

    xoff: int
    yoff: int
    xsize: int
    ysize: int


@dataclass
class RasterBlock:
    """The selected bands of one window, with its validity mask.

    Attributes:
        data: ``float32 [bands, rows, cols]`` (float64 from a source opened ``exact``);
            invalid pixels hold 0.
        valid: ``bool [rows, cols]``; True where every band is finite and not nodata.
        band_counts: ``int64 [bands]``: the pixels where each band on its own holds a value
            (finite, not its nodata, inside GDAL's explicit masks); a band that holds none
            anywhere in the raster leaves no pixel valid (see
            :func:`~uniadrs_engine.raster.statistics.without_empty_bands`).
    """

    data: np.ndarray
    valid: np.ndarray
    band_counts: np.ndarray


def band_holds_value(values: np.ndarray, nodata: Optional[float]) -> np.ndarray:
    """Where one band holds a value: finite and not its nodata value.

    Args:
        values: One band's pixels in the file's own type (any shape).
        nodata: The band's nodata value as its pixels hold it (:func:`band_nodata`), or None.

    Returns:
        Bool of the shape of ``values``.
    """
    floating = values.dtype.kind == "f"
    holds = np.isfinite(values) if floating else np.ones(values.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        # compare in float64 so large integers keep their exact value (a float32 band's
        # nodata comes as its pixels hold it: :func:`band_nodata`)
        holds &= values.astype(np.float64, copy=False) != nodata
    return holds


def band_nodata(band: gdal.Band) -> Optional[float]:
    """A band's nodata value as its pixels hold it, or None.

    A float32 band stores the nearest float32 to its nodata: an ENVI header's or a VRT's
    -9999.9 is -9999.900390625 in its pixels, and GDAL compares them so. Given this value,
    :func:`band_holds_value` matches them whatever type the pixels are read in (a VRT's
    bands are read in its first band's type).
    """
    nodata = band.GetNoDataValue()
    if nodata is not None and band.DataType in (gdal.GDT_Float32, gdal.GDT_CFloat32):
        with np.errstate(over="ignore"):
            nodata = float(np.float32(nodata))
    return nodata


def crs_wkt(crs: str) -> str:
    """A CRS given as WKT, ``EPSG:32633``, a PROJ string... as WKT.

    Raises:
        InputError: If GDAL does not read it as a CRS.
    """
    reference = osr.SpatialReference()
    with quiet_gdal_errors():
        try:
            failed = reference.SetFromUserInput(str(crs)) != 0
        except RuntimeError:
            failed = True
    if failed:
        raise InputError(f"not a coordinate reference system GDAL reads: {crs!r}")
    return str(reference.ExportToWkt())


def stored_type(band: gdal.Band) -> np.dtype:
    """The numpy type of a band's values as read raw (a complex band's: its amplitude's)."""
    code = gdal_array.GDALTypeCodeToNumericTypeCode(band.DataType)
    stored = np.dtype(code if code is not None else np.float64)
    return np.dtype(np.abs(np.zeros(1, stored)).dtype) if stored.kind == "c" else stored


def band_unscaling(band: gdal.Band) -> Optional[Tuple[float, float]]:
    """A band's ``(scale, offset)`` from stored values to its units, or None for none.

    GDAL's scale and offset (a GeoTIFF's, a VRT's, a NetCDF's ``scale_factor`` and
    ``add_offset``): the value a pixel means is ``stored * scale + offset``.
    """
    scale = band.GetScale()
    offset = band.GetOffset()
    scale = 1.0 if scale is None else float(scale)
    offset = 0.0 if offset is None else float(offset)
    if (scale, offset) == (1.0, 0.0) or not (math.isfinite(scale) and math.isfinite(offset)):
        return None
    return scale, offset


def describe_bands(bands: Sequence[int]) -> str:
    """Names 1-based bands compactly, runs of consecutive numbers as ranges.

    Example:
        >>> describe_bands([4])
        'band 4'
        >>> describe_bands([2, 130, 131, 132, 135])
        'bands 2, 130-132, 135'
    """
    runs: List[List[int]] = []
    for band in bands:
        if runs and band == runs[-1][-1] + 1:
            runs[-1].append(band)
        else:
            runs.append([band])
    parts = [str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs]
    return ("band " if len(bands) == 1 else "bands ") + ", ".join(parts)


@contextmanager
def quiet_gdal_errors() -> Iterator[None]:
    """Keeps GDAL from printing errors on stderr; callers turn them into one-line errors."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def limit_gdal_cache(max_mb: float) -> None:
    """Lowers GDAL's block cache (process-wide) to ``max_mb`` MiB if it is larger.

    GDAL caches raster blocks up to ``GDAL_CACHEMAX`` (5% of the RAM by default) on top of
    the engine's own ``memory_mb``. Command-line runs cap it; inside QGIS the application's
    setting is left alone.
    """
    limit = int(max_mb * 1024 * 1024)
    if gdal.GetCacheMax() > limit:
        gdal.SetCacheMax(limit)


def _gdal_message(default: str) -> str:
    """Returns GDAL's last error message, or ``default`` when it has none."""
    message = gdal.GetLastErrorMsg().strip()
    return message.splitlines()[0] if message else default


def is_gdal_name(path: str) -> bool:
    """Tells virtual (``/vsizip/...``) and driver-prefixed names from plain file paths.

    Example:
        >>> is_gdal_name('NETCDF:"scene.nc":radiance'), is_gdal_name("C:/scene.tif")
        (True, False)
    """
    return path.startswith("/vsi") or bool(_GDAL_PREFIXED_NAME.match(path))


def _explicit_mask_bands(dataset: gdal.Dataset, band_indices: List[int]) -> List[gdal.Band]:
    """GDAL masks to honour besides nodata: alpha bands, internal and ``.msk`` masks.

    A mask shared by all bands (per dataset) is read once; masks that only restate the
    nodata value or say "all valid" are skipped (nodata is compared directly). GDAL makes
    an alpha band the mask of the others only in 2- and 4-band rasters; any other alpha
    band (an RGBN image with alpha) masks them here too.
    """
    masks: List[gdal.Band] = []
    per_dataset_seen = alpha_seen = False
    for index in band_indices:
        band = dataset.GetRasterBand(index)
        flags = band.GetMaskFlags()
        if flags & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA):
            continue
        if flags & gdal.GMF_PER_DATASET:
            if per_dataset_seen:
                continue
            per_dataset_seen = True
        alpha_seen = alpha_seen or bool(flags & gdal.GMF_ALPHA)
        masks.append(band.GetMaskBand())
    if not alpha_seen:
        masks += [dataset.GetRasterBand(index) for index in alpha_bands(dataset)]
    return masks


def rgb_palette(dataset: gdal.Dataset) -> Optional[np.ndarray]:
    """The ``(3, entries)`` red, green and blue of a one-band paletted raster, or None.

    A paletted image (a GIF, an 8-bit PNG or TIFF with a colour table) stores an index per
    pixel; its colours, not the indices, are what the image shows, so it is read as three
    bands of colour (:class:`RasterSource`).
    """
    if dataset.RasterCount != 1:
        return None
    band = dataset.GetRasterBand(1)
    table = band.GetColorTable()
    if (
        table is None
        or band.GetColorInterpretation() != gdal.GCI_PaletteIndex
        or table.GetPaletteInterpretation() != gdal.GPI_RGB
        or table.GetCount() == 0
    ):
        return None
    entries = [table.GetColorEntry(index)[:3] for index in range(table.GetCount())]
    return np.asarray(entries, dtype=np.uint8).T.copy()


def subdataset_names(dataset: gdal.Dataset) -> List[str]:
    """The GDAL names of a container's subdatasets, in GDAL's order (``SUBDATASET_1`` first).

    Example:
        >>> dataset = gdal.GetDriverByName("MEM").Create("", 1, 1, 0)
        >>> for n in range(1, 12):
        ...     _ = dataset.SetMetadataItem(f"SUBDATASET_{n}_NAME", f"v{n}", "SUBDATASETS")
        >>> subdataset_names(dataset)[:3]
        ['v1', 'v2', 'v3']
    """
    metadata = dataset.GetMetadata("SUBDATASETS") or {}
    numbered = []
    for key, value in metadata.items():
        match = _SUBDATASET_NAME_KEY.fullmatch(key)
        if match:
            numbered.append((int(match.group(1)), value))
    return [value for _, value in sorted(numbered)]


def _subdatasets_hint(dataset: gdal.Dataset) -> str:
    """Names the subdatasets of a container (NetCDF, HDF, SAFE) to pass instead, or ``""``."""
    names = subdataset_names(dataset)
    if not names:
        return ""
    shown = ", ".join(names[:MAX_SUBDATASETS_NAMED])
    hidden = len(names) - MAX_SUBDATASETS_NAMED
    more = f" and {hidden} more" if hidden > 0 else ""
    plural = "s" if len(names) > 1 else ""
    return f" of its own: pass one of its subdataset{plural} instead: {shown}{more}"


def envi_bad_bands(dataset: gdal.Dataset) -> List[int]:
    """The 1-based bands an ENVI header's bad band list (``bbl``) marks as bad (0).

    ENVI headers carry ``bbl = {1, 1, 0, ...}``, one flag per band, for bands such as the
    water-vapour absorption bands of airborne spectrometers; GDAL puts the header's fields
    in the ``ENVI`` metadata domain. A list that does not hold one number per band, or that
    marks every band, is ignored.

    Example:
        >>> dataset = gdal.GetDriverByName("MEM").Create("", 2, 2, 3)
        >>> dataset.SetMetadataItem("bbl", "{1, 0, 1}", "ENVI")
        0
        >>> envi_bad_bands(dataset)
        [2]
    """
    text = (dataset.GetMetadata("ENVI") or {}).get("bbl")
    if not text:
        return []
    try:
        flags = [float(item) for item in text.strip().strip("{}").split(",") if item.strip()]
    except ValueError:
        return []
    if len(flags) != dataset.RasterCount:
        return []
    bad = [index + 1 for index, flag in enumerate(flags) if flag == 0]
    return [] if len(bad) == len(flags) else bad


def alpha_bands(dataset: gdal.Dataset) -> List[int]:
    """The 1-based bands that are an alpha (transparency) channel, not data.

    GDAL uses such a band as the mask of the others (a pixel is valid where it is not 0),
    so it is never scored or trained on as a band of its own.

    Example:
        >>> dataset = gdal.GetDriverByName("MEM").Create("", 2, 2, 4)
        >>> dataset.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
        0
        >>> alpha_bands(dataset)
        [4]
    """
    return [
        index
        for index in range(1, dataset.RasterCount + 1)
        if dataset.GetRasterBand(index).GetColorInterpretation() == gdal.GCI_AlphaBand
    ]


def select_bands(
    path: PathLike, bands: Optional[Sequence[int]] = None
) -> Tuple[Optional[List[int]], Tuple[int, ...]]:
    """The bands to read when ``bands`` are asked for, and the bad ones left out.

    An explicit selection is kept as it is. Without one, every band is read but those an
    ENVI header's bad band list marks (:func:`envi_bad_bands`) and an alpha band
    (:func:`alpha_bands`), which still masks the others.

    Args:
        path: The raster (as :func:`open_raster` takes it).
        bands: 1-based bands asked for, or None for the default selection.

    Returns:
        ``(bands, bad)``: the selection for :func:`open_raster` (None: all bands) and the
        1-based bands the bad band list left out.

    Raises:
        InputError: As :func:`open_raster`.
    """
    if bands is not None:
        return list(bands), ()
    with open_raster(path, colours=True) as source:
        bad = envi_bad_bands(source.dataset)
        alpha = alpha_bands(source.dataset)
        count = source.band_count
    if not bad and not alpha:
        return None, ()
    left_out = set(bad) | set(alpha)
    kept = [band for band in range(1, count + 1) if band not in left_out]
    if not kept:
        raise InputError(f"{path} holds no band but its alpha band")
    return kept, tuple(bad)


def _opens_as_vector(name: str) -> bool:
    """True when GDAL reads ``name`` as a vector dataset (call with GDAL errors quieted)."""
    try:
        return gdal.OpenEx(name, gdal.OF_VECTOR | gdal.OF_READONLY) is not None
    except RuntimeError:
        return False


class RasterSource:
    """An open raster with a band selection, read one window at a time.

    Use :func:`open_raster` to create one. Not thread-safe: open one source per thread.

    Attributes:
        path: The path or GDAL name the raster was opened from.
        width: Columns.
        height: Rows.
        band_indices: The selected bands, 1-based.
        band_count: ``len(band_indices)``.
        dtype: The numpy type of the file's (first selected) band.
        complex_bands: True when that type is complex (a SAR single-look complex image):
            each pixel's amplitude ``|z|`` is read then, as float32.
        value_dtype: The type :meth:`read_window` returns values in: float32, or float64 for
            a raster opened ``exact`` whose values float32 cannot all hold.
        geotransform: GDAL's 6-tuple geotransform.
        projection: The coordinate reference system as WKT, or ``''`` (the ``crs`` given
            to :func:`open_raster` in place of the file's).
        gcps: The raster's ground control points (georeference of raw satellite products
            such as Sentinel-1 GRD, which have no geotransform), or ``()``.
        gcp_projection: The coordinate reference system of the ``gcps`` as WKT, or ``''``
            (the ``crs`` given to :func:`open_raster`, for a raster georeferenced by ground
            control points only).
        rpc: The raster's rational polynomial coefficients (GDAL's ``RPC`` metadata domain,
            the georeference of raw optical satellite products), or ``{}``.
        nodata: Per selected band, its nodata value or None (None for every band when the
            :attr:`nodata_rule` ignores the file's nodata).
        nodata_rule: Values that hold no data besides (or instead of) the file's nodata
            (:class:`~uniadrs_engine.raster.nodata.NodataRule`; the default changes nothing).
        unscaling: Per selected band, GDAL's ``(scale, offset)`` of its values, or None
            where it has none: :meth:`read_window` returns ``raw * scale + offset`` (a
            band stored as integers of 0.001 units is read in its units).
        block_size: The file's natural block ``(x, y)`` of the first selected band.
        palette: For a one-band paletted raster opened with ``colours=True``, its
            ``(3, entries)`` colours (:func:`rgb_palette`), else None. Such a raster is read
            as three bands, red, green and blue (``band_indices`` count those); a pixel
            whose index is the file's nodata value, or has no colour in the table, is not
            valid. Masks and labels are opened without ``colours``: their indices are what
            they say.
    """

    def __init__(
        self,
        dataset: gdal.Dataset,
        path: str,
        band_indices: List[int],
        palette: Optional[np.ndarray] = None,
        exact: bool = False,
        stored: bool = False,
        float32_range: bool = False,
        nodata_rule: Optional[NodataRule] = None,
        crs: Optional[str] = None,
    ) -> None:
        self._dataset: Optional[gdal.Dataset] = dataset
        self.nodata_rule = nodata_rule or NodataRule()
        self._float32_range = float32_range
        self.path = path
        self.width: int = dataset.RasterXSize
        self.height: int = dataset.RasterYSize
        self.band_indices = list(band_indices)
        self.band_count = len(self.band_indices)
        self.palette = palette
        file_bands = [1] if self.palette is not None else self.band_indices
        bands = [dataset.GetRasterBand(index) for index in file_bands]
        type_code = gdal_array.GDALTypeCodeToNumericTypeCode(bands[0].DataType)
        if type_code is None:
            type_name = gdal.GetDataTypeName(bands[0].DataType)
            raise InputError(f"{path}: unsupported pixel type {type_name}")
        self.dtype = np.dtype(np.uint8 if self.palette is not None else type_code)
        self.complex_bands = self.dtype.kind == "c"
        wide = self.dtype not in FLOAT32_EXACT_TYPES and self.palette is None
        self.geotransform: Tuple[float, ...] = tuple(dataset.GetGeoTransform())
        self.projection: str = dataset.GetProjection() or ""
        self.gcps: Tuple[gdal.GCP, ...] = tuple(dataset.GetGCPs() or ())
        self.gcp_projection: str = dataset.GetGCPProjection() or ""
        self.rpc: Dict[str, str] = dict(dataset.GetMetadata("RPC") or {})
        if crs:  # the CRS the caller knows the raster in (a QGIS layer's, set by its user)
            if self.gcps and self.geotransform == NO_GEOTRANSFORM:
                self.gcp_projection = crs_wkt(crs)
            else:
                self.projection = crs_wkt(crs)
        self.nodata: List[Optional[float]] = [
            band_nodata(band) if self.nodata_rule.use_file_nodata else None for band in bands
        ]
        self.unscaling: List[Optional[Tuple[float, float]]] = [
            band_unscaling(band) for band in bands
        ]
        # each band's own type, as the no-data rule rounds its bounds (a VRT may mix types;
        # complex bands are read as amplitudes)
        self._stored_types = [stored_type(band) for band in bands]
        self._index_nodata: Optional[float] = None
        if self.palette is not None:  # the nodata is the index's, the colours have none
            self._index_nodata = self.nodata[0]
            self.nodata = [None] * self.band_count
            self.unscaling = [None] * self.band_count  # the colours' values are their own
        if self.complex_bands or stored:  # amplitudes (a scale of parts does not give
            self.unscaling = [None] * self.band_count  # them), or a mask's stored values
        # unscaled values (stored * scale + offset) float32 may round together, as it may wide
        # types' values
        scaled = any(unscaling is not None for unscaling in self.unscaling)
        self.value_dtype = np.dtype(np.float64 if exact and (wide or scaled) else np.float32)
        block_x, block_y = bands[0].GetBlockSize()
        self.block_size: Tuple[int, int] = (int(block_x), int(block_y))
        self._mask_bands = _explicit_mask_bands(dataset, file_bands)

    @property
    def dataset(self) -> gdal.Dataset:
        """The underlying GDAL dataset; raises if the source was closed."""
        if self._dataset is None:
            raise InputError(f"{self.path}: raster already closed")
        return self._dataset

    @property
    def pixel_size(self) -> Tuple[float, float]:
        """The pixel's width and height in map units (absolute values)."""
        transform = self.geotransform
        return (
            float(np.hypot(transform[1], transform[4])),
            float(np.hypot(transform[2], transform[5])),
        )

    def full_window(self) -> Window:
        """The window covering the whole raster."""
        return Window(0, 0, self.width, self.height)

    def read_window(self, window: Window) -> RasterBlock:
        """Reads the selected bands of ``window``.

        Args:
            window: Pixels to read; must lie inside the raster.

        Returns:
            The block's data in :attr:`value_dtype` (0 at invalid pixels) and its validity
            mask.

        Raises:
            InputError: If the window lies outside the raster or GDAL fails to read it.
        """
        xoff, yoff, xsize, ysize = (int(value) for value in window)
        if (
            xoff < 0
            or yoff < 0
            or xsize <= 0
            or ysize <= 0
            or xoff + xsize > self.width
            or yoff + ysize > self.height
        ):
            raise InputError(
                f"{self.path}: window {tuple(window)} lies outside the "
                f"{self.width}x{self.height} raster"
            )
        raw = self._read_raw(xoff, yoff, xsize, ysize)
        masked = np.ones((ysize, xsize), dtype=bool)
        for mask_band in self._mask_bands:
            masked &= self._read_mask(mask_band, xoff, yoff, xsize, ysize)
        if self.palette is not None:
            raw, coloured = self._colours(raw[0])
            masked &= coloured
        with np.errstate(over="ignore", invalid="ignore"):
            data = raw.astype(self.value_dtype)
            for values, unscaling in zip(data, self.unscaling):
                if unscaling is not None:
                    values *= unscaling[0]
                    values += unscaling[1]
        valid = masked.copy()
        band_counts = np.zeros(self.band_count, dtype=np.int64)
        compare_values = bool(self.nodata_rule.ranges) and self.palette is None
        for index, (band_data, nodata) in enumerate(zip(raw, self.nodata)):
            holds = band_holds_value(band_data, nodata)  # the file's nodata: stored values
            if compare_values:  # the rule's, given as read, taken back to stored values
                holds &= ~self.nodata_rule.matches(
                    band_data, self.unscaling[index], self._stored_types[index]
                )
            if self._mask_bands:
                holds &= masked
            band_counts[index] = np.count_nonzero(holds)
            valid &= holds
        if not valid.all():
            data[:, ~valid] = 0.0
        # float64 values beyond float32's range become inf: mask them too (and those read
        # in float64 for a reader that must pass them on as float32, ``float32_range``)
        overflow = ~np.isfinite(data).all(axis=0)
        if self._float32_range and data.dtype == np.float64:
            with np.errstate(invalid="ignore"):
                overflow |= (np.abs(data) > np.finfo(np.float32).max).any(axis=0)
        if overflow.any():
            valid &= ~overflow
            data[:, overflow] = 0.0
        return RasterBlock(data=data, valid=valid, band_counts=band_counts)

    def _read_raw(self, xoff: int, yoff: int, xsize: int, ysize: int) -> np.ndarray:
        """Reads the selected bands in the file's own type, ``[bands, rows, cols]``.

        Complex values are read as their amplitude (float32 or float64).
        """
        with quiet_gdal_errors():
            try:
                raw = self.dataset.ReadAsArray(
                    xoff,
                    yoff,
                    xsize,
                    ysize,
                    band_list=[1] if self.palette is not None else self.band_indices,
                )
            except RuntimeError as error:
                raise InputError(f"{self.path}: cannot read pixels: {error}") from None
            if raw is None:
                raise InputError(f"{self.path}: cannot read pixels: {_gdal_message('GDAL error')}")
        raw = np.asarray(raw)
        if raw.ndim == 2:
            raw = raw[None]
        if raw.dtype.kind == "c":
            raw = np.abs(raw)  # the amplitude of complex (SAR single-look complex) values
        return raw

    def _colours(self, index: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The selected colour bands of palette indices, and where an index has a colour."""
        assert self.palette is not None
        entries = self.palette.shape[1]
        coloured = (index >= 0) & (index < entries)
        if self._index_nodata is not None:
            coloured &= index != self._index_nodata
        if self.nodata_rule.ranges:  # a paletted image's rule compares its indices
            coloured &= ~self.nodata_rule.matches(index)
        safe = np.where(coloured, index, 0).astype(np.intp)
        selected = self.palette[[band - 1 for band in self.band_indices]]
        return selected[:, safe], coloured

    def _read_mask(
        self, mask_band: gdal.Band, xoff: int, yoff: int, xsize: int, ysize: int
    ) -> np.ndarray:
        """Reads an explicit GDAL mask (alpha band, internal or ``.msk`` mask) as bool."""
        with quiet_gdal_errors():
            try:
                mask = mask_band.ReadAsArray(xoff, yoff, xsize, ysize)
            except RuntimeError as error:
                raise InputError(f"{self.path}: cannot read the mask: {error}") from None
        if mask is None:
            raise InputError(f"{self.path}: cannot read the mask: {_gdal_message('GDAL error')}")
        return np.asarray(mask) != 0

    def close(self) -> None:
        """Releases the GDAL dataset; further reads raise."""
        self._dataset = None
        self._mask_bands = []

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RasterSource({self.path!r}, {self.width}x{self.height}, "
            f"bands={self.band_indices}, dtype={self.dtype})"
        )


def open_raster(
    path: PathLike,
    bands: Optional[Sequence[int]] = None,
    colours: bool = False,
    exact: bool = False,
    stored: bool = False,
    float32_range: bool = False,
    nodata: Optional[NodataRule] = None,
    crs: Optional[str] = None,
) -> RasterSource:
    """Opens a raster any GDAL driver can read, with an optional band selection.

    Args:
        path: A file path, or a GDAL name (``/vsizip/...``, ``NETCDF:"f.nc":var``).
        bands: 1-based band numbers to read, in that order; None selects all bands.
        colours: Read a one-band paletted image as the three bands of its colours (an
            image to score); otherwise its indices are read (a mask, a class map).
        exact: Read values that float32 cannot hold exactly (float64, 32- and 64-bit
            integers, and values of a band with GDAL's scale or offset) as float64, so that no
            two of them become equal (scores whose order matters: evaluation, thresholds;
            detection, which centres them before they become float32); otherwise every
            raster reads as float32.
        stored: Read the values as stored, without GDAL's scale and offset (masks, whose
            non-zero values are what counts).
        float32_range: Values beyond float32's range hold no data, also when read in
            float64 (a reader that passes them on as float32: detection).
        nodata: Values that hold no data besides (or instead of) the file's nodata
            (:class:`~uniadrs_engine.raster.nodata.NodataRule`); None: the file's alone.
        crs: The raster's CRS in place of the file's (WKT, ``EPSG:32633`` or any text GDAL's
            ``SetFromUserInput`` reads), as a QGIS layer whose CRS its user set has it: map
            units are measured in it and outputs on the raster's grid carry it. None: the
            file's.

    Returns:
        An open :class:`RasterSource` (use it as a context manager).

    Raises:
        InputError: If the file is missing, is not a raster GDAL can read, has no pixel or no
            band, or a selected band is out of range.
    """
    name = str(path)
    if not Path(name).exists() and not is_gdal_name(name):
        raise InputError(f"input raster not found: {name}")
    if Path(name).is_dir() and not name.lower().endswith((".zarr", ".gdb", ".safe")):
        raise InputError(f"{name} is a folder, not a raster")
    with quiet_gdal_errors():
        try:
            dataset = gdal.OpenEx(name, gdal.OF_RASTER | gdal.OF_READONLY)
        except RuntimeError:
            dataset = None
        if dataset is None:
            if Path(name).is_file() and not os.access(name, os.R_OK):
                raise InputError(f"cannot read {name}: permission denied")
            if _opens_as_vector(name):
                raise InputError(f"{name} has no raster band (it is a vector dataset)")
            raise InputError(f"{name} is not a raster GDAL can read")
    if dataset.RasterXSize <= 0 or dataset.RasterYSize <= 0:
        raise InputError(f"{name} has no pixel ({dataset.RasterXSize}x{dataset.RasterYSize})")
    if dataset.RasterCount <= 0:
        hint = _subdatasets_hint(dataset)
        raise (ContainerError if hint else InputError)(f"{name} has no raster band{hint}")
    palette = rgb_palette(dataset) if colours else None
    count = 3 if palette is not None else dataset.RasterCount
    if bands is None:
        band_indices = list(range(1, count + 1))
    else:
        band_indices = [int(band) for band in bands]
        if not band_indices:
            raise InputError(f"{name}: the band selection is empty")
        out_of_range = [band for band in band_indices if not 1 <= band <= count]
        if out_of_range:
            colours = " (colours of its palette)" if count != dataset.RasterCount else ""
            raise InputError(
                f"{name}: band {out_of_range[0]} is out of range "
                f"(the raster has {count} band(s){colours}, numbered from 1)"
            )
    return RasterSource(
        dataset,
        name,
        band_indices,
        palette,
        exact=exact,
        stored=stored,
        float32_range=float32_range,
        nodata_rule=nodata,
        crs=crs,
    )
