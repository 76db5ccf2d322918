"""The examples in the engine's docstrings run and print what they show."""

import doctest
import importlib
import pkgutil

import pytest

import uniadrs_engine

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(uniadrs_engine.__path__, prefix="uniadrs_engine.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    if not tests:
        pytest.skip("no examples")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed"
