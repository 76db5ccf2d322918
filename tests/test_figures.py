from __future__ import annotations

import warnings

from PIL import Image

from uniadrs_engine.figures import agg_figure, save_png


def test_a_title_the_font_cannot_draw_is_saved_without_a_warning(tmp_path):
    figure = agg_figure(3.0, 2.0)
    figure.subplots().plot([0, 1], [0, 1])
    figure.suptitle("scores of 東京 scene \U0001f6f0")  # glyphs DejaVu Sans lacks
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        path = save_png(figure, tmp_path / "figure.png")
    assert path == tmp_path / "figure.png"
    assert Image.open(path).size == (300, 200)
    assert [item.name for item in tmp_path.iterdir()] == ["figure.png"]  # no partial file
