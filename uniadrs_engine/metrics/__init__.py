"""Detection metrics: pixel and pooled AUC-ROC, the 3D-ROC family, raster evaluation.

* :mod:`~uniadrs_engine.metrics.roc`: AUC of arrays, pooled AUC, ROC curve points;
* :mod:`~uniadrs_engine.metrics.roc3d`: AUC(D,F), AUC(D,tau), AUC(F,tau) and derived measures;
* :mod:`~uniadrs_engine.metrics.evaluation`: exact evaluation of score rasters in bounded
  memory, ROC figure.
"""
