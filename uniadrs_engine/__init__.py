"""UniADRS engine: cross-modality, zero-shot anomaly detection for remote-sensing rasters.

The engine is a plain Python package (torch, numpy, GDAL) and never imports QGIS. The
QGIS Processing plugin in ``qgis_plugin/`` is a thin wrapper around it.

Example:
    >>> from uniadrs_engine import __version__
    >>> isinstance(__version__, str)
    True
"""

__version__ = "0.1.0"
