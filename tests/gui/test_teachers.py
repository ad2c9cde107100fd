"""The teacher list and its "Add model…" dialog, which checks a model off the GUI thread."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt

from engine.model_sources import packaged_minilm_folder


def _open(qtbot, window, spec: str):
    dialog = window.config_panel.teacher_list.open_add_dialog()
    qtbot.keyClicks(dialog.spec_edit, spec)
    return dialog


def _add(qtbot, window, spec: str):
    dialog = _open(qtbot, window, spec)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    return dialog


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no-such-org/no-such-model", "not in the local Hugging Face cache"),
        ("not a valid id!!", "was not found on the Hugging Face Hub"),
        ("/nonexistent/teacher-folder", "does not exist or is not a folder"),
    ],
)
def test_invalid_teacher_shows_message(qtbot, window, spec, expected):
    teacher_list = window.config_panel.teacher_list
    before = teacher_list.teachers()
    dialog = _add(qtbot, window, spec)

    qtbot.waitUntil(lambda: expected in dialog.message, timeout=30_000)
    assert dialog.isVisible()
    assert dialog.add_button.isEnabled()
    assert spec not in teacher_list.custom_specs()
    assert teacher_list.teachers() == before
    dialog.reject()


def test_empty_teacher_id_is_rejected_at_once(qtbot, window):
    dialog = _add(qtbot, window, "")
    assert "Type a Hugging Face id" in dialog.message
    dialog.reject()


def test_local_teacher_folder_is_added_checked(qtbot, window):
    folder = str(packaged_minilm_folder())
    teacher_list = window.config_panel.teacher_list
    dialog = _open(qtbot, window, folder)
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)

    assert folder in teacher_list.custom_specs()
    assert folder in teacher_list.teachers()
    assert window.config_panel.value("distillation.teachers")[-1] == folder


def test_no_teacher_checked_blocks_run(qtbot, window):
    panel = window.config_panel
    panel.teacher_list.set_teachers([])

    assert "distillation.teachers" in panel.errors
    assert not window.run_controls.run_button.isEnabled()
    assert "No teacher is chosen" in window.run_controls.run_button.toolTip()


def test_custom_teacher_can_be_removed(qtbot, window):
    teacher_list = window.config_panel.teacher_list
    teacher_list.add_custom("/some/folder", checked=True)
    assert teacher_list.remove_button.isEnabled()

    qtbot.mouseClick(teacher_list.remove_button, Qt.MouseButton.LeftButton)
    assert "/some/folder" not in teacher_list.custom_specs()
    assert "/some/folder" not in teacher_list.teachers()


def test_teacher_order_follows_the_list(qtbot, window):
    teacher_list = window.config_panel.teacher_list
    teacher_list.set_teachers(["/some/folder", "roberta", "gpt2"])
    assert teacher_list.teachers() == ["/some/folder", "roberta", "gpt2"]

    # Dragging a row moves it in the model, as QListWidget's internal move does.
    model = teacher_list.list_widget.model()
    with qtbot.waitSignal(teacher_list.teachers_changed, timeout=1000):
        assert model.moveRow(QModelIndex(), 2, QModelIndex(), 0)
    assert teacher_list.teachers() == ["gpt2", "/some/folder", "roberta"]
    assert list(window.config_panel.value("distillation.teachers")) == ["gpt2", "/some/folder", "roberta"]


def test_fixed_weights_follow_dragged_teachers(qtbot, window):
    panel = window.config_panel
    teacher_list = panel.teacher_list
    teacher_list.set_teachers(["/some/folder", "minilm"])
    panel.editors["distillation.weighting"].set_value("fixed")
    panel.editors["distillation.fixed_weights"].set_value("0.9, 0.1")

    model = teacher_list.list_widget.model()
    minilm_row = [teacher_list.list_widget.item(row).data(Qt.ItemDataRole.UserRole) for row in range(model.rowCount())].index("minilm")
    assert model.moveRow(QModelIndex(), minilm_row, QModelIndex(), 0)

    assert teacher_list.teachers() == ["minilm", "/some/folder"]
    assert panel.editors["distillation.fixed_weights"].raw() == ["0.1", "0.9"]
    assert "minilm, /some/folder" in panel.weights_hint.text()

    teacher_list.set_teachers(["minilm", "gpt2"])  # other teachers: the weights stay as typed
    assert panel.editors["distillation.fixed_weights"].raw() == ["0.1", "0.9"]


def test_same_folder_is_listed_once(qtbot, window):
    teacher_list = window.config_panel.teacher_list
    teacher_list.add_custom("/models/tiny-bert")
    teacher_list.add_custom("/models/tiny-bert/")
    teacher_list.add_custom("openai-community/gpt2")

    assert teacher_list.custom_specs().count("/models/tiny-bert") == 1
    assert "/models/tiny-bert/" not in teacher_list.custom_specs()
    assert "openai-community/gpt2" not in teacher_list.custom_specs()  # the gpt2 alias is checked instead
    assert "gpt2" in teacher_list.teachers()


def _download_until_cancelled(chunks: list[int]):
    """A snapshot_download whose weight file arrives slowly, chunk by chunk, until it is cancelled."""
    import time

    from huggingface_hub.utils.tqdm import _create_progress_bar

    def snapshot_download(repo_id, allow_patterns=None, tqdm_class=None, **kwargs):
        bar = _create_progress_bar(cls=tqdm_class, log_level=30, total=100_000, unit="B")
        for chunk in range(100_000):
            bar.update(1)
            chunks.append(chunk)
            time.sleep(0.01)
        raise AssertionError("the download was never cancelled")

    return snapshot_download


def test_closing_add_dialog_stops_hub_download(qtbot, window, monkeypatch):
    import huggingface_hub

    chunks: list[int] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _download_until_cancelled(chunks))
    dialog = _add(qtbot, window, "someone/large-model")
    qtbot.waitUntil(lambda: len(chunks) >= 3, timeout=10_000)
    check = dialog._check

    dialog.reject()

    qtbot.waitUntil(lambda: not check.is_running(), timeout=5_000)
    assert len(chunks) < 1000
    assert "someone/large-model" not in window.config_panel.teacher_list.custom_specs()


def test_shutdown_stops_a_teacher_check_download(qtbot, window, monkeypatch):
    import huggingface_hub

    from workbench.threads import thread_registry

    chunks: list[int] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _download_until_cancelled(chunks))
    dialog = _add(qtbot, window, "someone/large-model")
    qtbot.waitUntil(lambda: len(chunks) >= 3, timeout=10_000)

    stuck = thread_registry().stop_all(timeout_ms=5_000)

    assert stuck == []
    assert len(chunks) < 1000
    dialog.reject()


def test_long_folder_shows_its_end_and_description(qtbot, window):
    teacher_list = window.config_panel.teacher_list
    folder = "/home/researcher/experiments/2026-12/checkpoints/bert-sst2/final"
    teacher_list.add_custom(folder, "bert, hidden size 768")

    item = teacher_list.list_widget.currentItem()
    assert item.text() == "…/bert-sst2/final — bert, hidden size 768"
    assert item.toolTip() == f"{folder}\nbert, hidden size 768"
    assert folder in teacher_list.teachers()  # the run gets the whole path


def test_descriptions_wrap_in_narrow_window(qtbot, window):
    window.resize(800, 700)
    window.show()
    qtbot.waitExposed(window)

    list_widget = window.config_panel.teacher_list.list_widget
    viewport = list_widget.viewport().rect()
    for row in range(list_widget.count()):
        item = list_widget.item(row)
        assert viewport.contains(list_widget.visualItemRect(item).topRight()), item.text()
    assert not list_widget.horizontalScrollBar().isVisible()
