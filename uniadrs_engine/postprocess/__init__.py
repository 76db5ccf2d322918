"""postprocess subpackage: thresholding score rasters and rasterizing ground-truth polygons."""
