"""Argument parsers shared by the sub-commands: band lists, scale lists, counts, progress bar.

Example:
    >>> parse_band_list("1,2,5-7")
    [1, 2, 5, 6, 7]
    >>> parse_float_list("0.5, 1")
    [0.5, 1.0]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List

from uniadrs_engine.errors import InputError

#: Most bands a band list may expand to (a guard against typos such as ``1-100000000``).
MAX_BANDS = 100_000


def parse_band_list(text: str, what: str = "band") -> List[int]:
    """Parses 1-based band numbers: ``"3"``, ``"1,2,5-9"``, ``"4-2"`` (descending) ...

    Bands keep the given order; repeats are kept too (a band may be used twice). Spaces and
    semicolons separate items as commas do (``"2 5"``, ``"1 - 3, 7"``, and ``"2;5"``, QGIS's
    own text of a multiple band choice).

    Args:
        text: The list.
        what: What the numbers count, for the messages (``"band"``, ``"network"``).

    Raises:
        InputError: If the text is empty or holds anything but positive integers and ranges.
    """
    bands: List[int] = []
    joined = re.sub(r"\s*([-,])\s*", r"\1", str(text).replace(";", ",").strip())  # "1 - 3": 1-3
    parts = [part.strip() for part in re.sub(r"\s+", ",", joined).split(",")]
    if not any(parts):
        raise InputError(f"the {what} list is empty")
    for part in parts:
        if not part:
            raise InputError(f"empty item in {what} list {text!r}")
        first, separator, last = part.partition("-")
        try:
            start = int(first)
            stop = int(last) if separator else start
        except ValueError:
            raise InputError(
                f"bad {what} list item {part!r} in {text!r}: use numbers and ranges like 1,2,5-9"
            ) from None
        if start < 1 or stop < 1:
            raise InputError(f"{what} numbers start at 1, got {part!r}")
        step = 1 if stop >= start else -1
        if len(bands) + abs(stop - start) + 1 > MAX_BANDS:
            raise InputError(f"the {what} list {text!r} names more than {MAX_BANDS} {what}s")
        bands.extend(range(start, stop + step, step))
    return bands


def parse_float_list(text: str) -> List[float]:
    """Parses comma-separated numbers such as ``"0.5,1"``.

    Raises:
        InputError: If an item is not a finite number.
    """
    values: List[float] = []
    for part in str(text).split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise InputError(f"bad number {part.strip()!r} in {text!r}") from None
        if not math.isfinite(value):
            raise InputError(f"bad number {part.strip()!r} in {text!r}")
        values.append(value)
    return values


def _argparse_type(parse: Callable[[str], object], name: str) -> Callable[[str], object]:
    """Wraps a parser so argparse reports its error as a usage error."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except InputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


#: ``type=`` for argparse options taking a band list.
band_list = _argparse_type(parse_band_list, "band list")

#: Help of the ``--bands`` options of the commands that read a raster's bands.
BANDS_HELP = (
    "1-based bands to use, e.g. 1,2,5-9 (default: all but those an ENVI header's bad band "
    "list marks); bands that hold no value anywhere are left out"
)

#: ``type=`` for argparse options taking a list of network numbers.
network_list = _argparse_type(lambda text: parse_band_list(text, "network"), "network list")

#: ``type=`` for argparse options taking comma-separated numbers.
float_list = _argparse_type(parse_float_list, "number list")


