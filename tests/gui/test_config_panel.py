"""The configuration panel: validation next to each field, presets, sizes, parameter count, memory."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QScrollArea, QStyleOptionViewItem, QToolButton

from engine.config import RunConfig, load_preset
from engine.model_sources import packaged_minilm_folder, short_model_name
from engine.student import count_student_parameters
from engine.tasks import TASKS
from workbench.config_panel import SIZE_PRESETS
from workbench.main_window import MainWindow
from workbench.settings import WorkbenchSettings


def _use_offline_models(panel) -> None:
    """Replace the default Hub teachers and tokenizer, which the tests' offline cache lacks, by MiniLM."""
    panel.teacher_list.set_teachers(["minilm"])
    panel.editors["student.tokenizer"].set_value("minilm")


def _type(qtbot, panel, path: str, text: str) -> None:
    line_edit = panel.editors[path].line_edit
    line_edit.clear()
    qtbot.keyClicks(line_edit, text)


def test_task_list_has_nine_described_tasks(window):
    combo = window.config_panel.editors["task"].combo
    assert combo.count() == 9
    delegate = combo.itemDelegate()
    for row, task in enumerate(TASKS.values()):
        assert combo.itemText(row) == task.title
        option = QStyleOptionViewItem()
        delegate.initStyleOption(option, combo.model().index(row, 0))
        assert option.text == f"{task.title} — {task.description}"


