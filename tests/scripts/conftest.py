"""Loading the experiment scripts of ``scripts/`` (not a package) as modules for their tests."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (its ``main`` is not run).

    ``scripts/`` is on the import path while it loads, as when the script is run, so that
    the scripts may import ``compare_models`` (where the validation sets are built).
    """
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


@pytest.fixture(scope="module")
def compare_models() -> ModuleType:
    """``scripts/compare_models.py``."""
    return load_script("compare_models")


@pytest.fixture(scope="module")
def compare_scales() -> ModuleType:
    """``scripts/compare_scales.py``."""
    return load_script("compare_scales")


@pytest.fixture(scope="module")
def select_networks() -> ModuleType:
    """``scripts/select_networks.py``."""
    return load_script("select_networks")


@pytest.fixture(scope="module")
def halo_auc() -> ModuleType:
    """``scripts/halo_auc.py``."""
    return load_script("halo_auc")


@pytest.fixture(scope="module")
def paired_bootstrap() -> ModuleType:
    """``scripts/paired_bootstrap.py``."""
    return load_script("paired_bootstrap")
