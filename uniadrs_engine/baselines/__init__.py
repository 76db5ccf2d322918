"""Classic baseline detectors (global and local RX), on arrays and rasters."""
