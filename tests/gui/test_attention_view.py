"""The attention map: token labels that fit the plot, an empty state, the probe sentence's note and the colour scale."""

from __future__ import annotations

import numpy as np

from workbench.attention_view import LABEL_GAP_PX, AttentionView

WORDS = ("[CLS]", "committee", "which", "met", "secret", "several", "agreed", "the", "proposal", "was", "sound", "[SEP]")


def _view(qtbot, width: int, height: int) -> AttentionView:
    view = AttentionView()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return view


def _show(view: AttentionView, tokens: tuple[str, ...]) -> None:
    count = len(tokens)
    view.show_snapshot(3, tokens, np.full((2, 4, count, count), 1.0 / count, dtype=np.float32), "logphase mixer")


def _labels(view: AttentionView, axis: str) -> list[tuple[float, str]]:
    return view.plot_item.getAxis(axis)._tickLevels[0]


def test_long_probe_labels_do_not_overlap(qtbot):
    tokens = tuple(WORDS[i % len(WORDS)] for i in range(64))
    view = _view(qtbot, 640, 480)
    _show(view, tokens)
    qtbot.wait(20)

    bottom = _labels(view, "bottom")
    assert 1 < len(bottom) < len(tokens)
    view_box = view.plot_item.getViewBox().geometry()
    cell = min(view_box.width(), view_box.height()) / len(tokens)
    metrics = view._label_metrics()
    widest = max(metrics.horizontalAdvance(text) for _position, text in bottom)
    spacing = (bottom[1][0] - bottom[0][0]) * cell
    assert spacing >= widest + LABEL_GAP_PX
    left = _labels(view, "left")
    assert (left[1][0] - left[0][0]) * cell >= metrics.height()

    view.resize(1600, 1200)
    qtbot.wait(20)
    assert len(_labels(view, "bottom")) > len(bottom)  # a larger plot labels more tokens


def test_short_probe_labels_every_token(qtbot):
    tokens = ("[CLS]", "the", "film", "was", "fun", "[SEP]")
    view = _view(qtbot, 900, 700)
    _show(view, tokens)
    qtbot.wait(20)

    assert [text for _position, text in _labels(view, "bottom")] == list(tokens)
    assert [text for _position, text in _labels(view, "left")] == list(tokens)


def test_empty_map_shows_no_numbers(qtbot):
    view = _view(qtbot, 640, 480)
    _show(view, WORDS)
    view.clear()

    assert _labels(view, "bottom") == []
    assert _labels(view, "left") == []
    assert view.current_matrix() is None
    assert view.info_label.text().startswith("No attention map yet")


def test_edited_probe_names_the_shown_one(qtbot):
    view = _view(qtbot, 640, 480)
    view.set_probe_text("the film was a delight")
    view.set_run_probe("the film was a delight")
    _show(view, WORDS)
    assert "next run" not in view.info_label.text()

    view.probe_edit.clear()
    qtbot.keyClicks(view.probe_edit, "colorless green ideas")
    assert 'This map is of the run\'s probe sentence, "the film was a delight"' in view.info_label.text()
    assert "the edited sentence applies from the next run" in view.info_label.text()

    view.set_probe_text("the film was a delight")
    assert "next run" not in view.info_label.text()


def _nearly_uniform(count: int) -> np.ndarray:
    """A softmax map whose rows differ from uniform by a few per cent, as in a freshly initialised student."""
    scores = np.random.default_rng(0).normal(0.0, 0.05, size=(1, 1, count, count))
    weights = np.exp(scores)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_colour_scale_zero_or_fitted(qtbot):
    view = _view(qtbot, 640, 480)
    maps = _nearly_uniform(len(WORDS))
    view.show_snapshot(3, WORDS, maps)
    matrix = maps[0, 0]

    low, high = view.colour_levels()
    assert low == 0.0
    assert high == np.float32(matrix.max())

    view.fit_colours_box.setChecked(True)
    low, high = view.colour_levels()
    assert low == np.float32(matrix.min())
    assert high == np.float32(matrix.max())
    assert low > 0.8 / len(WORDS)  # the fitted scale leaves out the empty range below the weights


def test_info_names_value_range(qtbot):
    view = _view(qtbot, 640, 480)
    maps = _nearly_uniform(len(WORDS))
    view.show_snapshot(3, WORDS, maps)

    text = view.info_label.text()
    assert f"Values {maps.min():.3g} to {maps.max():.3g}" in text
    assert f"a uniform row over {len(WORDS)} tokens is {1 / len(WORDS):.3g}" in text

    # A spectral mixer's Toeplitz rows are not probabilities: no uniform weight to compare with.
    toeplitz = np.tril(np.full((1, 1, 4, 4), -0.5, dtype=np.float32)) + np.eye(4, dtype=np.float32)
    view.show_snapshot(3, WORDS[:4], toeplitz)
    text = view.info_label.text()
    assert "Values -0.5 to 0.5." in text
    assert "uniform" not in text
    assert view.colour_levels()[0] == -0.5
