"""The attention map: token labels that fit the plot, an empty state, and the probe sentence's note."""

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
