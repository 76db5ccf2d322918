"""raster subpackage."""
