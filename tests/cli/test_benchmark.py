"""``uniadrs benchmark`` on a tiny generated manifest."""

from __future__ import annotations

import pytest

from tests.benchmark.tiny_benchmark import write_tiny_manifest
from uniadrs_engine.cli.main import main


@pytest.fixture
def tiny_manifest(tmp_path):
    return write_tiny_manifest(tmp_path / "bench")


def test_benchmark_command_writes_reports(tiny_manifest, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "benchmark",
            str(tiny_manifest),
            "--detectors",
            "rx-global,rx-local",
            "--out",
            str(out),
            "--scenes",
            "hsi/*",
            "--quiet",
            "--no-figure",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert any(line.strip().startswith("hsi") and "rx-global" in line for line in lines)
    assert not any(line.strip().startswith("ir ") for line in lines)
    assert (out / "results.csv").exists() and (out / "results.md").exists()
    assert not (out / "figure.png").exists()


def test_benchmark_command_writes_a_report_with_the_figure(tiny_manifest, tmp_path):
    out = tmp_path / "out"
    report = tmp_path / "docs" / "BENCHMARKS.md"
    code = main(
        [
            "benchmark",
            str(tiny_manifest),
            "--detectors",
            "rx-global",
            "--out",
            str(out),
            "--report",
            str(report),
            "--quiet",
        ]
    )
    assert code == 0
    text = report.read_text()
    assert "](../out/figure.png)" in text and (out / "figure.png").exists()
    assert "## Mean pixel AUC per modality" in text and "## Per scene" in text


def test_benchmark_command_errors(tiny_manifest, tmp_path, capsys):
    for arguments in (["--detectors", "rx-median"], ["--scenes", "sar/*"]):
        assert (
            main(
                [
                    "benchmark",
                    str(tiny_manifest),
                    "--out",
                    str(tmp_path / "o"),
                    "--quiet",
                    *arguments,
                ]
            )
            == 2
        )
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("uniadrs: error:")
    assert main(["benchmark", str(tmp_path / "none.json"), "--quiet"]) == 2


def test_failed_runs_give_status_1_with_the_reports_written(tiny_manifest, tmp_path, capsys):
    import numpy as np

    from tests.raster_factory import write_raster

    write_raster(tiny_manifest.parent / "hsi/b/mask.tif", np.zeros((40, 48), np.uint8), epsg=None)
    out = tmp_path / "out"
    command = ["benchmark", str(tiny_manifest), "--detectors", "rx-global", "--out", str(out)]
    assert main([*command, "--quiet", "--no-figure"]) == 1
    assert "1 run(s) failed" in capsys.readouterr().out
    assert (out / "results.md").exists()
