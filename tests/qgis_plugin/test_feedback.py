"""Tests of the engine's callables and log records shown in a Processing feedback."""

from __future__ import annotations

import logging

from qgis.core import QgsProcessingFeedback

from qgis_plugin.feedback import engine_callbacks, engine_log_to_feedback


class _RecordingFeedback(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []

    def pushInfo(self, info: str) -> None:  # noqa: N802 (Qt's name)
        self.lines.append(("info", info))

    def pushWarning(self, warning: str) -> None:  # noqa: N802
        self.lines.append(("warning", warning))

    def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802, N803
        self.lines.append(("error", error))


def test_engine_records_keep_their_level_in_the_log():
    feedback = _RecordingFeedback()
    logger = logging.getLogger("uniadrs_engine.inference.presets")
    with engine_log_to_feedback(feedback):
        logger.debug("not shown")
        logger.info("scales 1 and 0.5")
        logger.warning("the scale was clipped")
        logger.error("a network failed")
    logger.warning("after the run: not shown")
    assert feedback.lines == [
        ("info", "scales 1 and 0.5"),
        ("warning", "the scale was clipped"),  # a warning, not an error, on a run that works
        ("error", "a network failed"),
    ]


def test_progress_is_clipped_and_each_message_shown_once():
    feedback = _RecordingFeedback()
    texts: list[str] = []
    feedback.setProgressText = texts.append  # type: ignore[method-assign]
    progress, is_cancelled = engine_callbacks(feedback)
    progress(0.2, "reading")
    progress(0.4, "reading")
    progress(1.7, "writing")
    assert feedback.progress() == 100.0
    assert texts == ["reading", "writing"]
    assert not is_cancelled()
    feedback.cancel()
    assert is_cancelled()


def test_a_run_that_ends_first_leaves_the_others_log_shown():
    """Batch mode and models run algorithms side by side: the first to end must not set the
    engine's log back to warnings while another still runs."""
    first, second = _RecordingFeedback(), _RecordingFeedback()
    engine = logging.getLogger("uniadrs_engine")
    before = engine.level
    logger = logging.getLogger("uniadrs_engine.inference.detector")
    first_run, second_run = engine_log_to_feedback(first), engine_log_to_feedback(second)
    first_run.__enter__()  # the first starts, then the second; the first ends first
    second_run.__enter__()
    logger.info("both run")
    first_run.__exit__(None, None, None)
    logger.info("the second still runs")
    second_run.__exit__(None, None, None)
    assert engine.level == before
    assert second.lines == [("info", "both run"), ("info", "the second still runs")]
    assert first.lines == [("info", "both run")]
