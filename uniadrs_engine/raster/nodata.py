"""Which pixels hold no data beyond the file's own say: extra no-data values and ranges.

Many scenes mark their fill with a value the file does not declare: a black collar of 0 around
an orthophoto, -9999 in a band of a stack that has no nodata tag. A :class:`NodataRule` says
which values hold no data besides (or instead of) each band's own nodata value. It is passed
to :func:`~uniadrs_engine.raster.reader.open_raster`, so that every pass over a raster
(statistics, tiles, RX) treats the same pixels as missing.

The rule is given in a band's values as they are read: after GDAL's scale and offset, as QGIS
compares a layer's additional no data values (``QgsRasterDataProvider::block`` applies the
scale and offset first). It is applied to the values as stored, as a file's nodata is: each
bound is taken back through the scale and offset and rounded as the band's type stores it
(an integer band's ``0.3`` at scale 0.1 is its stored 3, a float32 band's -9999.9 is the
-9999.900390625 it stores), so that a value typed as it reads always matches, and the rule
marks the same pixels as the file would by declaring that nodata. A pixel is valid only where
every selected band holds a value, as with the file's nodata. A one-band paletted image's
rule compares its palette indices.

Example:
    >>> rule = NodataRule(ranges=parse_nodata_values("0, 255"))
    >>> rule.describe()
    '0, 255'
    >>> rule.matches(np.array([0.0, 3.0, 255.0])).tolist()
    [True, False, True]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from uniadrs_engine.errors import InputError

#: Separators between the values of a no-data list: commas, semicolons, spaces.
_SEPARATORS = re.compile(r"[,;\s]+")

#: The text of a range ``LOW..HIGH`` (either end may be left out: no bound there).
_RANGE = ".."

#: A bound taken back to an integer band's stored values is that integer when it lies this
#: close (relative): ``(0.3 - 0) / 0.1`` is 2.9999999999999996.
_INTEGER_SNAP = 1e-9

#: GDAL's ``(scale, offset)`` of a band, or None.
Unscaling = Optional[Tuple[float, float]]


def number_text(value: float) -> str:
    """A number as it reads back exactly: ``-9999999``, ``0.1``, ``1e+39``, ``-inf``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _stored_bound(bound: float, unscaling: Unscaling, stored: np.dtype) -> float:
    """``bound`` (a value as read) as the band stores it: unscaled, rounded by its type."""
    if unscaling is not None:
        scale, offset = unscaling
        bound = (bound - offset) / scale
    if not math.isfinite(bound):
        return bound
    if stored.kind in "iub":
        nearest = float(round(bound))
        if abs(bound - nearest) <= _INTEGER_SNAP * max(1.0, abs(bound)):
            return nearest
    elif stored == np.float32 and abs(bound) <= float(np.finfo(np.float32).max):
        return float(np.float32(bound))
    return bound


@dataclass(frozen=True)
class NodataRange:
    """Values ``low`` to ``high`` that hold no data (one value when they are equal).

    Attributes:
        low: The lowest such value (``-inf``: no lower bound).
        high: The highest such value (``inf``: no upper bound).
        include_low: Whether ``low`` itself holds no data.
        include_high: Whether ``high`` itself holds no data.
    """

    low: float
    high: float
    include_low: bool = True
    include_high: bool = True

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high):
            raise InputError("a no-data value must be a number, not NaN (NaN never holds data)")
        if self.low > self.high:
            raise InputError(
                f"no-data range {number_text(self.low)}..{number_text(self.high)} is empty "
                "(low > high)"
            )

    def matches(
        self,
        stored: np.ndarray,
        unscaling: Unscaling = None,
        stored_type: Optional[np.dtype] = None,
    ) -> np.ndarray:
        """Where values as stored lie in the range, which is in values as read.

        Args:
            stored: One band's values as stored (any shape; an integer or float32 band's may
                come in a wider type).
            unscaling: The band's GDAL ``(scale, offset)`` (values as read are
                ``stored * scale + offset``), or None.
            stored_type: The band's own type (its values' type by default): bounds are
                rounded as it stores them (:func:`_stored_bound`).

        Returns:
            ``bool``, shaped like ``stored``.
        """
        stored_type = np.dtype(stored_type if stored_type is not None else stored.dtype)
        if unscaling is not None and unscaling[0] == 0.0:  # every value reads as the offset
            inside = self.matches(np.array([unscaling[1]], dtype=np.float64))[0]
            return np.full(stored.shape, bool(inside))
        low = _stored_bound(self.low, unscaling, stored_type)
        high = _stored_bound(self.high, unscaling, stored_type)
        include_low, include_high = self.include_low, self.include_high
        if unscaling is not None and unscaling[0] < 0:  # a negative scale turns the range
            low, high, include_low, include_high = high, low, include_high, include_low
        values = stored.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore"):
            above = values >= low if include_low else values > low
            below = values <= high if include_high else values < high
        return above & below

    def describe(self) -> str:
        """``"0"`` for one value, ``"LOW..HIGH"`` for a range (open ends left empty)."""
        if self.low == self.high:
            return number_text(self.low)
        low = "" if math.isinf(self.low) else number_text(self.low)
        high = "" if math.isinf(self.high) else number_text(self.high)
        text = f"{low}{_RANGE}{high}"
        # an open end has no bound to exclude
        excluded = (
            not self.include_low and math.isfinite(self.low),
            not self.include_high and math.isfinite(self.high),
        )
        if any(excluded):
            ends = {(True, False): "low", (False, True): "high", (True, True): "both"}
            text += f" (bounds excluded: {ends[excluded]})"
        return text

    @property
    def is_empty(self) -> bool:
        """Whether the range holds no value (one value whose bound is excluded)."""
        return self.low == self.high and not (self.include_low and self.include_high)


