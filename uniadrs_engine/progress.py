"""Progress reporting and cancellation as plain callables.

The engine never depends on a GUI toolkit. Long operations take two optional callables:

* ``progress(fraction, message)`` with ``fraction`` in ``[0, 1]``;
* ``is_cancelled()`` returning ``True`` when the caller wants the work to stop.

The QGIS plugin adapts ``QgsProcessingFeedback`` to these; the CLI adapts a tqdm bar.

Example:
    >>> reporter = ProgressReporter(progress=None, is_cancelled=None)
    >>> reporter.update(0.5, "half way")
    >>> reporter.check_cancelled()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from uniadrs_engine.errors import CancelledError

ProgressCallback = Callable[[float, str], None]
CancelCheck = Callable[[], bool]


def never_backwards(progress: Optional[ProgressCallback]) -> Optional[ProgressCallback]:
    """Wraps ``progress`` so that the fraction it shows never goes back.

    For operations that may start a stage again (detection without the bands that hold no
    value runs its statistics pass a second time): the message still changes, the fraction
    holds until the work passes it.

    Example:
        >>> shown = []
        >>> progress = never_backwards(lambda fraction, message: shown.append(fraction))
        >>> for fraction in (0.1, 0.3, 0.05, 0.4):
        ...     progress(fraction, "")
        >>> shown
        [0.1, 0.3, 0.3, 0.4]
    """
    if progress is None:
        return None
    furthest = [0.0]

    def forward(fraction: float, message: str) -> None:
        furthest[0] = max(furthest[0], float(fraction))
        progress(furthest[0], message)

    return forward


@dataclass
class ProgressReporter:
    """Bundles the optional progress and cancellation callables of one operation.

    Attributes:
        progress: Called with a fraction in ``[0, 1]`` and a short message, or None.
        is_cancelled: Returns True when the operation must stop, or None.
    """

    progress: Optional[ProgressCallback] = None
    is_cancelled: Optional[CancelCheck] = None

    def update(self, fraction: float, message: str = "") -> None:
        """Reports progress, clamped to ``[0, 1]``."""
        if self.progress is not None:
            self.progress(min(1.0, max(0.0, float(fraction))), message)

    def begin(self, message: str) -> None:
        """Names the phase that starts now, at its start's progress.

        Phases report their message with each unit they complete; naming it first keeps a
        dialog from showing the previous phase's name while a long first unit runs.
        """
        self.update(0.0, message)

    def check_cancelled(self) -> None:
        """Raises :class:`CancelledError` if the caller asked to stop."""
        if self.is_cancelled is not None and self.is_cancelled():
            raise CancelledError("cancelled by the user")

    def sub(self, start: float, stop: float) -> ProgressReporter:
        """Returns a reporter whose ``[0, 1]`` maps onto ``[start, stop]`` of this one."""
        parent = self

        def scaled(fraction: float, message: str) -> None:
            parent.update(start + (stop - start) * fraction, message)

        return ProgressReporter(progress=scaled, is_cancelled=self.is_cancelled)
