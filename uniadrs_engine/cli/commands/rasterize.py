"""``uniadrs rasterize POLYGONS LIKE OUT``: burn ground-truth polygons onto a raster's grid.

The mask (1 inside a polygon, 0 outside) can then be evaluated against scores on that grid.

Example:
    $ uniadrs rasterize ships.gpkg scores.tif truth.tif
    $ uniadrs evaluate scores.tif truth.tif
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``rasterize`` sub-command."""
    parser = subparsers.add_parser(
        "rasterize",
        help="burn ground-truth polygons into a mask raster on another raster's grid",
        description=(
            "Write a uint8 GeoTIFF (1 inside a polygon, 0 outside) with the size and "
            "georeference of a reference raster (a score raster, the image). Polygons in "
            "another CRS are reprojected; on a raster georeferenced by ground control points "
            "or RPCs only, they go through those, as QGIS draws it. A pixel is inside when its "
            "centre is (or, with --all-touched, when a polygon touches it). Curved polygons "
            "are burnt as their linear approximation; points and lines are refused."
        ),
    )
    parser.add_argument(
        "polygons", help="vector file of (multi)polygons, curved or not (.gpkg, .shp, ...)"
    )
    parser.add_argument("like", help="raster whose grid the mask takes")
    parser.add_argument("out", help="output mask GeoTIFF (.tif or .tiff)")
    parser.add_argument("--layer", help="the layer to burn (default: the first)")
    parser.add_argument(
        "--all-touched", action="store_true", help="burn every pixel a polygon touches"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Burns the polygons and prints what was written."""
    from uniadrs_engine.postprocess.rasterize import rasterize_polygons_like
    from uniadrs_engine.raster.reader import open_raster
    from uniadrs_engine.raster.tiling import block_windows

    written = rasterize_polygons_like(
        args.polygons, args.like, args.out, layer_name=args.layer, all_touched=args.all_touched
    )
    inside = 0
    with open_raster(written) as mask:  # counted strip by strip: memory stays small
        for window in block_windows(mask.width, mask.height, 8, 64, mask.block_size):
            inside += int(mask.read_window(window).data[0].astype(bool).sum())
        total = mask.width * mask.height
    print(f"wrote {written}: {inside} of {total} pixels inside the polygons")
    return 0
