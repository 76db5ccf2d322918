"""The examples in the engine's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil
from typing import List

import pytest

import uniadrs_engine


def _modules_with_examples() -> List[str]:
    names = []
    for info in pkgutil.walk_packages(uniadrs_engine.__path__, prefix="uniadrs_engine."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if any(test.examples for test in doctest.DocTestFinder().find(module)):
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_examples_are_found():
    assert "uniadrs_engine.model.weight_storage" in MODULES and len(MODULES) > 20


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed"
