"""The provider's algorithms; :func:`algorithm_classes` lists those this install can offer.

Adding an algorithm: write ``algorithms/<name>.py`` with a subclass of
:class:`~.base.UniadrsAlgorithm` and add it to :data:`ALGORITHM_MODULES` (module, class).
"""

from __future__ import annotations

import importlib
import logging
from typing import List, Tuple, Type

from .base import UniadrsAlgorithm

LOGGER = logging.getLogger(__name__)

#: (module under ``algorithms``, class name), in toolbox order.
ALGORITHM_MODULES: Tuple[Tuple[str, str], ...] = (
    ("detect", "DetectAnomaliesAlgorithm"),
    ("rx", "RxAlgorithm"),
    ("threshold", "ThresholdAlgorithm"),
    ("evaluate", "EvaluateAlgorithm"),
    ("simulate", "SimulateAnomaliesAlgorithm"),
    ("train", "TrainModelAlgorithm"),
)


def algorithm_classes() -> List[Type[UniadrsAlgorithm]]:
    """The algorithm classes whose plugin module exists (none of them imports torch)."""
    classes = []
    for module_name, class_name in ALGORITHM_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as error:
            if error.name == f"{__name__}.{module_name}":
                continue  # not part of this version
            raise
        classes.append(getattr(module, class_name))
    return classes
