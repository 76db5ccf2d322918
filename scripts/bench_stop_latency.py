"""Measures how long a detection takes to stop once a stop is asked (QGIS's Cancel, Ctrl-C).

A stop is asked ``--after`` seconds into ``detect_raster`` (the ``is_cancelled`` callable
starts returning True then); the script prints the seconds from then to the
``CancelledError``, with the stop checked before each network pass (members of an ensemble,
views: the engine's behaviour) and, for comparison, between batches of tiles only (the
check of each pass switched off). Each mode runs ``--repeats`` times, alternately.

Example:
    .venv/bin/python scripts/bench_stop_latency.py --preset visible --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stop_latency(raster: Path, preset: str, after: float, per_pass: bool, out: Path) -> float:
    """Seconds from the stop asked ``after`` s into the run to the ``CancelledError``."""
    import uniadrs_engine.inference.detector as detector
    from uniadrs_engine.errors import CancelledError

    original = detector.checks_between_passes
    if not per_pass:
        detector.checks_between_passes = lambda network, check: contextlib.nullcontext()
    start = time.perf_counter()
    try:
        detector.detect_raster(
            raster,
            out,
            detector.DetectionOptions(preset=preset),
            is_cancelled=lambda: time.perf_counter() - start > after,
        )
    except CancelledError:
        return time.perf_counter() - start - after
    finally:
        detector.checks_between_passes = original
    raise SystemExit(f"the run ended before the stop ({after} s): ask it sooner (--after)")


def main() -> int:
    """Runs both modes and prints their latencies and the ratio of their medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--raster", type=Path, default=ROOT / "resources/sample/hrsid_P0094_sar.tif"
    )
    parser.add_argument("--preset", default="visible", help="default: visible (ten networks)")
    parser.add_argument("--after", type=float, default=8.0, help="seconds before the stop")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    latencies: Dict[str, List[float]] = {"each pass": [], "batches only": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for mode in latencies:
                seconds = stop_latency(
                    args.raster,
                    args.preset,
                    args.after,
                    mode == "each pass",
                    Path(folder) / "scores.tif",
                )
                latencies[mode].append(seconds)
                print(f"{mode:>12}: stopped {seconds:.2f} s after the stop was asked", flush=True)
    medians = {mode: statistics.median(values) for mode, values in latencies.items()}
    print(
        f"median: each pass {medians['each pass']:.2f} s, batches only "
        f"{medians['batches only']:.2f} s "
        f"({medians['batches only'] / max(medians['each pass'], 1e-9):.1f}x longer)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