def add_nodata_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--nodata VALUES`` and ``--ignore-file-nodata`` (read by :func:`nodata_rule`)."""
    from uniadrs_engine.raster.nodata import parse_nodata_values

    parser.add_argument(
        "--nodata",
        type=_argparse_type(parse_nodata_values, "no-data list"),
        action="append",
        default=None,
        metavar="VALUES",
        help=(
            "values that hold no data besides the file's nodata, in every band, compared "
            "after the file's scale and offset: numbers and LOW..HIGH ranges (an end left "
            "out is open), e.g. 0 or '0,255' or '..-1000'; a pixel where any band holds one "
            "holds no data (left out, and scored as nodata); may be repeated"
        ),
    )
    parser.add_argument(
        "--ignore-file-nodata",
        action="store_true",
        help="treat the file's own nodata values as data (a nodata tag that is wrong)",
    )


def nodata_rule(args: argparse.Namespace) -> Any:
    """The :class:`~uniadrs_engine.raster.nodata.NodataRule` of ``--nodata`` options.

    Returns None when neither option is given (the file's nodata alone).
    """
    from uniadrs_engine.raster.nodata import nodata_rule_of

    ranges = [item for items in args.nodata or () for item in items]
    return nodata_rule_of(ranges, use_file_nodata=not args.ignore_file_nodata)


def positive_int(text: str) -> int:
    """``type=`` for argparse: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """``type=`` for argparse: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def seed_value(text: str) -> int:
    """``type=`` for argparse: a random seed, ``0`` to ``2**63 - 1`` (numpy's generators)."""
    from uniadrs_engine.training.config import MAX_SEED

    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """``type=`` for argparse: a finite number of at least 0.

    Example:
        >>> non_negative_float("0"), non_negative_float("2.5e3")
        (0.0, 2500.0)
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """``type=`` for argparse: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_memory_argument(parser: argparse.ArgumentParser, default: int) -> None:
    """Adds ``--memory-mb``, the budget every command reads and writes its data within.

    The budget covers the data in flight (strips, tiles, their copies) and, for detection,
    the model's weights. GDAL's block cache, which :func:`~uniadrs_engine.cli.main.main`
    caps at a quarter of the budget (at least 32 MiB), and the Python runtime (about 270 MB
    with torch) come on top.
    """
    parser.add_argument(
        "--memory-mb",
        type=positive_float,
        default=default,
        metavar="M",
        help="memory budget in MiB for the data in flight (and a model's weights); GDAL's "
        f"cache (a quarter of it) and the runtime come on top (default {default})",
    )


#: Seconds before a progress bar first shows: a command that fails at once (bad input)
#: prints its one-line error alone, and one that ends sooner shows only its final bar.
BAR_DELAY_S = 0.5


#: Without a terminal, a progress line is printed at each tenth of the work, and at least
#: this often (seconds) while the work goes on.
PROGRESS_LINE_INTERVAL_S = 60.0


@contextmanager
def progress_bar(
    description: str = "",
    enabled: bool = True,
    *,
    steps: int | None = None,
    unit: str = "step",
    interactive: bool | None = None,
) -> Iterator[Callable[[float, str], None]]:
    """A tqdm bar on stderr, yielded as a ``progress(fraction, message)`` callable.

    Work that resumes part-way (a training run from its checkpoint) reports a first
    fraction above zero; the bar then starts its clock there, so its rate and time left
    count only the work done in this run. When stderr is not a terminal (a log file, a
    pipe, a scheduler's job output), plain lines replace the bar
    (:func:`progress_lines`): a bar redrawn at each update would fill the log.

    Args:
        description: Text before the bar.
        enabled: Show the bar (False gives a callable that does nothing).
        steps: Count the bar in this many units (with their rate) instead of percent.
        unit: Name of one unit when ``steps`` is given.
        interactive: Draw a bar (True) or print lines (False); None: a bar when stderr is a
            terminal.
    """
    if interactive is None:
        interactive = sys.stderr.isatty()
    if not interactive:
        with progress_lines(description, enabled, steps=steps, unit=unit) as update:
            yield update
        return
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    class DelayedBar(tqdm):  # type: ignore[misc, valid-type]
        """A bar whose warnings print plainly while it has not shown yet.

        tqdm redraws every bar after a message it writes, and so would show one still
        waiting out :data:`BAR_DELAY_S`, which then closes without its line ending.
        """

        @classmethod
        def write(cls, s: str, file: Any = None, end: str = "\n", nolock: bool = False) -> None:
            if any(getattr(bar, "delay", 0) > 0 for bar in list(cls._instances)):
                (file or sys.stdout).write(f"{s}{end}")
            else:
                super().write(s, file=file, end=end, nolock=nolock)

    total = steps if steps else 1000
    # l_bar: "{desc}: {percentage:3.0f}%|", without the colon when there is no description
    percent_format = "{l_bar}{bar}| {elapsed}<{remaining} {postfix}"
    bar_format = None if steps else percent_format
    with (
        DelayedBar(
            total=total,
            desc=description,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not enabled,
            bar_format=bar_format,
            delay=BAR_DELAY_S,
        ) as bar,
        logging_redirect_tqdm(tqdm_class=DelayedBar),
    ):  # warnings print above the bar, not into it
        started = False
        shown_from = time.monotonic() + BAR_DELAY_S

        def update(fraction: float, message: str = "") -> None:
            nonlocal started
            if bar.disable:
                return
            position = int(round(min(1.0, max(0.0, fraction)) * total))
            if not started:
                started = True
                bar.initial = bar.n = bar.last_print_n = position
                bar.start_t = bar.last_print_t = bar._time()
            if position != bar.n or message:
                bar.n = position
                if message:
                    bar.set_postfix_str(message, refresh=False)
                if position >= total or time.monotonic() >= shown_from:
                    bar.delay = 0  # shown from now on, and its last state when it closes
                    bar.refresh()

        yield update


@contextmanager
def progress_lines(
    description: str = "", enabled: bool = True, *, steps: int | None = None, unit: str = "step"
) -> Iterator[Callable[[float, str], None]]:
    """Progress as plain lines on stderr, for logs: :func:`progress_bar` without a terminal.

    A line is printed when the work passes a tenth of its whole, at least every
    :data:`PROGRESS_LINE_INTERVAL_S` seconds, and when it ends (with the last message given
    once it was done); none before :data:`BAR_DELAY_S` has passed unless the work is done,
    and no final line after an error (a command that fails at once prints its error
    alone). Each line gives the share done (or ``done/total`` units), the
    time taken and left, counted from where the work started in this run (a resumed
    training run), and the latest message::

        detect:  40% | 0:12 elapsed, 0:18 left | scale 1: scoring tiles

    Args:
        description: Text before each line (``unit`` counts when it is empty).
        enabled: Print lines (False gives a callable that does nothing).
        steps: Count in this many units instead of percent.
        unit: Name of one unit when ``steps`` is given.
    """
    from tqdm import tqdm

    began = time.monotonic()
    first: float | None = None  # the first fraction reported: where this run started
    started_at = began
    last_tenth = -1
    printed_at: float | None = None
    end_message: str | None = None  # the latest message once the work is done

    def write_line(fraction: float, message: str, now: float) -> None:
        assert first is not None
        elapsed = now - started_at
        done_here = fraction - first
        if steps:
            share = f"{int(round(fraction * steps))}/{steps} {unit}s"
        else:
            share = f"{fraction * 100:3.0f}%"
        times = f"{tqdm.format_interval(round(elapsed))} elapsed"
        if done_here > 0 and fraction < 1.0:
            left = elapsed / done_here * (1.0 - fraction)
            times += f", {tqdm.format_interval(round(left))} left"
        parts = [f"{description.strip()}: {share}" if description.strip() else share, times]
        if message:
            parts.append(message)
        sys.stderr.write(" | ".join(parts) + "\n")
        sys.stderr.flush()

    def update(fraction: float, message: str = "") -> None:
        nonlocal first, started_at, last_tenth, printed_at, end_message
        if not enabled:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.monotonic()
        if first is None:
            first, started_at = fraction, now
        if fraction >= 1.0:  # its line comes when the work ends, with its last message
            end_message = message or end_message or ""
            return
        tenth = int(fraction * 10 + 1e-9)
        due = tenth > last_tenth or (
            printed_at is not None and now - printed_at >= PROGRESS_LINE_INTERVAL_S
        )
        if not due or now - began < BAR_DELAY_S:
            return
        last_tenth, printed_at = tenth, now
        write_line(fraction, message, now)

    yield update
    if end_message is not None:  # not after an error: the command prints that instead
        write_line(1.0, end_message, time.monotonic())


def add_config_overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Adds ``--set KEY=VALUE`` (repeatable, into ``args.overrides``) for a training config."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def training_config_from_args(path: str, overrides: List[str]) -> Any:
    """The training configuration at ``path`` with the ``--set`` overrides applied.

    Raises:
        TrainingError: The file or an override is invalid.
    """
    from uniadrs_engine.training.config import TrainingConfig, parse_override

    return TrainingConfig.from_yaml(path, overrides=dict(map(parse_override, overrides)))
