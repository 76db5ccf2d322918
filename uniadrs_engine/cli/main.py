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
import importlib
import logging
import os
import sys
from typing import Optional, Sequence

from uniadrs_engine import __version__
from uniadrs_engine.errors import CancelledError, UniadrsError

#: Sub-command modules, in the order ``uniadrs --help`` lists them.
COMMAND_MODULES = (
    "detect",
    "rx",
    "threshold",
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line and returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
