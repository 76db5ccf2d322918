"""Tests of the shared argument parsers."""

from __future__ import annotations

import argparse

import pytest

from uniadrs_engine.cli.arguments import (
    BAR_DELAY_S,
    band_list,
    parse_band_list,
    parse_float_list,
    positive_int,
    progress_bar,
)
from uniadrs_engine.errors import InputError


@pytest.mark.parametrize(
    "text,bands",
    [
        ("3", [3]),
        ("1,2,5-9", [1, 2, 5, 6, 7, 8, 9]),
        (" 4 - 2 , 7", [4, 3, 2, 7]),
        ("2,2", [2, 2]),
        ("2 5", [2, 5]),
        ("1 - 3  7", [1, 2, 3, 7]),
        ("2;5", [2, 5]),
    ],
)
def test_band_lists(text: str, bands: list) -> None:
    assert parse_band_list(text) == bands


@pytest.mark.parametrize("text", ["", "1,,2", "0", "a", "1-", "-3", "2-x", "1.5", "1-1000000"])
def test_bad_band_lists(text: str) -> None:
    with pytest.raises(InputError):
        parse_band_list(text)


def test_argparse_types_report_usage_errors() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        band_list("x")
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int("0")
    assert parse_float_list("0.5, 1") == [0.5, 1.0]
    with pytest.raises(InputError):
        parse_float_list("0.5,nan")


@pytest.mark.parametrize("interactive", [True, False])
def test_progress_bar_accepts_fractions(capsys, interactive: bool) -> None:
    with progress_bar("test ", interactive=interactive) as update:
        update(0.5, "half")
        update(1.0, "")
    assert "100%" in capsys.readouterr().err
    with progress_bar(enabled=False, interactive=interactive) as update:
        update(0.3, "x")
    assert capsys.readouterr().err == ""


def test_a_resumed_bar_counts_its_rate_from_where_it_resumed(capsys) -> None:
    import re
    import time

    with progress_bar(steps=1000, interactive=True) as update:
        update(0.9, "resumed")  # a run that goes on from step 900
        time.sleep(BAR_DELAY_S + 0.2)
        update(0.91, "step 910")
    err = capsys.readouterr().err
    assert "910/1000" in err
    rates = [float(value) for value in re.findall(r"([\d.]+)step/s", err)]
    # 10 steps in about 0.7 s: some 14 steps/s, not the ~1,300 that 910 steps would give.
    assert rates and max(rates) < 200


@pytest.mark.parametrize("interactive", [True, False])
def test_a_bar_shows_only_after_a_moment_or_at_its_end(capsys, interactive: bool) -> None:
    with pytest.raises(ValueError), progress_bar("failing", interactive=interactive) as update:
        update(0.0, "reading")
        raise ValueError("bad input")  # a command that fails at once prints no bar
    assert capsys.readouterr().err == ""
    with progress_bar("quick", interactive=interactive) as update:
        update(0.5, "")
        update(1.0, "done")
    err = capsys.readouterr().err
    assert "quick: 100%" in err and "50%" not in err and err.endswith("\n")


def test_a_warning_before_the_bar_shows_prints_alone(capsys) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    with (
        pytest.raises(ValueError),
        progress_bar("simulating", steps=4, interactive=True) as update,
    ):
        update(0.0, "reading")
        logging.getLogger("uniadrs_engine.test").warning("no hyperspectral background")
        raise ValueError("cannot write")  # a failure before the bar had shown
    err = capsys.readouterr().err
    assert "no hyperspectral background" in err and "simulating" not in err


def test_without_a_terminal_progress_is_a_line_a_tenth(capsys, monkeypatch) -> None:
    """A log gets plain lines: one per tenth of the work, and one at its end, never a \\r."""
    import uniadrs_engine.cli.arguments as arguments

    now = [1000.0]
    monkeypatch.setattr(arguments.time, "monotonic", lambda: now[0])
    with progress_bar("detect") as update:  # capsys's stderr is no terminal
        for step in range(101):
            now[0] += 0.5
            update(step / 100, "scale 1: scoring tiles" if step < 100 else "done")
    lines = capsys.readouterr().err.splitlines()
    assert "\r" not in "".join(lines)
    assert len(lines) == 11
    assert lines[0] == "detect:   0% | 00:00 elapsed | scale 1: scoring tiles"
    assert lines[4] == "detect:  40% | 00:20 elapsed, 00:30 left | scale 1: scoring tiles"
    assert lines[-1] == "detect: 100% | 00:50 elapsed | done"


def test_without_a_terminal_a_slow_run_prints_a_line_a_minute(capsys, monkeypatch) -> None:
    import uniadrs_engine.cli.arguments as arguments

    now = [0.0]
    monkeypatch.setattr(arguments.time, "monotonic", lambda: now[0])
    with progress_bar(steps=1000) as update:  # a resumed training run: from step 900
        update(0.9, "resumed")
        for step in range(901, 1000):
            now[0] += 10.0
            update(step / 1000, f"loss {step}")
    lines = capsys.readouterr().err.splitlines()
    # 99 steps of 10 s: the first line once the bar's delay is over (a tenth reached), then
    # one a minute; the time left counts from step 900, where this run started
    assert lines[0] == "901/1000 steps | 00:10 elapsed, 16:30 left | loss 901"
    assert lines[1] == "907/1000 steps | 01:10 elapsed, 15:30 left | loss 907"
    assert len(lines) == 17 and lines[-1].startswith("997/1000 steps | 16:10 elapsed")


def test_without_a_terminal_the_last_line_has_the_last_message(capsys) -> None:
    with progress_bar("detect", interactive=False) as update:
        update(0.5, "scoring")
        update(1.0, "fusing score maps")
        update(1.0, "done")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("detect: 100% | ")
    assert lines[0].endswith(" | done")
    with pytest.raises(ValueError), progress_bar("failing", interactive=False) as update:
        update(1.0, "done")
        raise ValueError("the output could not be renamed")  # no 100 % line then
    assert capsys.readouterr().err == ""
