"""Prints the time of a training step on a mixed batch, with and without per-count stems.

A training batch that mixes band counts (hyperspectral crops beside RGB ones) is collated
with every sample's bands repeated to the network's 270 input channels. Given each sample's
band count, the network runs its first convolution on the sample's own bands instead
(:meth:`uniadrs_engine.model.network.UniADRS.forward`, ``band_counts``), with the same
result. This prints the forward-and-backward time of both forms on one batch and their
ratio, in one run.

Usage:
    .venv/bin/python scripts/bench_training_step.py [--counts 224 3 156 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from typing import List, Optional, Sequence

import torch

from uniadrs_engine.model.config import get_config
from uniadrs_engine.model.network import UniADRS, repeat_bands


def step_seconds(
    network: UniADRS, batch: torch.Tensor, counts: Optional[Sequence[int]], repeats: int
) -> float:
    """Median seconds of a forward and backward pass."""
    times: List[float] = []
    for _ in range(repeats + 1):  # the first pass warms up and is not counted
        network.zero_grad(set_to_none=True)
        started = time.perf_counter()
        output = network(batch, band_counts=counts)
        (output.score.mean() + output.feat.pow(2).mean()).backward()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite8s32", help="network configuration")
    parser.add_argument("--counts", type=int, nargs="+", default=[224, 3, 156, 3])
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = UniADRS(get_config(args.model)).train()
    channels = network.config.in_channels
    batch = torch.cat(
        [
            repeat_bands(torch.rand(1, count, args.crop, args.crop), channels)
            for count in args.counts
        ]
    )
    repeated = step_seconds(network, batch, None, args.repeats)
    per_count = step_seconds(network, batch, args.counts, args.repeats)
    print(
        f"{args.model}, batch of band counts {args.counts}, {args.crop} px, "
        f"{args.threads} thread(s): repeated to {channels} channels {repeated:.3f} s, "
        f"per band count {per_count:.3f} s, ratio {per_count / repeated:.2f}"
    )


if __name__ == "__main__":
    main()
