"""Geometry for the simulators: index maps for resizing and warping, rectangles, polygons.

Everything here works on index maps rather than resampling each band: a nearest-neighbour
geometric transform of a ``[C, h, w]`` image is one gather ``image[:, rows, cols]`` with two
integer maps ``[H, W]``, whatever ``C`` is. :func:`random_warp_indices` folds METHOD §6 steps 3
and 4 (rotation ±45°, scale ±10 %, a mild piecewise-affine warp, resizing to the training
size) into one such map.

The piecewise-affine warp is approximated by a smooth random displacement field: the points of
a coarse ``grid x grid`` lattice (4 x 4, as imgaug's ``PiecewiseAffine`` the original used) are
moved by a normal jitter whose standard deviation is 3-5 % of the image side, and the
displacement is interpolated bilinearly to every pixel. Pixels that the transform pulls from
outside the image are mirrored back (reflect-101, as OpenCV's default border for the rotation);
the original filled the warp's border with zeros instead.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rows, cols = random_warp_indices(rng, (100, 100), (128, 128))
    >>> rows.shape, int(rows.min()) >= 0, int(rows.max()) <= 99
    ((128, 128), True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

#: A rectangle as ``(row, col, height, width)`` in pixels.
Rectangle = Tuple[int, int, int, int]


@dataclass(frozen=True)
class WarpParameters:
    """Ranges of the random geometric transform of a spectral sample (METHOD §6 step 3).

    Attributes:
        max_rotation_degrees: Rotation angle drawn uniformly in ``±max_rotation_degrees``.
        scale_range: Isotropic scale factor drawn uniformly in this range.
        warp_strength: Standard deviation of the control-point jitter, as a fraction of the
            image side, drawn uniformly in this range (imgaug's ``scale=(0.03, 0.05)``).
        warp_grid: Control points per side of the warp lattice.
    """

    max_rotation_degrees: float = 45.0
    scale_range: Tuple[float, float] = (0.9, 1.1)
    warp_strength: Tuple[float, float] = (0.03, 0.05)
    warp_grid: int = 4


#: METHOD's transform ranges.
DEFAULT_WARP = WarpParameters()


def reflect_indices(indices: np.ndarray, length: int) -> np.ndarray:
    """Folds integer indices into ``[0, length)`` by mirroring without repeating the edge.

    ``-1`` maps to ``1`` and ``length`` to ``length - 2`` (OpenCV's ``BORDER_REFLECT_101``,
    scipy's ``mode="mirror"``).
    """
    if length == 1:
        return np.zeros_like(indices)
    period = 2 * (length - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= length, period - folded, folded)


def nearest_indices(source_length: int, target_length: int) -> np.ndarray:
    """Source index of each target pixel when resizing one axis with nearest interpolation."""
    centres = (np.arange(target_length) + 0.5) * (source_length / target_length)
    return np.minimum(centres.astype(np.int64), source_length - 1)


def resize_nearest(array: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Resizes the last two axes of ``array`` to ``shape`` with nearest interpolation."""
    if array.shape[-2:] == tuple(shape):
        return array
    rows = nearest_indices(array.shape[-2], shape[0])
    cols = nearest_indices(array.shape[-1], shape[1])
    return array[..., rows[:, None], cols[None, :]]


def resize_bilinear(array: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Resizes the last two axes of a float array to ``shape`` with bilinear interpolation."""
    if array.shape[-2:] == tuple(shape):
        return array.astype(np.float32, copy=False)
    result = _linear_along(array.astype(np.float32, copy=False), shape[0], axis=-2)
    return _linear_along(result, shape[1], axis=-1)


def _linear_along(array: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``array`` along one axis to ``length`` samples (pixel centres)."""
    source_length = array.shape[axis]
    positions = (np.arange(length) + 0.5) * (source_length / length) - 0.5
    positions = np.clip(positions, 0.0, source_length - 1)
    lower = np.floor(positions).astype(np.int64)
    upper = np.minimum(lower + 1, source_length - 1)
    weight_shape = [1] * array.ndim
    weight_shape[axis] = length
    weight = (positions - lower).astype(np.float32).reshape(weight_shape)
    return (
        np.take(array, lower, axis=axis) * (1 - weight) + np.take(array, upper, axis=axis) * weight
    )


def identity_indices(
    source_shape: Tuple[int, int], target_shape: Tuple[int, int]
) -> Tuple[np.ndarray, np.ndarray]:
    """Index maps of a plain nearest resize from ``source_shape`` to ``target_shape``."""
    rows = nearest_indices(source_shape[0], target_shape[0])
    cols = nearest_indices(source_shape[1], target_shape[1])
    return np.broadcast_to(rows[:, None], target_shape), np.broadcast_to(
        cols[None, :], target_shape
    )


def random_warp_indices(
    rng: np.random.Generator,
    source_shape: Tuple[int, int],
    target_shape: Tuple[int, int],
    parameters: WarpParameters = DEFAULT_WARP,
) -> Tuple[np.ndarray, np.ndarray]:
    """Draws a random rotation, scale and smooth warp and returns its nearest index maps.

    The transform is applied to the source image first (rotation and scale about its centre,
    then the warp) and the result is resized to ``target_shape``; the maps say, for every
    target pixel, which source pixel lands there.

    Args:
        rng: Random generator (the only source of randomness).
        source_shape: ``(rows, cols)`` of the image being transformed.
        target_shape: ``(rows, cols)`` of the result.
        parameters: Ranges of the transform.

    Returns:
        ``(rows, cols)``: int64 arrays shaped ``target_shape`` with valid source indices.
    """
    height, width = source_shape
    angle = math.radians(
        rng.uniform(-parameters.max_rotation_degrees, parameters.max_rotation_degrees)
    )
    scale = rng.uniform(*parameters.scale_range)
    strength = rng.uniform(*parameters.warp_strength)
    grid = parameters.warp_grid
    jitter = rng.normal(0.0, strength, size=(2, grid, grid))

    # Target pixel centres expressed in source pixel coordinates (the inverse of the resize).
    rows = (np.arange(target_shape[0]) + 0.5) * (height / target_shape[0]) - 0.5
    cols = (np.arange(target_shape[1]) + 0.5) * (width / target_shape[1]) - 0.5
    row_grid, col_grid = np.meshgrid(rows, cols, indexing="ij")

    # Smooth displacement: the lattice jitter interpolated bilinearly (the inverse warp).
    lattice_rows = row_grid * ((grid - 1) / max(height - 1, 1))
    lattice_cols = col_grid * ((grid - 1) / max(width - 1, 1))
    coordinates = np.stack([lattice_rows, lattice_cols])
    row_shift = ndimage.map_coordinates(jitter[0], coordinates, order=1, mode="nearest") * height
    col_shift = ndimage.map_coordinates(jitter[1], coordinates, order=1, mode="nearest") * width
    row_grid = row_grid + row_shift
    col_grid = col_grid + col_shift

    # Inverse rotation and scale about the image centre.
    centre_row, centre_col = (height - 1) / 2.0, (width - 1) / 2.0
    cosine, sine = math.cos(angle) / scale, math.sin(angle) / scale
    delta_row, delta_col = row_grid - centre_row, col_grid - centre_col
    source_rows = centre_row + cosine * delta_row - sine * delta_col
    source_cols = centre_col + sine * delta_row + cosine * delta_col

    source_rows = reflect_indices(np.rint(source_rows).astype(np.int64), height)
    source_cols = reflect_indices(np.rint(source_cols).astype(np.int64), width)
    return source_rows, source_cols


def side_range(area: int, area_fraction: Tuple[float, float], limit: int) -> Tuple[int, int]:
    """Smallest and largest rectangle side for a fraction range of ``area``: ``√(f·A)``.

    Sides are whole pixels (truncated, as the original did), at least 1 and at most ``limit``.
    """
    smallest = max(1, int(math.sqrt(area_fraction[0] * area)))
    largest = max(smallest, int(math.sqrt(area_fraction[1] * area)))
    return min(smallest, limit), min(largest, limit)


def random_rectangles(
    rng: np.random.Generator,
    shape: Tuple[int, int],
    count_range: Tuple[int, int],
    area_fraction: Tuple[float, float],
) -> List[Rectangle]:
    """Draws rectangles whose sides lie between ``√(f_min·A)`` and ``√(f_max·A)``.

    Like albumentations' ``CoarseDropout`` in the original: the count is uniform in
    ``count_range`` (inclusive), height and width are drawn independently and uniformly among
    the whole sides allowed, and the position is uniform among those that fit.

    Args:
        rng: Random generator.
        shape: ``(rows, cols)`` of the patch; ``A = rows * cols``.
        count_range: Smallest and largest number of rectangles.
        area_fraction: Fraction range ``(f_min, f_max)`` of ``A`` that sets the side range.

    Returns:
        The rectangles as ``(row, col, height, width)``.
    """
    rows, cols = shape
    low, high = side_range(rows * cols, area_fraction, min(rows, cols))
    count = int(rng.integers(count_range[0], count_range[1] + 1))
    heights = rng.integers(low, high + 1, size=count)
    widths = rng.integers(low, high + 1, size=count)
    tops = rng.integers(0, rows - heights + 1)
    lefts = rng.integers(0, cols - widths + 1)
    return [
        (int(top), int(left), int(height), int(width))
        for top, left, height, width in zip(tops, lefts, heights, widths)
    ]


def random_polygon_mask(
    rng: np.random.Generator, side: int = 64, vertex_range: Tuple[int, int] = (3, 12)
) -> np.ndarray:
    """Rasterises a random star-shaped polygon and returns its mask cropped to its extent.

    Vertices sit at sorted random angles around the centre with radii between 35 % and 100 %
    of half the side; an anisotropic stretch makes some polygons elongated.
    """
    count = int(rng.integers(vertex_range[0], vertex_range[1] + 1))
    angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, size=count))
    radii = rng.uniform(0.35, 1.0, size=count) * (side / 2.0 - 1.0)
    stretch = rng.uniform(0.4, 1.0)
    turn = rng.uniform(0.0, math.pi)
    x = radii * np.cos(angles)
    y = radii * np.sin(angles) * stretch
    x, y = x * math.cos(turn) - y * math.sin(turn), x * math.sin(turn) + y * math.cos(turn)
    centre = side / 2.0
    canvas = Image.new("1", (side, side), 0)
    ImageDraw.Draw(canvas).polygon(list(zip(x + centre, y + centre)), fill=1)
    mask = np.array(canvas, dtype=bool)
    if not mask.any():
        mask[side // 2 - 1 : side // 2 + 1, side // 2 - 1 : side // 2 + 1] = True
    return crop_to_mask(mask)


def crop_to_mask(mask: np.ndarray) -> np.ndarray:
    """Crops a boolean mask to the bounding box of its True pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fitted_object_shape(
    height: int, width: int, mask_area: int, target_area: float, limit: int
) -> Tuple[int, int]:
    """New ``(height, width)`` of an object so that its mask covers about ``target_area``.

    The object is scaled by ``√(target / area)``. A side that would exceed ``limit`` is set to
    90 % of it and the other side grows to keep the area (as the original did); if that side
    exceeds the limit too it is capped as well, and the area comes out smaller.
    """
    factor = math.sqrt(target_area / max(mask_area, 1))
    new_height, new_width = height * factor, width * factor
    bound = 0.9 * limit
    if new_height > limit:
        new_width *= new_height / bound
        new_height = bound
    if new_width > limit:
        new_height = min(bound, new_height * new_width / bound)
        new_width = bound
    return max(1, int(round(new_height))), max(1, int(round(new_width)))
