"""Adapts a ``QgsProcessingFeedback`` to the engine's ``progress`` / ``is_cancelled`` callables.

The engine never sees QGIS: it calls ``progress(fraction, message)`` and ``is_cancelled()``.
:func:`engine_callbacks` turns the Processing feedback into those two callables; a message is
pushed to the log only when it changes, so per-tile progress does not flood it.
:func:`engine_log_to_feedback` shows the engine's ``logging`` records (INFO and above, from
the algorithm's own thread) in the Processing log while an algorithm runs.

Example:
    >>> progress, is_cancelled = engine_callbacks(feedback)  # doctest: +SKIP
    >>> detect_raster(..., progress=progress, is_cancelled=is_cancelled)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Tuple

from qgis.core import QgsProcessingFeedback

ProgressCallback = Callable[[float, str], None]
CancelCheck = Callable[[], bool]


def engine_callbacks(
    feedback: Optional[QgsProcessingFeedback],
) -> Tuple[ProgressCallback, CancelCheck]:
    """Returns ``(progress, is_cancelled)`` callables bound to ``feedback``."""
    last_message = [""]

    def progress(fraction: float, message: str = "") -> None:
        if feedback is None:
            return
        feedback.setProgress(100.0 * min(1.0, max(0.0, float(fraction))))
        if message and message != last_message[0]:
            last_message[0] = message
            feedback.setProgressText(message)

    def is_cancelled() -> bool:
        return feedback is not None and feedback.isCanceled()

    return progress, is_cancelled


class _FeedbackLogHandler(logging.Handler):
    """Forwards log records of one thread to a Processing feedback."""

    def __init__(self, feedback: QgsProcessingFeedback) -> None:
        super().__init__(logging.INFO)
        self._feedback = feedback
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread:
            return  # another algorithm running in parallel
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self._feedback.reportError(message, False)
        elif record.levelno >= logging.WARNING:
            self._feedback.pushWarning(message)
        else:
            self._feedback.pushInfo(message)


#: Runs showing the engine's log now, and the level the engine's logger had before the first.
_LEVEL_LOCK = threading.Lock()
_LEVEL_USERS = [0]
_PREVIOUS_LEVEL = [logging.NOTSET]


@contextmanager
def engine_log_to_feedback(feedback: Optional[QgsProcessingFeedback]) -> Iterator[None]:
    """Shows the ``uniadrs_engine`` loggers' INFO and higher records in ``feedback``."""
    if feedback is None:
        yield
        return
    logger = logging.getLogger("uniadrs_engine")
    handler = _FeedbackLogHandler(feedback)
    with _LEVEL_LOCK:  # algorithms run in parallel (batch mode, models): the first sets INFO
        if _LEVEL_USERS[0] == 0:
            _PREVIOUS_LEVEL[0] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
        _LEVEL_USERS[0] += 1
        logger.addHandler(handler)
    try:
        yield
    finally:
        with _LEVEL_LOCK:  # and the last one to finish restores the level
            logger.removeHandler(handler)
            _LEVEL_USERS[0] -= 1
            if _LEVEL_USERS[0] == 0:
                logger.setLevel(_PREVIOUS_LEVEL[0])
