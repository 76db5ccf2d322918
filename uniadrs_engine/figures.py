"""PNG figures drawn off-screen (matplotlib's Agg canvas, whatever the user's backend).

Figures carry text users chose (file names, scene names), which may hold characters the
default font lacks; those show as boxes, and matplotlib's warning about each missing glyph
is silenced rather than printed over the command's output.

Example:
    >>> figure = agg_figure(2.0, 2.0)
    >>> _ = figure.subplots().set_title("scène 東京")
    >>> save_png(figure, "roc.png")  # doctest: +SKIP
    PosixPath('roc.png')
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from uniadrs_engine.errors import InputError
from uniadrs_engine.raster.writer import delete_leftover, temporary_sibling, write_failure_message

PathLike = Union[str, Path]


def agg_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Any, path: PathLike, rect: Optional[Sequence[float]] = None) -> Path:
    """Lays a figure out tightly (within ``rect``) and writes it as a PNG, complete or not at all.

    The PNG is written under a temporary name in the same folder, then renamed.

    Raises:
        InputError: If it cannot be written (a full disk, say).
    """
    path = Path(path)
    temp_path = temporary_sibling(path, ".png")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        figure.tight_layout(rect=None if rect is None else tuple(rect))
        try:
            figure.savefig(str(temp_path), format="png")
            os.replace(temp_path, path)
        except OSError as error:  # a full disk, a file-size limit
            raise InputError(write_failure_message(path, error.strerror or str(error))) from None
        finally:
            delete_leftover(temp_path)
    return path