def test_invalid_values_shown_next_to_fields(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    panel.apply_size_preset("tiny")
    _type(qtbot, panel, "student.n_heads", "5")
    _type(qtbot, panel, "training.epochs", "abc")

    heads = panel.editors["student.n_heads"]
    epochs = panel.editors["training.epochs"]
    assert "5 does not divide d_model = 64" in heads.error
    assert heads.error_label.isVisibleTo(panel)
    assert "'abc' is not a whole number" in epochs.error
    assert not window.run_controls.run_button.isEnabled()
    tooltip = window.run_controls.run_button.toolTip()
    assert "Heads: 5 does not divide" in tooltip
    assert "Epochs: 'abc'" in tooltip

    _type(qtbot, panel, "student.n_heads", "4")
    _type(qtbot, panel, "training.epochs", "2")
    assert panel.errors == {}
    assert not heads.error_label.isVisibleTo(panel)
    assert window.run_controls.run_button.isEnabled()


def test_invalid_defaults_disable_run_at_start(qtbot, window):
    # The default teachers and tokenizer are Hub ids, missing from the tests' offline cache.
    panel = window.config_panel
    assert not panel.is_valid
    assert not window.run_controls.run_button.isEnabled()
    assert not window.run_action.isEnabled()
    assert "Teachers:" in window.run_controls.run_button.toolTip()
    assert "Presets ▸ offline demo" in panel.editors["distillation.teachers"].error
    window.start_run()  # Ctrl+R with the action disabled does nothing, but a caller may still start one
    title, text = window.last_message
    assert title == "The configuration is not valid"
    assert text.startswith("Teachers: ")
    assert "\nStudent tokenizer: " in text

    _use_offline_models(panel)
    assert window.run_controls.run_button.isEnabled()


def test_out_of_range_float_names_limit(qtbot, window):
    panel = window.config_panel
    _type(qtbot, panel, "distillation.alpha", "1.5")
    assert "out of range" in panel.editors["distillation.alpha"].error
    assert "<= 1.0" in panel.editors["distillation.alpha"].error


def test_fixed_weights_need_one_per_teacher(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    folder = str(packaged_minilm_folder())
    panel.teacher_list.set_teachers([folder, "minilm"])
    panel.editors["distillation.weighting"].set_value("fixed")
    assert panel.editors["distillation.fixed_weights"].widget.isEnabled()
    assert "2 teachers" in panel.editors["distillation.fixed_weights"].error
    assert f"{short_model_name(folder)}, minilm" in panel.weights_hint.text()  # as the teacher list names it

    _type(qtbot, panel, "distillation.fixed_weights", "0.7, 0.3")
    assert panel.errors == {}
    assert panel.config().distillation.fixed_weights == (0.7, 0.3)


def test_glue_folder_is_validated(qtbot, window, glue_dir, tmp_path):
    panel = window.config_panel
    _use_offline_models(panel)
    source = panel.editors["data.glue_dir"]
    source.folder_button.setChecked(True)
    assert "Choose the glue_data folder" in source.error

    source.folder_edit.setText(str(tmp_path))
    assert "has no SST-2/ folder" in source.error

    source.folder_edit.setText(str(glue_dir))
    assert source.error == ""
    panel.editors["task"].set_value("rte")
    assert panel.config().data.glue_dir == str(glue_dir)

    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_text("sentence\tlabel\n", encoding="utf-8")
    source.folder_edit.setText(str(tmp_path))
    panel.editors["task"].set_value("sst2")
    assert "dev.tsv is missing" in source.error


def test_size_presets_set_student_fields(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    for name, fields in SIZE_PRESETS.items():
        panel.apply_size_preset(name)
        config = panel.config().student
        assert config.d_model == fields["d_model"]
        assert config.n_layers == fields["n_layers"]
        assert config.n_heads == fields["n_heads"]
        assert config.max_seq_len == fields["max_seq_len"]
        assert panel.size_combo.currentText() == name

    _type(qtbot, panel, "student.d_model", "96")
    assert panel.size_combo.currentText() == "custom"


def test_parameter_count_follows_student(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    panel.apply_size_preset("tiny")
    panel.editors["student.tokenizer"].set_value("minilm")
    expected = count_student_parameters(panel.config().student, 30522, 2)
    qtbot.waitUntil(lambda: panel.parameter_label.text().startswith(f"{expected:,}"), timeout=5000)

    panel.editors["student.embedding"].set_value("learned")
    expected_learned = count_student_parameters(panel.config().student, 30522, 2)
    assert expected_learned > expected
    qtbot.waitUntil(lambda: panel.parameter_label.text().startswith(f"{expected_learned:,}"), timeout=5000)


def test_parameter_count_reads_tokenizer_folder(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    panel.apply_size_preset("tiny")
    panel.editors["student.tokenizer"].set_value(str(packaged_minilm_folder()))
    expected = count_student_parameters(panel.config().student, 30522, 2)

    qtbot.waitUntil(lambda: panel.parameter_label.text().startswith(f"{expected:,}"), timeout=30_000)


def test_bad_tokenizer_marked_at_its_field(qtbot, window, tmp_path):
    panel = window.config_panel
    _use_offline_models(panel)
    tokenizer = panel.editors["student.tokenizer"]
    tokenizer.set_value(str(tmp_path / "missing-tokenizer"))

    assert "does not exist or is not a folder" in tokenizer.error
    assert "vocab.json and merges.txt" in tokenizer.error  # the tokenizer files, not a model's config.json
    assert not window.run_controls.run_button.isEnabled()
    qtbot.waitUntil(lambda: "fix the student fields first" in panel.parameter_label.text(), timeout=5000)

    (tmp_path / "empty").mkdir()
    tokenizer.set_value(str(tmp_path / "empty"))
    assert "contains no tokenizer files" in tokenizer.error

    tokenizer.set_value("minilm")
    assert tokenizer.error == ""
    assert window.run_controls.run_button.isEnabled()


def test_student_too_large_for_memory_marked(qtbot, window, monkeypatch):
    monkeypatch.setattr("engine.student.available_memory", lambda device: 2 * 1024**3)
    panel = window.config_panel
    _use_offline_models(panel)
    _type(qtbot, panel, "student.d_model", "4096")
    _type(qtbot, panel, "student.n_layers", "8")

    error = panel.editors["student.d_model"].error
    assert "d_model 4096 with 8 layers has at least 1,61" in error
    assert "more than the 2.0 GiB free in RAM" in error
    assert not window.run_controls.run_button.isEnabled()

    _type(qtbot, panel, "student.d_model", "256")
    assert panel.editors["student.d_model"].error == ""
    assert window.run_controls.run_button.isEnabled()


def test_config_stores_folders_absolute_and_no_unused_weights(qtbot, window, tmp_path, monkeypatch):
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "vocab.txt").write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    panel = window.config_panel
    _use_offline_models(panel)
    panel.editors["student.tokenizer"].set_value("tok")
    panel.teacher_list.set_teachers([str(packaged_minilm_folder()), "minilm"])
    panel.editors["distillation.weighting"].set_value("fixed")
    _type(qtbot, panel, "distillation.fixed_weights", "0.9, 0.1")
    assert panel.config().distillation.fixed_weights == (0.9, 0.1)

    panel.editors["distillation.weighting"].set_value("confidence")
    config = panel.config()

    assert config.student.tokenizer == str(tokenizer)
    assert config.distillation.fixed_weights == ()
    assert panel.editors["distillation.fixed_weights"].raw()  # the typed weights stay in the field


def test_uncached_hub_models_marked_offline(qtbot, window):
    panel = window.config_panel
    panel.teacher_list.set_teachers(["gpt2", "minilm"])
    panel.editors["student.tokenizer"].set_value("gpt2")

    # tests/conftest.py sets HF_HUB_OFFLINE and an empty Hugging Face cache.
    assert "'openai-community/gpt2' (alias 'gpt2') is not in the local Hugging Face cache" in panel.editors["distillation.teachers"].error
    assert "'openai-community/gpt2' (alias 'gpt2') is not in the local Hugging Face cache" in panel.editors["student.tokenizer"].error
    assert "Check the spelling" not in panel.editors["student.tokenizer"].error  # an alias is not typed by hand

    panel.teacher_list.set_teachers(["gpt2", "distilbert", "roberta"])
    teachers_error = panel.editors["distillation.teachers"].error
    for hub_id in ("openai-community/gpt2", "distilbert/distilbert-base-uncased", "FacebookAI/roberta-base"):
        assert f"'{hub_id}'" in teachers_error  # all three at once, not one per attempt
    assert teachers_error.count("To download them") == 1
    assert not window.run_controls.run_button.isEnabled()

    _use_offline_models(panel)
    assert panel.errors == {}


def test_preset_menu_keeps_data_source(qtbot, window, glue_dir):
    panel = window.config_panel
    panel.editors["data.glue_dir"].set_value(str(glue_dir))
    window.preset_actions["offline-demo"].trigger()

    config = panel.config()
    preset = load_preset("offline-demo")
    assert config.distillation.teachers == preset.distillation.teachers
    assert config.data.train_limit == preset.data.train_limit
    assert config.student.tokenizer == "minilm"
    assert config.data.glue_dir == str(glue_dir)


def test_run_again_loads_stored_config(window):
    stored = RunConfig().with_overrides(
        {"task": "rte", "training.epochs": 7, "student.mixer": "spectral", "distillation.teachers": ("minilm",), "student.tokenizer": "minilm"}
    )
    window.load_config_from_run(stored.to_dict())
    assert window.config_panel.config() == stored


def test_rerun_name_not_restored(qtbot, store, settings_file, messages):
    first = MainWindow(store, WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    qtbot.addWidget(first)
    first.config_panel.editors["name"].set_value("baseline (from #4: alpha 0.5)")
    first.close()

    second = MainWindow(store, WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    qtbot.addWidget(second)

    # The new session has not loaded run #4, so the name would describe changes it cannot check.
    assert second.config_panel.value("name") in ("", None)


def test_state_remembered_across_windows(qtbot, store, settings_file, glue_dir, messages):
    first = MainWindow(store, WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    qtbot.addWidget(first)
    panel = first.config_panel
    panel.editors["data.glue_dir"].set_value(str(glue_dir))
    panel.teacher_list.add_custom("/models/my-teacher", "bert, hidden size 64", checked=False)
    panel.editors["name"].set_value("remembered run")
    panel.editors["student.pair_separator"].set_value(" [SEP]\n")
    first.live_view.tabs.setCurrentIndex(3)
    first.areas.setCurrentIndex(1)
    first.compare_view.attention_view.fit_colours_box.setChecked(True)
    first.resize(760, 520)
    first.show()
    size = first.size()
    first.close()

    second = MainWindow(store, WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    qtbot.addWidget(second)
    restored = second.config_panel
    assert restored.value("name") == "remembered run"
    assert restored.value("data.glue_dir") == str(glue_dir)
    assert restored.value("student.pair_separator") == " [SEP]\n"
    assert "/models/my-teacher" in restored.teacher_list.custom_specs()
    assert "/models/my-teacher" not in restored.teacher_list.teachers()
    assert restored.teacher_list.custom_descriptions()["/models/my-teacher"] == "bert, hidden size 64"
    assert second.live_view.tabs.currentIndex() == 3
    assert second.areas.currentIndex() == 1
    assert second.compare_view.attention_view.fit_colours_box.isChecked()
    assert not second.live_view.attention_view.fit_colours_box.isChecked()
    assert second.size() == size


def test_custom_teachers_of_earlier_versions_load(qtbot, store, settings_file, messages):
    import json

    # Earlier versions stored the added models as a list of names, without descriptions.
    QSettings(str(settings_file), QSettings.Format.IniFormat).setValue("config/custom_teachers", json.dumps(["/models/old-teacher"]))
    window = MainWindow(store, WorkbenchSettings(QSettings(str(settings_file), QSettings.Format.IniFormat)))
    qtbot.addWidget(window)

    assert window.config_panel.teacher_list.custom_descriptions() == {"/models/old-teacher": ""}


def test_every_invalid_field_is_marked_at_once(qtbot, window):
    panel = window.config_panel
    panel.editors["student.n_layers"].set_value(0)
    panel.editors["student.dropout"].set_value(2.0)

    errors = panel.validate()

    assert "student.n_layers" in errors
    assert "student.dropout" in errors


def test_narrow_window_clips_no_field(qtbot, window):
    panel = window.config_panel
    for toggle in panel.findChildren(QToolButton):
        if toggle.objectName() == "moreOptions":
            toggle.setChecked(True)
    window.resize(window.minimumSizeHint().width(), 700)
    window.main_splitter.setSizes([0, 10_000])  # the user drags the splitter as far left as it goes
    qtbot.wait(50)

    scroll = panel.findChild(QScrollArea)
    viewport_width = scroll.viewport().width()
    assert not scroll.horizontalScrollBar().isVisible()
    for path, editor in panel.editors.items():
        right_edge = editor.container.mapTo(scroll.widget(), editor.container.rect().topRight()).x()
        assert right_edge < viewport_width, f"{path} ends at x={right_edge}, the panel shows {viewport_width} px"


def test_run_summary_gives_first_sentence(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)
    panel.teacher_list.set_teachers(["gpt2", "distilbert", "roberta"])

    summary = window.run_controls.reason_label.text()
    assert summary == "Teachers: None of the 3 teachers can be used. See the field marked in red."
    assert "None of the 3 teachers can be used. The teacher" in panel.editors["distillation.teachers"].error  # the whole message

    _type(qtbot, panel, "training.epochs", "abc")
    assert window.run_controls.reason_label.text().endswith("(and 1 more; see the fields marked in red)")


def test_offline_hub_source_names_the_cache(qtbot, window, monkeypatch):
    # tests/conftest.py sets HF_HUB_OFFLINE, so Hub rows can only come from the local cache.
    source = window.config_panel.editors["data.glue_dir"]
    source.hub_button.setChecked(True)
    assert source.offline_note.isVisibleTo(window)
    assert source.offline_note.text().startswith("HF_HUB_OFFLINE is set, so the Hub rows come from the local datasets cache only.")

    source.folder_button.setChecked(True)
    assert not source.offline_note.isVisibleTo(window)

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    source.hub_button.setChecked(True)
    assert not source.offline_note.isVisibleTo(window)


def test_alpha_note_and_single_teacher_hint(qtbot, window):
    panel = window.config_panel
    _use_offline_models(panel)

    assert panel.weights_hint.text() == "With one teacher, its weight is 1 in every weighting mode, so the weighting changes nothing."
    _type(qtbot, panel, "distillation.alpha", "0")
    assert not panel.alpha_note.isHidden()
    assert panel.alpha_note.text().startswith("With alpha 0 the task loss has no weight")
    assert panel.is_valid  # a note, not an error: the run may start

    _type(qtbot, panel, "distillation.alpha", "0.5")
    assert panel.alpha_note.isHidden()
    _type(qtbot, panel, "distillation.alpha", "1")
    assert panel.alpha_note.text().startswith("With alpha 1 the distillation loss has no weight")
