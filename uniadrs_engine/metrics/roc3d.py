"""The 3D-ROC family of detection measures (Chang, IEEE TGRS 59(6), 2021).

The score map is min-max normalised to ``[0, 1]`` over its valid pixels; a threshold
``tau`` in ``[0, 1]`` declares a pixel anomalous when its normalised score is ``>= tau``.
With ``P_D(tau)`` the detection rate (fraction of anomaly pixels declared) and ``P_F(tau)``
the false-alarm rate (fraction of background pixels declared):

* ``AUC(D,F)``: area under ``P_D`` against ``P_F`` (the usual ROC AUC);
* ``AUC(D,tau)``: area under ``P_D(tau)``, higher = stronger anomaly response;
* ``AUC(F,tau)``: area under ``P_F(tau)``, lower = better background suppression;
* ``TD = AUC(D,F) + AUC(D,tau)`` (target detectability);
* ``BS = AUC(D,F) - AUC(F,tau)`` (background suppressibility);
* ``ODP = AUC(D,tau) + 1 - AUC(F,tau)`` (overall detection probability);
* ``TDBS = AUC(D,tau) - AUC(F,tau)``;
* ``SNPR = AUC(D,tau) / AUC(F,tau)`` (signal-to-noise probability ratio).

The integrals over ``tau`` are computed exactly, not on a threshold grid: for a score ``s``
in ``[0, 1]``, ``integral_0^1 P(s >= tau) dtau = E[s]``, so ``AUC(D,tau)`` is the mean
normalised score of the anomaly pixels and ``AUC(F,tau)`` that of the background pixels.
(Implementations that integrate with the trapezoid rule over a finite threshold grid give
values within the grid's resolution of these.) A constant map normalises to 0 everywhere.

Example:
    >>> import numpy as np
    >>> result = roc3d(np.array([0.0, 1.0, 0.5, 1.0]), np.array([0, 1, 0, 1]))
    >>> result.auc_df, result.auc_dt, result.auc_ft
    (1.0, 1.0, 0.25)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from sklearn.metrics import roc_auc_score

from uniadrs_engine.metrics.roc import check_both_classes, flatten_scored


@dataclass(frozen=True)
class Roc3dResult:
    """The 3D-ROC measures of one score map.

    Attributes:
        auc_df: AUC(D,F), the ROC AUC.
        auc_dt: AUC(D,tau).
        auc_ft: AUC(F,tau).
        td: AUC(D,F) + AUC(D,tau).
        bs: AUC(D,F) - AUC(F,tau).
        odp: AUC(D,tau) + 1 - AUC(F,tau).
        tdbs: AUC(D,tau) - AUC(F,tau).
        snpr: AUC(D,tau) / AUC(F,tau) (``inf`` when AUC(F,tau) is 0 and AUC(D,tau) is not,
            ``nan`` when both are 0).
    """

    auc_df: float
    auc_dt: float
    auc_ft: float
    td: float
    bs: float
    odp: float
    tdbs: float
    snpr: float

    @classmethod
    def from_areas(cls, auc_df: float, auc_dt: float, auc_ft: float) -> Roc3dResult:
        """Derives the whole family from the three areas."""
        undefined_ratio = math.inf if auc_dt > 0.0 else math.nan
        snpr = auc_dt / auc_ft if auc_ft > 0.0 else undefined_ratio
        return cls(
            auc_df=float(auc_df),
            auc_dt=float(auc_dt),
            auc_ft=float(auc_ft),
            td=float(auc_df + auc_dt),
            bs=float(auc_df - auc_ft),
            odp=float(auc_dt + 1.0 - auc_ft),
            tdbs=float(auc_dt - auc_ft),
            snpr=float(snpr),
        )

    def as_dict(self) -> Dict[str, float]:
        """Returns the measures by name (``auc_df``, ``auc_dt``, ..., ``snpr``)."""
        return {name: float(value) for name, value in asdict(self).items()}


def normalised_class_means(
    sum_anomaly: float,
    n_anomalies: int,
    sum_background: float,
    n_background: int,
    minimum: float,
    maximum: float,
) -> Tuple[float, float]:
    """Returns AUC(D,tau), AUC(F,tau) from per-class score sums and the map's range.

    The mean normalised score of a class is ``(mean - minimum) / (maximum - minimum)``;
    a constant map (``maximum == minimum``) gives 0 for both.
    """
    span = float(maximum) - float(minimum)
    if span <= 0.0:
        return 0.0, 0.0
    auc_dt = (sum_anomaly / n_anomalies - minimum) / span
    auc_ft = (sum_background / n_background - minimum) / span
    return float(np.clip(auc_dt, 0.0, 1.0)), float(np.clip(auc_ft, 0.0, 1.0))


def roc3d(scores: np.ndarray, mask: np.ndarray, valid: Optional[np.ndarray] = None) -> Roc3dResult:
    """Computes the 3D-ROC measures of a score map.

    Args:
        scores: Score map (higher = more anomalous), any scale.
        mask: Anomaly mask of the same shape (non-zero = anomaly).
        valid: Optional bool map; False pixels (and non-finite scores) are left out.

    Raises:
        InputError: If shapes differ or the valid pixels hold only one class.
    """
    values, labels = flatten_scored(scores, mask, valid)
    n_anomalies = int(labels.sum())
    check_both_classes(n_anomalies, labels.size)
    auc_df = float(roc_auc_score(labels, values))
    auc_dt, auc_ft = normalised_class_means(
        float(values[labels].sum()),
        n_anomalies,
        float(values[~labels].sum()),
        labels.size - n_anomalies,
        float(values.min()),
        float(values.max()),
    )
    return Roc3dResult.from_areas(auc_df, auc_dt, auc_ft)
