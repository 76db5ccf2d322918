"""Entry point of the ``uniadrs`` command line.

Each sub-command lives in its own module under :mod:`uniadrs_engine.cli.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function taking the
parsed arguments and returning an exit status. Errors a user can act on
(:class:`~uniadrs_engine.errors.UniadrsError`, missing files, bad options) are printed as one
line on stderr with a non-zero exit status, never as a traceback.

Example:
    $ uniadrs detect scene.tif scores.tif --model default --preset hyperspectral
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from typing import Any, Iterator, List, Optional, Sequence

from uniadrs_engine import __version__
from uniadrs_engine.errors import CancelledError, UniadrsError, file_system_message

#: Sub-command modules, in the order ``uniadrs --help`` lists them.
COMMAND_MODULES = (
    "detect",
    "rx",
    "threshold",
    "rasterize",
    "evaluate",
    "benchmark",
    "simulate",
    "train",
    "ensemble",
    "split",
    "info",
)

EXIT_USER_ERROR = 2
EXIT_CANCELLED = 130
#: A closed output pipe (128 + SIGPIPE, as a shell reports a tool that SIGPIPE stopped).
EXIT_BROKEN_PIPE = 141

#: Signals that stop a run as Ctrl-C does (``kill``, ``timeout``, a closed terminal), so
#: that it cleans up its temporary files (and training writes its checkpoint).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def build_parser() -> argparse.ArgumentParser:
    """Builds the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="uniadrs",
        description="UniADRS: zero-shot anomaly detection for remote-sensing rasters.",
    )
    parser.add_argument("--version", action="version", version=f"uniadrs {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"uniadrs_engine.cli.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"uniadrs_engine.cli.commands.{name}":
                continue  # a sub-command not written yet
            raise
        module.register(subparsers)
    return parser


def _interrupt(signum: int, frame: Any) -> None:
    """Handles a stop signal with whatever handles Ctrl-C now (KeyboardInterrupt by default)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals_as_interrupts() -> Iterator[None]:
    """Makes :data:`STOP_SIGNALS` act as Ctrl-C while a command runs (main thread only).

    A signal the command was started with ignored (``nohup`` ignores SIGHUP) stays ignored.
    """
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
        for number in STOP_SIGNALS:
            if signal.getsignal(number) is signal.SIG_IGN:
                continue  # ignored on purpose (``nohup``): it stays ignored
            previous[number] = signal.signal(number, _interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


#: Options whose value may start with ``-`` without being a plain number (``-1e5``,
#: ``-5..-1``): argparse would take such a value for an option.
VALUES_THAT_MAY_START_WITH_A_DASH = ("--nodata", "--value")


def attach_values(argv: Sequence[str]) -> List[str]:
    """Joins ``--nodata -5..-1`` into ``--nodata=-5..-1``, which argparse reads as a value.

    Example:
        >>> attach_values(["rx", "a.tif", "b.tif", "--nodata", "-1e5", "--quiet"])
        ['rx', 'a.tif', 'b.tif', '--nodata=-1e5', '--quiet']
    """
    joined: List[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        if (
            item in VALUES_THAT_MAY_START_WITH_A_DASH
            and index + 1 < len(items)
            and items[index + 1].startswith("-")
            and not items[index + 1].startswith("--")
        ):
            joined.append(f"{item}={items[index + 1]}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line and returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(attach_values(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USER_ERROR
    if getattr(args, "memory_mb", None):
        from uniadrs_engine.raster.reader import limit_gdal_cache

        # GDAL's block cache (5 % of the RAM by default) comes on top of the budget
        limit_gdal_cache(max(32.0, args.memory_mb / 4))
    try:
        with _stop_signals_as_interrupts():
            status = int(handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        # the reader went away (``uniadrs info | head -1``): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except CancelledError as error:
        print(f"uniadrs: {error}", file=sys.stderr)
        return EXIT_CANCELLED
    except UniadrsError as error:
        print(f"uniadrs: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("uniadrs: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except OSError as error:
        message = file_system_message(error)
        if message is None:
            raise
        print(f"uniadrs: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
