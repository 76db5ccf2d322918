"""Measures that ``detect_raster``'s peak memory does not grow with the raster's size.

For each size, a generated raster (smooth background, a few bright squares) is written
strip by strip and ``detect_raster`` runs on it in a fresh subprocess; the script prints the
peak resident memory and the time of each run and the ratio of the largest to the smallest
peak against the ratio of their pixel counts.

With ``--agreement`` it measures instead how far tiled scores are from whole-image scores
of one raster (max / mean absolute difference, Spearman rank correlation) for a few tile and
halo sizes: use it with a trained model to choose the default tile and halo.

Examples:
    .venv/bin/python scripts/bench_memory.py --sizes 256,512,1024,2048
    .venv/bin/python scripts/bench_memory.py --model model.safetensors --device cuda
    .venv/bin/python scripts/bench_memory.py --agreement --model model.safetensors --size 384
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_scene(path: Path, size: int, bands: int, strip_rows: int = 256) -> Path:
    """Writes a ``size`` x ``size`` uint16 scene strip by strip (bounded memory)."""
    from osgeo import gdal

    gdal.UseExceptions()
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), size, size, bands, gdal.GDT_UInt16, options=["TILED=YES", "COMPRESS=LZW"]
    )
    dataset.SetGeoTransform((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0))
    rng = np.random.default_rng(0)
    columns = np.arange(size)[None, :]
    for row in range(0, size, strip_rows):
        rows = np.arange(row, min(size, row + strip_rows))[:, None]
        for band in range(bands):
            smooth = np.sin(columns / (37.0 + band)) + np.cos(rows / (53.0 + 3 * band))
            values = 1000 + 300 * smooth + rng.normal(0, 20, size=(rows.size, size))
            bright = ((rows // 8) % 40 == 7) & ((columns // 8) % 40 == 11)
            values = np.where(bright, values + 900 * (band % 2 + 1), values)
            dataset.GetRasterBand(band + 1).WriteArray(values.astype(np.uint16), 0, row)
    dataset = None
    return path


def make_model(path: Path, config: str) -> Path:
    """Saves an untrained network of the named configuration (enough for memory and time)."""
    import torch

    from uniadrs_engine.model.config import get_config
    from uniadrs_engine.model.model_card import ModelCard
    from uniadrs_engine.model.model_file import save_model
    from uniadrs_engine.model.network import UniADRS

    torch.manual_seed(0)
    network = UniADRS(get_config(config))
    save_model(path, network, ModelCard(name=f"bench-{config}", config=network.config))
    return path


def run_child(args: argparse.Namespace) -> None:
    """In the subprocess: one detection, then peak memory and time as JSON on stdout."""
    import torch

    from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
    from uniadrs_engine.raster.reader import limit_gdal_cache

    if args.threads:
        torch.set_num_threads(args.threads)
    limit_gdal_cache(max(32, args.memory_mb / 4))  # as `uniadrs detect` does
    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    options = DetectionOptions(
        model=args.model,
        scales=[float(scale) for scale in args.scales.split(",")],
        tile=args.tile,
        halo=args.halo,
        batch_size=args.batch,
        device=args.device,
        memory_mb=args.memory_mb,
    )
    started = time.perf_counter()
    report = detect_raster(args.child, args.output, options)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_peak_mib = None
    if torch.cuda.is_available() and report.device.startswith("cuda"):
        gpu_peak_mib = torch.cuda.max_memory_allocated() / 2**20
    print(
        json.dumps(
            {
                "peak_mib": peak_mib,
                "import_mib": baseline_mib,
                "seconds": seconds,
                "tiles": report.tile_count,
                "device": report.device,
                "batch": list(report.batch_sizes),
                "gpu_peak_mib": gpu_peak_mib,
            }
        )
    )


def child_command(args: argparse.Namespace, raster: Path, output: Path, model: Path) -> list:
    return [
        sys.executable, __file__, "--child", str(raster), "--output", str(output),
        "--model", str(model), "--scales", args.scales, "--tile", str(args.tile),
        "--halo", str(args.halo), "--batch", str(args.batch), "--device", args.device,
        "--memory-mb", str(args.memory_mb), "--threads", str(args.threads),
    ]  # fmt: skip


def run_memory_benchmark(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="uniadrs-bench-") as folder:
        work = Path(folder)
        model = (
            Path(args.model) if args.model else make_model(work / "model.safetensors", args.config)
        )
        print(
            f"model {model.name}, {args.bands} bands, scales {args.scales}, tile {args.tile}, "
            f"halo {args.halo}, batch {args.batch}, memory budget {args.memory_mb} MiB"
        )
        print(
            f"{'size':>11} {'pixels':>12} {'tiles':>6} {'peak MiB':>9} {'after import':>12} "
            f"{'seconds':>8} {'us/pixel':>9}  device"
        )
        results = []
        for size in sizes:
            raster = write_scene(work / f"scene_{size}.tif", size, args.bands)
            output = work / f"scores_{size}.tif"
            completed = subprocess.run(
                child_command(args, raster, output, model), capture_output=True, text=True
            )
            if completed.returncode != 0:
                print(f"{size}: failed\n{completed.stderr}")
                return
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            results.append((size, result))
            gpu = f", GPU peak {result['gpu_peak_mib']:.0f} MiB" if result["gpu_peak_mib"] else ""
            print(
                f"{size:>5}x{size:<5} {size * size:>12} {result['tiles']:>6} "
                f"{result['peak_mib']:>9.0f} {result['peak_mib'] - result['import_mib']:>12.0f} "
                f"{result['seconds']:>8.1f} {1e6 * result['seconds'] / size**2:>9.2f}  "
                f"{result['device']}, batch {result['batch']}{gpu}"
            )
            raster.unlink()
            output.unlink()
        pairs = [(results[0], results[-1])]
        if len(results) > 2:
            pairs.append((results[-2], results[-1]))  # past the small rasters' partial batches
        for (small, first), (large, last) in pairs:
            growth_first = max(1.0, first["peak_mib"] - first["import_mib"])
            growth_last = last["peak_mib"] - last["import_mib"]
            print(
                f"{small} -> {large}: pixels x{(large / small) ** 2:.0f}, "
                f"peak memory x{last['peak_mib'] / first['peak_mib']:.2f} "
                f"(above imports x{growth_last / growth_first:.2f}), "
                f"time x{last['seconds'] / first['seconds']:.1f}"
            )


def run_agreement(args: argparse.Namespace) -> None:
    """Tiled against whole-image scores of one raster, for a few tile and halo sizes."""
    import torch
    from scipy.stats import spearmanr

    from uniadrs_engine.inference.detector import DetectionOptions, detect_raster
    from uniadrs_engine.inference.device import resolve_device
    from uniadrs_engine.inference.scoring import score_image
    from uniadrs_engine.model.model_file import load_model
    from uniadrs_engine.raster.normalisation import normalise_input
    from uniadrs_engine.raster.reader import open_raster

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="uniadrs-agree-") as folder:
        work = Path(folder)
        model_path = (
            Path(args.model) if args.model else make_model(work / "m.safetensors", args.config)
        )
        model = load_model(model_path, device)
        raster = (
            Path(args.input)
            if args.input
            else write_scene(work / "scene.tif", args.size, args.bands)
        )
        with open_raster(raster) as source:
            block = source.read_window(source.full_window())
        normalised = normalise_input(block.data, model.card.normalisation, block.valid)
        whole = score_image(model.network, normalised, device)
        print(f"model {model.card.summary()}\nraster {raster.name}: {block.data.shape}")
        header = ("tile", "halo", "tiles", "max diff", "mean diff", "rho", "seconds")
        print(" ".join(f"{name:>9}" for name in header))
        for tile in [int(value) for value in args.tiles.split(",")]:
            for halo in [int(value) for value in args.halos.split(",")]:
                output = work / f"tiled_{tile}_{halo}.tif"
                options = DetectionOptions(
                    model=model,
                    scales=[1.0],
                    tile=tile,
                    halo=halo,
                    device=args.device,
                    batch_size=args.batch,
                )
                started = time.perf_counter()
                report = detect_raster(raster, output, options)
                seconds = time.perf_counter() - started
                with open_raster(output) as source:
                    scores = source.read_window(source.full_window())
                use = scores.valid & block.valid
                difference = np.abs(scores.data[0][use] - whole[use])
                rho = spearmanr(scores.data[0][use], whole[use])[0]
                print(
                    f"{tile:>9} {halo:>9} {report.tile_count:>9} {difference.max():>9.4f} "
                    f"{difference.mean():>9.5f} {rho:>9.4f} {seconds:>9.1f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512,1024,2048", help="raster sides to run")
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--model", default=None, help="model file (default: untrained)")
    parser.add_argument("--config", default="lite8", help="configuration of the untrained model")
    parser.add_argument("--scales", default="1.0")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--halo", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--agreement", action="store_true", help="tiled vs whole-image scores")
    parser.add_argument("--input", default=None, help="raster for --agreement")
    parser.add_argument("--size", type=int, default=384, help="generated side for --agreement")
    parser.add_argument("--tiles", default="64,128,256", help="tiles for --agreement")
    parser.add_argument("--halos", default="0,32,64,128", help="halos for --agreement")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
    elif args.agreement:
        run_agreement(args)
    else:
        run_memory_benchmark(args)


if __name__ == "__main__":
    main()