@dataclass(frozen=True)
class NodataRule:
    """Which values hold no data, besides or instead of each band's own nodata value.

    Attributes:
        ranges: Values (and ranges) that hold no data in every selected band.
        use_file_nodata: Whether each band's own nodata value still holds no data (False:
            the file's nodata values are ignored, as QGIS does when a layer's "No data
            value" is unchecked). GDAL's explicit masks (alpha bands, ``.msk`` files) are
            honoured either way.
    """

    ranges: Tuple[NodataRange, ...] = ()
    use_file_nodata: bool = True

    @property
    def changes_anything(self) -> bool:
        """Whether the rule differs from reading the file as it is."""
        return bool(self.ranges) or not self.use_file_nodata

    def matches(
        self,
        stored: np.ndarray,
        unscaling: Unscaling = None,
        stored_type: Optional[np.dtype] = None,
    ) -> np.ndarray:
        """Where one band's stored values hold no data by :attr:`ranges`.

        See :meth:`NodataRange.matches`; returns ``bool``, shaped like ``stored``.
        """
        found = np.zeros(stored.shape, dtype=bool)
        for value_range in self.ranges:
            found |= value_range.matches(stored, unscaling, stored_type)
        return found

    def describe(self) -> str:
        """The rule in words: ``"0, 255"``, ``"-9999; the file's nodata ignored"``."""
        parts = [", ".join(value_range.describe() for value_range in self.ranges)]
        if not self.use_file_nodata:
            parts.append("the file's nodata ignored")
        return "; ".join(part for part in parts if part)


def nodata_rule_of(
    ranges: Sequence[NodataRange], use_file_nodata: bool = True
) -> Optional[NodataRule]:
    """The rule of these ranges, or None when it would read the file as it is.

    The ranges keep their order; repeats and empty ones are dropped.

    Example:
        >>> nodata_rule_of(parse_nodata_values("0, 0")).describe()
        '0'
        >>> nodata_rule_of(()) is None
        True
    """
    kept = tuple(dict.fromkeys(item for item in ranges if not item.is_empty))
    rule = NodataRule(ranges=kept, use_file_nodata=use_file_nodata)
    return rule if rule.changes_anything else None


def _number(text: str, whole: str) -> float:
    """One number of a no-data list, or an :class:`InputError` quoting the list."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"no-data values {whole!r}: {text!r} is not a number (expected numbers or "
            "LOW..HIGH ranges, separated by commas, semicolons or spaces, e.g. '0' or "
            "'0, 255' or '..-1000')"
        ) from None
    return value


def parse_nodata_values(text: Optional[str]) -> Tuple[NodataRange, ...]:
    """Reads ``"0"``, ``"0, 255"``, ``"-9999;0"`` or ranges ``"..-1000"``, ``"250..255"``.

    Args:
        text: Numbers and ``LOW..HIGH`` ranges (an end left out is unbounded), separated by
            commas, semicolons or spaces; empty or None for none.

    Returns:
        The ranges, one per item, in the order given.

    Raises:
        InputError: An item is not a number or a range, a value is NaN, or a range is
            empty.
    """
    whole = (text or "").strip()
    ranges = []
    for item in _SEPARATORS.split(re.sub(r"\s*\.\.\s*", _RANGE, whole)):  # "0 .. 5": 0..5
        if not item:
            continue
        if _RANGE in item:
            low_text, _, high_text = item.partition(_RANGE)
            low = _number(low_text, whole) if low_text else -math.inf
            high = _number(high_text, whole) if high_text else math.inf
            if math.isinf(low) and math.isinf(high) and low < 0 < high:
                raise InputError(f"no-data values {whole!r}: {item!r} would leave no data at all")
            ranges.append(NodataRange(low, high))
        else:
            value = _number(item, whole)
            ranges.append(NodataRange(value, value))
    return tuple(ranges)


def nodata_provenance(rule: Optional[NodataRule]) -> Dict[str, str]:
    """The ``nodata`` item of an output's provenance metadata when ``rule`` changes anything.

    Example:
        >>> nodata_provenance(NodataRule(ranges=parse_nodata_values("0")))
        {'nodata': '0'}
        >>> nodata_provenance(None)
        {}
    """
    if rule is None or not rule.changes_anything:
        return {}
    return {"nodata": rule.describe()}
