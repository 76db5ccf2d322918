"""Times inference: one network's forward pass and ``detect_raster`` with the default model.

Prints, for a generated 3-band raster, the best of ``--repeat`` runs of (a) one network of
the default model on a ``--tile`` square (seconds and megapixels a second) and (b) the whole
default model through ``detect_raster`` with a preset (seconds and megapixels a second), so
that two versions of the engine can be compared on one machine (run it in each checkout, in
turn, under the same load; the figures are times, never assertions).

Examples:
    .venv/bin/python scripts/bench_inference.py
    .venv/bin/python scripts/bench_inference.py --size 1024 --preset sar --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import write_scene  # noqa: E402

from uniadrs_engine.inference.detector import DetectionOptions, detect_raster  # noqa: E402
from uniadrs_engine.model.model_file import load_model  # noqa: E402


def best_of(repeat: int, run) -> float:
    """The shortest of ``repeat`` timed calls of ``run`` (after one warm-up call)."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Parses the arguments and prints the timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=768, help="raster side (default 768)")
    parser.add_argument("--tile", type=int, default=512, help="forward-pass side (default 512)")
    parser.add_argument("--preset", default="visible", help="detection preset (default visible)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    network = load_model("default").network.members[0].eval()
    image = torch.rand(1, 3, args.tile, args.tile)

    def forward() -> None:
        with torch.inference_mode():
            try:
                network(image, features=False)
            except TypeError:  # an engine from before the score-only pass
                network(image)

    seconds = best_of(args.repeat, forward)
    print(
        f"one network, {args.tile}x{args.tile}x3: {seconds:.3f} s "
        f"({args.tile**2 / seconds / 1e6:.3f} Mpx/s)"
    )
    with tempfile.TemporaryDirectory() as folder:
        scene = write_scene(Path(folder) / "scene.tif", args.size, 3)
        options = DetectionOptions(model="default", preset=args.preset, device="cpu")

        def detect() -> None:
            detect_raster(scene, Path(folder) / "scores.tif", options)

        seconds = best_of(args.repeat, detect)
    print(
        f"detect_raster, default model, preset {args.preset}, {args.size}x{args.size}x3: "
        f"{seconds:.2f} s ({args.size**2 / seconds / 1e6:.3f} Mpx/s)"
    )


if __name__ == "__main__":
    main()
