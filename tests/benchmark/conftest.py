"""Fixtures of the benchmark tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark.tiny_benchmark import write_tiny_manifest


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    """A tiny generated benchmark manifest (see :func:`write_tiny_manifest`)."""
    return write_tiny_manifest(tmp_path / "bench")
