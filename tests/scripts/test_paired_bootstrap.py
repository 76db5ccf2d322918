"""scripts/paired_bootstrap.py: two runs' per-sample AUCs compared set by set."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paired_bootstrap.py"


def write_record(path, sets):
    path.write_text(json.dumps({"model": "m", "preset": "visible", "sets": sets}))
    return str(path)


def test_only_shared_sets_and_candidates_are_paired(paired_bootstrap, tmp_path):
    reference = paired_bootstrap.read_per_sample(
        write_record(tmp_path / "d.json", {"a": {"0.5,1": [0.5, 0.6]}, "b": {"1": [0.7]}})
    )
    other = paired_bootstrap.read_per_sample(
        write_record(tmp_path / "v.json", {"a": {"0.5,1": [0.6, 0.6], "1": [0.1, 0.2]}})
    )
    assert paired_bootstrap.shared_pairs(reference, other) == [("a", "0.5,1", "0.5,1")]
    # Named candidates pair across names (two fusion powers of one file).
    assert paired_bootstrap.shared_pairs(reference, other, ("0.5,1", "1")) == [("a", "0.5,1", "1")]
    with pytest.raises(ValueError, match="share no"):
        paired_bootstrap.shared_pairs({"b": reference["b"]}, other)


def test_sets_of_other_samples_are_refused(paired_bootstrap):
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap.shared_pairs(
            {"a": {"1": np.array([0.5, 0.6])}}, {"a": {"1": np.array([0.5, 0.6, 0.7])}}
        )


def test_the_interval_holds_the_observed_difference(paired_bootstrap):
    rng = np.random.default_rng(4)
    base = [rng.random(96), rng.random(96)]
    other = [base[0] + 0.03 + rng.normal(0, 0.02, 96), base[1] - 0.01 + rng.normal(0, 0.02, 96)]
    found = paired_bootstrap.paired_difference(base, other, resamples=1000)
    assert found.observed == pytest.approx(np.mean([np.mean(b - a) for a, b in zip(base, other)]))
    assert found.low < found.observed < found.high
    assert found.low < 0.01 < found.high and found.high - found.low < 0.02


def test_the_command_prints_each_set_and_the_mean(tmp_path):
    sets_d = {"a": {"0.5,1": [0.5, 0.6, 0.7]}, "b": {"0.5,1": [0.8, 0.8, 0.9]}}
    sets_v = {"a": {"0.5,1": [0.6, 0.7, 0.8]}, "b": {"0.5,1": [0.8, 0.8, 0.9]}}
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            write_record(tmp_path / "d.json", sets_d),
            write_record(tmp_path / "v.json", sets_v),
            "--resamples",
            "50",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| a | 0.5,1 | 3 | 0.6000 | 0.7000 | +0.1000 (+0.1000 to +0.1000) |" in result.stdout
    assert "| b | 0.5,1 | 3 | 0.8333 | 0.8333 | +0.0000 (+0.0000 to +0.0000) |" in result.stdout
    assert "mean over the 2 rows: +0.0500 (+0.0500 to +0.0500)" in result.stdout
