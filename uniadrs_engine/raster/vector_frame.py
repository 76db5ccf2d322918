"""Where vectors traced from, or burnt into, a raster lie, and how their areas are measured.

Polygons are traced from a raster (anomaly objects) and burnt into one (ground truth) in the
raster's *frame*, a geotransform (:func:`vector_geotransform`), and :class:`VectorFrame`
carries them between that frame and map coordinates:

* A raster with a geotransform: the frame is its geotransform, in its CRS's coordinates.
* A raster without any georeferencing: :data:`UNREFERENCED_FRAME`, where QGIS draws it
  (one unit per pixel, rows going down to negative y).
* A raster georeferenced by ground control points only (raw satellite products such as
  Sentinel-1 GRD): the frame is pixel and line, and geometries are carried into the GCPs'
  CRS by GDAL's GCP transformer with its default options: the transform ``gdalwarp`` uses,
  and QGIS, which draws such a raster through an automatically warped VRT. So polygons
  overlay the raster where QGIS draws it. With too few points for a transform, they stay in
  pixel and line (:attr:`VectorFrame.warning` says so).
* A raster georeferenced by rational polynomial coefficients only (raw optical satellite
  products): likewise, through GDAL's RPC transformer at the coefficients' mean height
  (``HEIGHT_OFF``), as QGIS draws it, into longitude and latitude (WGS 84).

Areas (:meth:`VectorFrame.area`) are in squared CRS units, in pixels on a raster without
georeferencing, and in square metres on a geographic CRS (degrees measure no object): there a
polygon is measured in a Lambert azimuthal equal-area projection on the CRS's own ellipsoid,
centred on the raster, which keeps every area exact.

Example:
    >>> frame = VectorFrame(4, 3, (0.0, 1.0, 0.0, 0.0, 0.0, 1.0), "")
    >>> frame.geotransform, frame.area_unit
    ((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), 'pixels')
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

from osgeo import gdal, ogr, osr

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.reader import NO_GEOTRANSFORM, quiet_gdal_errors

#: Where QGIS draws a raster without a geotransform: one unit per pixel, rows going down
#: from y = 0 to negative y. Vectors traced from (or burnt into) such a raster use it.
UNREFERENCED_FRAME: Tuple[float, ...] = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)

#: The CRS of the coordinates rational polynomial coefficients map to.
_WGS84_WKT = osr.SRS_WKT_WGS84_LAT_LONG

#: GDAL transformer directions.
_TO_MAP, _TO_FRAME = 0, 1


def vector_geotransform(geotransform: Sequence[float], has_gcps: bool = False) -> Tuple[float, ...]:
    """The geotransform that vectors traced from or burnt into a raster use.

    Args:
        geotransform: The raster's geotransform (GDAL's placeholder when it has none).
        has_gcps: Whether the raster is georeferenced by ground control points instead.

    Returns:
        ``geotransform``; for a raster without one, :data:`UNREFERENCED_FRAME`, so that
        polygons overlay the raster where QGIS draws it, or, when it has ground control
        points, pixel and line (:data:`NO_GEOTRANSFORM`), the coordinates those points map.
    """
    values = tuple(float(value) for value in geotransform)
    if values != NO_GEOTRANSFORM:
        return values
    return NO_GEOTRANSFORM if has_gcps else UNREFERENCED_FRAME


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
    """Carries geometries between a raster's frame and map coordinates, and measures areas.

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
        geotransform: The frame's geotransform (:func:`vector_geotransform`).
        srs: The CRS of the geometries in map coordinates, or None when unknown.
        area_unit: What :meth:`area` measures in, for messages (``"square metres"``,
            ``"squared map units"`` or ``"pixels"``).
        warning: Why geometries of a raster georeferenced by ground control points or
            polynomial coefficients stay in pixel and line, or None.
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
        use_gcps = bool(gcps) and not georeferenced
        use_rpc = bool(rpc) and not georeferenced and not use_gcps
        self.geotransform = vector_geotransform(geotransform, use_gcps or use_rpc)
        self.warning: Optional[str] = None
        self._transformer: Optional[Any] = None
        map_wkt = projection
        if use_gcps or use_rpc:
            self._transformer, self.warning = _warp_transformer(width, height, gcps, rpc)
            if self._transformer is not None:
                map_wkt = gcp_projection if use_gcps else _WGS84_WKT
        self.srs = spatial_reference(map_wkt if georeferenced or self.warps else "")
        self._area_transform: Optional[osr.CoordinateTransformation] = None
        if self.srs is not None and self.srs.IsGeographic():
            centre = self._map_point(width / 2.0, height / 2.0)
            self._area_transform = _equal_area_transform(self.srs, centre)
            self.area_unit = "square metres"
        elif georeferenced or self._transformer is not None:
            self.area_unit = "squared map units"
        else:
            self.area_unit = "pixels"

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
        return self._carry(geometry, _TO_MAP)

    def to_frame(self, geometry: ogr.Geometry) -> ogr.Geometry:
        """A geometry in map coordinates (of :attr:`srs`), carried into the frame (a copy)."""
        return self._carry(geometry, _TO_FRAME)

    def area(self, geometry: ogr.Geometry) -> float:
        """The area of a geometry in map coordinates, in :attr:`area_unit`."""
        if self._area_transform is None:
            return float(geometry.GetArea())
        projected = geometry.Clone()
        with quiet_gdal_errors():
            status = projected.Transform(self._area_transform)
        return float(projected.GetArea()) if status == 0 else float("nan")

    def _map_point(self, pixel: float, line: float) -> Tuple[float, float]:
        """The map coordinates of a point given in pixel and line."""
        if self._transformer is not None:
            (point,), _ = self._transformer.TransformPoints(_TO_MAP, [(pixel, line)])
            return (point[0], point[1])
        x0, dx, rx, y0, ry, dy = self.geotransform
        return (x0 + pixel * dx + line * rx, y0 + pixel * ry + line * dy)

    def _carry(self, geometry: ogr.Geometry, direction: int) -> ogr.Geometry:
        copy = geometry.Clone()
        if self._transformer is not None:
            _transform_points(copy, self._transformer, direction)
        return copy


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
    with quiet_gdal_errors():
        try:
            transformer = gdal.Transformer(dataset, None, options)
        except RuntimeError:
            transformer = None
    if transformer is None:
        reason = gdal.GetLastErrorMsg() or "GDAL found no transform"
        return None, (
            f"{what} give no transform ({reason}): polygons are in pixel and line "
            "coordinates; warp the raster first (gdalwarp) for map coordinates"
        )
    return transformer, None


def _equal_area_transform(
    geographic: osr.SpatialReference, centre: Tuple[float, float]
) -> osr.CoordinateTransformation:
    """From a geographic CRS to a Lambert azimuthal equal-area projection around ``centre``."""
    equal_area = osr.SpatialReference()
    equal_area.CopyGeogCSFrom(geographic)
    longitude, latitude = centre
    equal_area.SetLAEA(max(-90.0, min(90.0, latitude)), longitude, 0.0, 0.0)
    equal_area.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(geographic, equal_area)


def _transform_points(geometry: ogr.Geometry, transformer: Any, direction: int) -> None:
    """Moves every vertex of ``geometry`` (in place) through a GDAL transformer."""
    parts = geometry.GetGeometryCount()
    if parts:
        for index in range(parts):
            _transform_points(geometry.GetGeometryRef(index), transformer, direction)
        return
    points: List[Tuple[float, ...]] = geometry.GetPoints() or []
    if not points:
        return
    moved, ok = transformer.TransformPoints(direction, [point[:2] for point in points])
    if not all(ok):
        raise InputError("a vertex could not be carried between pixels and map coordinates")
    for index, point in enumerate(moved):
        geometry.SetPoint_2D(index, point[0], point[1])
