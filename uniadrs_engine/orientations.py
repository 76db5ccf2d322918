"""The eight orientations of a square image (flips, turns, transposes), in one fixed order.

Used by inference (test-time views, :mod:`uniadrs_engine.inference.views`) and by training
(random orientations of simulated samples, :mod:`uniadrs_engine.simulation.mixer`). The
functions act on the last two axes of a NumPy array or a torch tensor alike, without
importing torch:

===========  ===================================
orientation  the image
===========  ===================================
0            as is
1            mirrored left-right
2            mirrored top-bottom
3            turned 180°
4            transposed
5            transposed, mirrored left-right
6            transposed, mirrored top-bottom
7            transposed, turned 180°
===========  ===================================

so the first 2 add the left-right mirror, the first 4 every flip without transposing (no
change of shape), all 8 the whole group.

Example:
    >>> import numpy as np
    >>> image = np.arange(6).reshape(2, 3)
    >>> orient(image, 1).tolist()
    [[2, 1, 0], [5, 4, 3]]
    >>> all((unorient(orient(image, k), k) == image).all() for k in range(ORIENTATIONS))
    True
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

#: How many orientations there are.
ORIENTATIONS = 8

#: Numbers of orientations one may use: the first 1, 2, 4 or 8 of the table, each a group
#: (mirroring or turning any of them again gives one of them).
ORIENTATION_COUNTS: Tuple[int, ...] = (1, 2, 4, 8)


def _flip_dims(orientation: int) -> Tuple[int, ...]:
    """Axes (of a ``[..., H, W]`` array) that orientation ``orientation`` mirrors."""
    return tuple(dim for dim, bit in ((-1, 1), (-2, 2)) if orientation & bit)


def _check(orientation: int) -> None:
    if not 0 <= orientation < ORIENTATIONS:
        raise ValueError(f"orientation must be in 0..{ORIENTATIONS - 1}, got {orientation}")


def _flip(array: Any, dims: Tuple[int, ...]) -> Any:
    if not dims:
        return array
    return np.flip(array, dims) if isinstance(array, np.ndarray) else array.flip(dims)


def _transpose(array: Any) -> Any:
    return np.swapaxes(array, -1, -2) if isinstance(array, np.ndarray) else array.transpose(-1, -2)


def orient(array: Any, orientation: int) -> Any:
    """A ``[..., H, W]`` array or tensor in orientation ``orientation`` (0-7).

    NumPy results may be views with negative strides; copy them where contiguous memory
    is needed.
    """
    _check(orientation)
    if orientation >= 4:
        array = _transpose(array)
    return _flip(array, _flip_dims(orientation))


def unorient(array: Any, orientation: int) -> Any:
    """Maps an array seen in orientation ``orientation`` back to the original one."""
    _check(orientation)
    array = _flip(array, _flip_dims(orientation))
    return _transpose(array) if orientation >= 4 else array
