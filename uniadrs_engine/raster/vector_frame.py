"""Where vectors traced from, or burnt into, a raster lie, and how their areas are measured.

Polygons are traced from a raster (anomaly objects) and burnt into one (ground truth) in the
raster's *frame*, a geotransform, and :class:`VectorFrame` carries them between that frame,
map coordinates and pixels:

* A raster with a geotransform: the frame is its geotransform, in its CRS's coordinates.
* A raster without any georeferencing: :data:`UNREFERENCED_FRAME`, where QGIS draws it
  (one unit per pixel, rows going down to negative y).
* A raster georeferenced by ground control points only (raw satellite products such as
  Sentinel-1 GRD): the frame is pixel and line, and geometries are carried into the GCPs'
  CRS by GDAL's GCP transformer with its default options: the transform ``gdalwarp`` uses,
  and QGIS, which draws such a raster through an automatically warped VRT. Their edges are
  first cut into pieces of :data:`SEGMENT_PIXELS` pixels, so that a long straight edge
  follows the transform's bend. So polygons overlay the raster where QGIS draws it.
* A raster georeferenced by rational polynomial coefficients only (raw optical satellite
  products): likewise, through GDAL's RPC transformer at the coefficients' mean height
  (``HEIGHT_OFF``), as QGIS draws it, into longitude and latitude (WGS 84). (``gdalwarp``
  warps at height 0 unless told ``-to RPC_HEIGHT=<HEIGHT_OFF>``.)
* With too few ground control points (or unusable coefficients) for a transform, QGIS draws
  the raster as one without georeferencing, and so do the polygons
  (:attr:`VectorFrame.warning` says so).

Areas (:meth:`VectorFrame.area`) are in squared CRS units, in pixels on a raster without
georeferencing, and in square metres on a geographic CRS (degrees measure no object): there
the area is integrated on the CRS's ellipsoid, ``b^2/2 * sum of q(latitude) d(longitude)``
along the outline (the authalic latitude function ``q``), exact for the parallels and
meridians that outline a pixel and independent of where the object lies.

Example:
    >>> frame = VectorFrame(4, 3, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "")
    >>> frame.geotransform, frame.area_unit
    ((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), 'pixels')
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal, ogr, osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import NO_GEOTRANSFORM, quiet_gdal_errors

#: Where QGIS draws a raster without a geotransform: one unit per pixel, rows going down
#: from y = 0 to negative y. Vectors traced from (or burnt into) such a raster use it.
UNREFERENCED_FRAME: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)

#: Longest edge, in pixels, carried through ground control points or polynomial
#: coefficients in one piece (a 300 px edge on a bent grid strayed 4.5 px; 8 px ones stay
#: within a hundredth of a pixel).
SEGMENT_PIXELS = 8.0

#: The CRS of the coordinates rational polynomial coefficients map to.
_WGS84_WKT = osr.SRS_WKT_WGS84_LAT_LONG

#: GDAL transformer directions.
_TO_MAP, _TO_PIXELS = 0, 1


def spatial_reference(wkt: str) -> Optional[osr.SpatialReference]:
    """A CRS given as WKT, in the x = easting (longitude) axis order vectors use; None if empty."""
    if not wkt:
        return None
    reference = osr.SpatialReference()
    if reference.ImportFromWkt(wkt) != 0:
        raise InputError(f"unreadable coordinate reference system: {wkt[:80]}")
    reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return reference


class VectorFrame:
    """Carries geometries between a raster's frame, map coordinates and pixels; measures areas.

    Args:
        width: Raster columns.
        height: Raster rows.
        geotransform: The raster's geotransform (GDAL's placeholder when it has none).
        projection: The raster's CRS as WKT, or ``''``.
        gcps: Its ground control points; used only when it has no geotransform.
        gcp_projection: The CRS of the ``gcps`` as WKT, or ``''``.
        rpc: Its rational polynomial coefficients (GDAL's ``RPC`` metadata); used only when
            it has neither a geotransform nor ground control points.

    Attributes:
        geotransform: The frame's geotransform: the raster's, :data:`UNREFERENCED_FRAME`, or
            pixel and line (GDAL's placeholder) when geometries go through a transformer.
        srs: The CRS of the geometries in map coordinates, or None when unknown.
        area_unit: What :meth:`area` measures in, for messages (``"square metres"``,
            ``"squared map units"`` or ``"pixels"``).
        warning: Why the ground control points or coefficients of a raster are not used, or
            None.
    """

    def __init__(
        self,
        width: int,
        height: int,
        geotransform: Sequence[float],
        projection: str,
        gcps: Sequence[gdal.GCP] = (),
        gcp_projection: str = "",
        rpc: Optional[Mapping[str, str]] = None,
    ) -> None:
        georeferenced = tuple(float(value) for value in geotransform) != NO_GEOTRANSFORM
        self.warning: Optional[str] = None
        self._transformer: Optional[Any] = None
        map_wkt = projection if georeferenced else ""
        if not georeferenced and (gcps or rpc):
            self._transformer, self.warning = _warp_transformer(width, height, gcps, rpc)
            if self._transformer is not None:
                map_wkt = gcp_projection if gcps else _WGS84_WKT
            else:  # QGIS draws it unreferenced, and names the points' CRS
                map_wkt = gcp_projection
        if self.warps:
            self.geotransform: Tuple[float, ...] = NO_GEOTRANSFORM
        elif georeferenced:
            self.geotransform = tuple(float(value) for value in geotransform)
        else:
            self.geotransform = UNREFERENCED_FRAME
        self.srs = spatial_reference(map_wkt)
        self._ellipsoid: Optional[Tuple[float, float, float]] = None
        in_map_units = georeferenced or self.warps  # not pixels labelled with a CRS
        if in_map_units and self.srs is not None and self.srs.IsGeographic():
            self._ellipsoid = (
                float(self.srs.GetSemiMajor()),
                _squared_eccentricity(self.srs),
                float(self.srs.GetAngularUnits()),
            )
            self.area_unit = "square metres"
        elif in_map_units:
            self.area_unit = "squared map units"
        else:
            self.area_unit = "pixels"
        self._map_step = self._map_segment(width, height) if self.warps else 0.0

    @classmethod
    def of(cls, raster: Any) -> VectorFrame:
        """The frame of an open raster (a :class:`~uniadrs_engine.raster.reader.RasterSource`)."""
        return cls(
            raster.width,
            raster.height,
            raster.geotransform,
            raster.projection,
            getattr(raster, "gcps", ()),
            getattr(raster, "gcp_projection", ""),
            getattr(raster, "rpc", None),
        )

    @property
    def warps(self) -> bool:
        """Whether map coordinates come from ground control points or polynomial coefficients."""
        return self._transformer is not None

    def to_map(self, geometry: ogr.Geometry) -> ogr.Geometry:
        """A geometry in the frame's coordinates, carried into map coordinates (a copy)."""
        copy = geometry.Clone()
        if self._transformer is not None:
            copy.Segmentize(SEGMENT_PIXELS)
            _transform_points(copy, self._transformer, _TO_MAP)
        return copy

    def to_pixels(self, geometry: ogr.Geometry) -> ogr.Geometry:
        """A geometry in map coordinates (of :attr:`srs`), carried into pixel and line (a copy).

        Pixel ``(0, 0)`` is the raster's top-left corner; a polygon burnt into a raster
        without any geotransform lands where QGIS draws it.
        """
        copy = geometry.Clone()
        if self._transformer is not None:
            if self._map_step > 0:
                copy.Segmentize(self._map_step)
            _transform_points(copy, self._transformer, _TO_PIXELS)
        else:
            inverse = gdal.InvGeoTransform(self.geotransform)
            if inverse is None:
                raise InputError("the raster's geotransform cannot be inverted")
            _apply_geotransform(copy, inverse)
        return copy

    def area(self, geometry: ogr.Geometry) -> float:
        """The area of a geometry in map coordinates, in :attr:`area_unit`."""
        if self._ellipsoid is None:
            return float(geometry.GetArea())
        return _ellipsoidal_area(geometry, *self._ellipsoid)

    def _map_segment(self, width: int, height: int) -> float:
        """The map length of :data:`SEGMENT_PIXELS` pixels at the raster's centre."""
        assert self._transformer is not None
        x, y = width / 2.0, height / 2.0
        step = SEGMENT_PIXELS
        points, ok = self._transformer.TransformPoints(
            _TO_MAP, [(x, y), (x + step, y), (x, y + step)]
        )
        if not all(ok):
            return 0.0
        (x0, y0, _), (x1, y1, _), (x2, y2, _) = points
        return float(min(math.hypot(x1 - x0, y1 - y0), math.hypot(x2 - x0, y2 - y0)))


def _warp_transformer(
    width: int, height: int, gcps: Sequence[gdal.GCP], rpc: Optional[Mapping[str, str]]
) -> Tuple[Optional[Any], Optional[str]]:
    """The transformer QGIS draws a GCP- or RPC-referenced raster with, or None and why not."""
    dataset = gdal.GetDriverByName("MEM").Create("", int(width), int(height), 0)
    if gcps:
        dataset.SetGCPs(list(gcps), "")
        options: List[str] = []
        what = f"its {len(gcps)} ground control points"
    else:
        rpc = dict(rpc or {})
        dataset.SetMetadata(rpc, "RPC")
        options = ["METHOD=RPC", f"RPC_HEIGHT={rpc.get('HEIGHT_OFF', '0')}"]
        what = "its rational polynomial coefficients"
    reason = ""
    with quiet_gdal_errors():
        try:
            transformer = gdal.Transformer(dataset, None, options)
        except RuntimeError as error:  # GDAL's exceptions are on
            transformer, reason = None, str(error)
        if transformer is None:
            reason = reason or gdal.GetLastErrorMsg()
    if transformer is None:
        reason = reason or "GDAL found no transform"
        return None, (
            f"{what} give no transform ({reason}), so QGIS draws it as a raster without "
            "georeferencing, and the polygons follow"
        )
    return transformer, None


def _squared_eccentricity(reference: osr.SpatialReference) -> float:
    """The squared eccentricity of a CRS's ellipsoid (0 for a sphere)."""
    inverse_flattening = float(reference.GetInvFlattening())
    if inverse_flattening <= 0:
        return 0.0
    flattening = 1.0 / inverse_flattening
    return flattening * (2.0 - flattening)


def _authalic_q(latitude: np.ndarray, e2: float) -> np.ndarray:
    """The authalic function ``q`` of latitudes in radians (``2 sin`` on a sphere)."""
    sine = np.sin(latitude)
    if e2 == 0.0:
        return 2.0 * sine
    e = math.sqrt(e2)
    return sine / (1.0 - e2 * sine**2) + np.log((1.0 + e * sine) / (1.0 - e * sine)) / (2.0 * e)


def _ring_integral(ring: ogr.Geometry, e2: float, radians_per_unit: float) -> float:
    """``sum of q(latitude) d(longitude)`` around a ring, edges straight in longitude-latitude."""
    points = np.asarray(ring.GetPoints() or [], dtype=np.float64)
    if len(points) < 3:
        return 0.0
    longitude, latitude = points[:, 0] * radians_per_unit, points[:, 1] * radians_per_unit
    ends = _authalic_q(latitude, e2)
    middle = _authalic_q((latitude[:-1] + latitude[1:]) / 2.0, e2)
    # Simpson's rule along each edge: exact along a parallel, where q is constant
    return float(np.sum(np.diff(longitude) * (ends[:-1] + 4.0 * middle + ends[1:]) / 6.0))


def _ellipsoidal_area(
    geometry: ogr.Geometry, semi_major: float, e2: float, radians_per_unit: float
) -> float:
    """The area of (multi)polygons in longitude and latitude on an ellipsoid, in its units²."""
    name = geometry.GetGeometryName()
    if name == "MULTIPOLYGON":
        parts = [geometry.GetGeometryRef(index) for index in range(geometry.GetGeometryCount())]
        return sum(_ellipsoidal_area(part, semi_major, e2, radians_per_unit) for part in parts)
    if name != "POLYGON":
        return 0.0
    rings = [geometry.GetGeometryRef(index) for index in range(geometry.GetGeometryCount())]
    if not rings:
        return 0.0
    outer = abs(_ring_integral(rings[0], e2, radians_per_unit))
    holes = sum(abs(_ring_integral(ring, e2, radians_per_unit)) for ring in rings[1:])
    semi_minor_squared = semi_major**2 * (1.0 - e2)
    return semi_minor_squared / 2.0 * (outer - holes)


def _move_points(
    geometry: ogr.Geometry, move: Callable[[List[Tuple[float, float]]], List[Tuple[float, float]]]
) -> None:
    """Moves every vertex of ``geometry`` (in place): ``move`` maps a part's points."""
    parts = geometry.GetGeometryCount()
    if parts:
        for index in range(parts):
            _move_points(geometry.GetGeometryRef(index), move)
        return
    points = [(point[0], point[1]) for point in geometry.GetPoints() or []]
    for index, (x, y) in enumerate(move(points) if points else []):
        geometry.SetPoint_2D(index, x, y)


def _transform_points(geometry: ogr.Geometry, transformer: Any, direction: int) -> None:
    """Moves every vertex of ``geometry`` (in place) through a GDAL transformer."""

    def move(points: List[Tuple[float, float]]) -> List[Tuple[float, float]]:
        moved, ok = transformer.TransformPoints(direction, points)
        if not all(ok):
            raise InputError("a vertex could not be carried between pixels and map coordinates")
        return [(point[0], point[1]) for point in moved]

    _move_points(geometry, move)


def _apply_geotransform(geometry: ogr.Geometry, transform: Sequence[float]) -> None:
    """Moves every vertex of ``geometry`` (in place) through an affine geotransform."""
    x0, dx, rx, y0, ry, dy = transform
    _move_points(
        geometry,
        lambda points: [(x0 + x * dx + y * rx, y0 + x * ry + y * dy) for x, y in points],
    )
