"""The configuration panel: a form over ``RunConfig`` built from the engine's field metadata.

Validation is the engine's own: ``config_errors`` checks the typed values and every
``ConfigError`` is shown under the field its dotted ``field`` path names, all of them at once. Fields
that the panel does not place explicitly go to each section's "More options", so a field added to
the engine appears here without a GUI change.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.config import DataConfig, DistillationConfig, RunConfig, StudentConfig, TrainingConfig, alpha_warning, config_errors, iter_field_specs
from engine.devices import select_device
from engine.errors import ConfigError, DataError, HubUnreachableError, LampreiaError
from engine.events import CancellationToken
from engine.glue_data import validate_glue_dir
from engine.model_sources import absolute_if_local, check_cached_when_offline, short_model_name
from engine.student import check_student_fits, count_student_parameters
from engine.tasks import TASKS
from engine.teachers import check_teacher_sources
from engine.tokenization import KNOWN_VOCAB_SIZES, TOKENIZER_REQUIRED_FILES, check_tokenizer_folder, tokenizer_vocab_size
from workbench.background import BackgroundCall
from workbench.form_fields import DataSourceField, FieldEditor, TaskField, TextField, editor_for
from workbench.teacher_list import TeachersField

log = logging.getLogger(__name__)

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "student": StudentConfig,
    "distillation": DistillationConfig,
    "training": TrainingConfig,
}

# Fields shown in each section's main form, in this order; the rest go under "More options".
MAIN_FIELDS = {
    "data": ("train_limit", "dev_limit"),
    "student": ("d_model", "n_layers", "n_heads", "d_ff", "max_seq_len", "embedding", "mixer", "tokenizer"),
    "distillation": ("alpha", "weighting", "fixed_weights", "distill_loss"),
    "training": ("epochs", "batch_size", "learning_rate", "device", "seed"),
}
SECTION_TITLES = {"data": "Data", "student": "Student", "distillation": "Distillation", "training": "Training"}

# Student sizes: tiny is for quick checks on a CPU, paper is the method's d_model 256 × 4-layer student.
SIZE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": None, "max_seq_len": 64},
    "small": {"d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": None, "max_seq_len": 128},
    "paper": {"d_model": 256, "n_layers": 4, "n_heads": 8, "d_ff": None, "max_seq_len": 128},
}
CUSTOM_SIZE = "custom"

PARAMETER_COUNT_DELAY_MS = 150


# The default teachers and tokenizer are Hub ids, which a first start without internet lacks.
OFFLINE_PRESET_TIP = "The preset Presets ▸ offline demo chooses a teacher and a tokenizer that work offline."


def _reason(error: LampreiaError) -> str:
    if isinstance(error, ConfigError):
        return f"{error.reason} {error.hint}".strip()
    return str(error)


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Turn {"student.d_model": 64} into {"student": {"d_model": 64}}."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        target = nested
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested


class ConfigPanel(QWidget):
    """Form for one run's configuration; validates on every edit. Owned by the GUI thread.

    ``validity_changed(valid, reason)`` carries the first errors as text for the Run button's
    tooltip; ``values_changed`` fires on any edit.
    """

    validity_changed = Signal(bool, str)
    values_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editors: dict[str, FieldEditor] = {}
        self._errors: dict[str, str] = {}
        self._problem = ""
        self._loading = False
        self._vocab_sizes: dict[str, int] = dict(KNOWN_VOCAB_SIZES)
        self._vocab_lookups: dict[str, BackgroundCall] = {}
        self._vocab_failures: dict[str, str] = {}
        self._parameter_cache: dict[tuple, int] = {}
        # The checked teachers in order, so that fixed weights can follow a reordering.
        self._teacher_order: list[str] = []

        self._parameter_timer = QTimer(self)
        self._parameter_timer.setObjectName("workbench.parameter-count")
        self._parameter_timer.setSingleShot(True)
        self._parameter_timer.setInterval(PARAMETER_COUNT_DELAY_MS)
        self._parameter_timer.timeout.connect(self._update_parameter_count)

        self._build()
        for editor in self.editors.values():
            editor.changed.connect(partial(self._on_editor_changed, editor.path))
        self.set_config(RunConfig())

    # Building the form

    def _build(self) -> None:
        content = QWidget()
        layout = QVBoxLayout(content)
        self.general_error = QLabel()
        self.general_error.setObjectName("fieldError")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        layout.addWidget(self.general_error)
        layout.addWidget(self._build_run_group())
        layout.addWidget(self._build_teacher_group())
        for section in ("student", "distillation", "training"):
            layout.addWidget(self._build_section_group(section))
        layout.addStretch(1)

        # Narrow, each form row puts its field under its label instead of clipping it. The panel
        # keeps the width of that narrow layout, and a horizontal scroll bar is the fallback for a
        # field that grows wider later (an expanded "More options" box).
        for form in content.findChildren(QFormLayout):
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        scroll.setMinimumWidth(
            content.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 2 * scroll.frameWidth()
        )
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _add_row(self, form: QFormLayout, editor: FieldEditor) -> None:
        self.editors[editor.path] = editor
        label = QLabel(editor.label)
        label.setToolTip(editor.widget.toolTip())
        form.addRow(label, editor.container)

    def _field_editor(self, section: str, name: str) -> FieldEditor:
        specs = dict(iter_field_specs(SECTIONS[section]))
        return editor_for(f"{section}.{name}", specs[name])

    def _build_run_group(self) -> QGroupBox:
        group = QGroupBox("Task and data")
        form = QFormLayout(group)
        top = dict(iter_field_specs(RunConfig))
        self._add_row(form, TaskField("task", top["task"].metadata["label"], top["task"].metadata["help"]))
        name_meta = top["name"].metadata
        self._add_row(form, TextField("name", name_meta["label"], name_meta["help"], placeholder="empty: generated"))
        data_specs = dict(iter_field_specs(DataConfig))
        glue_meta = data_specs["glue_dir"].metadata
        self._add_row(form, DataSourceField("data.glue_dir", "Data source", glue_meta["help"]))
        for name in MAIN_FIELDS["data"]:
            self._add_row(form, self._field_editor("data", name))
        self._add_more_options(form, "data", exclude={"glue_dir"})
        return group

    def _build_teacher_group(self) -> QGroupBox:
        group = QGroupBox("Teachers")
        form = QFormLayout(group)
        meta = dict(iter_field_specs(DistillationConfig))["teachers"].metadata
        self.teachers_field = TeachersField("distillation.teachers", meta["label"], meta["help"])
        self.teacher_list = self.teachers_field.teacher_list
        self._add_row(form, self.teachers_field)
        for name in ("trust_remote_code", "extraction_batch_size"):
            self._add_row(form, self._field_editor("distillation", name))
        return group

    def _build_section_group(self, section: str) -> QGroupBox:
        group = QGroupBox(SECTION_TITLES[section])
        form = QFormLayout(group)
        if section == "student":
            self.size_combo = QComboBox()
            self.size_combo.addItems([CUSTOM_SIZE, *SIZE_PRESETS])
            self.size_combo.setToolTip("Sets d_model, layers, heads, FFN size and max sequence length together.")
            self.size_combo.textActivated.connect(self.apply_size_preset)
            form.addRow("Size preset", self.size_combo)
        for name in MAIN_FIELDS[section]:
            self._add_row(form, self._field_editor(section, name))
            if section == "distillation" and name == "alpha":
                # A valid α that leaves a loss without weight gets a note under the field, as the CLI prints one.
                self.alpha_note = QLabel()
                self.alpha_note.setObjectName("fieldHint")
                self.alpha_note.setWordWrap(True)
                self.alpha_note.hide()
                form.addRow("", self.alpha_note)
            if section == "distillation" and name == "fixed_weights":
                # Under the field it explains, not after the fields that follow it.
                self.weights_hint = QLabel()
                self.weights_hint.setObjectName("fieldHint")
                self.weights_hint.setWordWrap(True)
                form.addRow("", self.weights_hint)
        if section == "student":
            self.parameter_label = QLabel()
            self.parameter_label.setObjectName("fieldHint")
            self.parameter_label.setWordWrap(True)
            form.addRow("Parameters", self.parameter_label)
        exclude = {"teachers", "trust_remote_code", "extraction_batch_size"} if section == "distillation" else set()
        self._add_more_options(form, section, exclude)
        return group

    def _add_more_options(self, form: QFormLayout, section: str, exclude: set[str]) -> None:
        names = [n for n, _ in iter_field_specs(SECTIONS[section]) if n not in MAIN_FIELDS[section] and n not in exclude]
        if not names:
            return
        toggle = QToolButton()
        toggle.setText(f"More {SECTION_TITLES[section].lower()} options")
        toggle.setCheckable(True)
        toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toggle.setArrowType(Qt.ArrowType.RightArrow)
        toggle.setObjectName("moreOptions")
        box = QWidget()
        inner = QFormLayout(box)
        inner.setContentsMargins(0, 0, 0, 0)
        for name in names:
            self._add_row(inner, self._field_editor(section, name))
        box.hide()

        def show_options(expanded: bool) -> None:
            box.setVisible(expanded)
            toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)

        toggle.toggled.connect(show_options)
        form.addRow(toggle)
        form.addRow(box)

    # Values

    def raw_values(self) -> dict[str, Any]:
        """Return {dotted path: value as typed}; JSON-serialisable, used for QSettings."""
        return {path: editor.raw() for path, editor in self.editors.items()}

    def set_values(self, values: dict[str, Any]) -> None:
        """Fill the editors from {dotted path: value}; unknown paths are ignored."""
        self._loading = True
        try:
            for path, value in values.items():
                if path in self.editors:
                    self.editors[path].set_value(value)
        finally:
            self._loading = False
        self._after_change()

    def set_config(self, config: RunConfig | dict[str, Any]) -> None:
        if isinstance(config, dict):
            config = RunConfig.from_dict(config)
        self.set_values(config.flatten())

    def set_value(self, path: str, value: Any) -> None:
        self.set_values({path: value})

    def value(self, path: str) -> Any:
        return self.editors[path].raw()

    def config(self) -> RunConfig:
        """Return the validated config; raises ConfigError naming the first invalid field."""
        errors = self.validate()
        if errors:
            path, message = next(iter(errors.items()))
            raise ConfigError(path, message)
        nested = nest(self.raw_values())
        distillation, student = nested["distillation"], nested["student"]
        # Folders are stored absolute, as the CLI stores them, so a resume from elsewhere finds them.
        distillation["teachers"] = [absolute_if_local(spec) for spec in distillation["teachers"]]
        student["tokenizer"] = absolute_if_local(student["tokenizer"])
        if distillation["weighting"] != "fixed":
            # The field keeps what was typed for later, but a run without fixed weighting records none.
            distillation["fixed_weights"] = []
        return RunConfig.from_dict(nested)

    # Validation

    def validate(self) -> dict[str, str]:
        """Check every section, show each error under its field and return {path: message}."""
        nested = nest(self.raw_values())
        errors: dict[str, str] = {}
        for error in config_errors(nested):
            errors.setdefault(error.field, _reason(error))
        self._check_data_folder(nested, errors)
        self._check_model_sources(nested, errors)
        if not any(path.startswith(("student.", "training.device", "task")) for path in errors):
            self._check_student_memory(nested, errors)

        self._errors = errors
        self._show_errors(errors)
        return errors

    def _check_data_folder(self, nested: dict[str, Any], errors: dict[str, str]) -> None:
        folder = nested["data"]["glue_dir"]
        source: DataSourceField = self.editors["data.glue_dir"]
        if not source.uses_folder:
            return
        if not folder:
            errors.setdefault("data.glue_dir", "Choose the glue_data folder, or use the Hugging Face Hub.")
            return
        task = TASKS.get(nested["task"])
        if task is None:
            return
        try:
            validate_glue_dir(task, folder)
        except DataError as error:
            errors.setdefault("data.glue_dir", str(error))

    def _check_model_sources(self, nested: dict[str, Any], errors: dict[str, str]) -> None:
        """Mark teachers and a tokenizer that a run would reject before it is recorded.

        These are local folders without the files they need, and Hub ids missing from the local
        cache while an offline variable is set. The checks only look at files, so they are cheap
        enough for every edit.
        """
        try:
            check_teacher_sources(nested["distillation"].get("teachers") or ())
        except HubUnreachableError as error:
            errors.setdefault("distillation.teachers", f"{error} {OFFLINE_PRESET_TIP}")
        except LampreiaError as error:
            errors.setdefault("distillation.teachers", str(error))

        spec = str(nested["student"].get("tokenizer") or "")
        if not spec.strip():
            return
        try:
            check_tokenizer_folder(spec)
            check_cached_when_offline(spec, what="student tokenizer", required=TOKENIZER_REQUIRED_FILES)
        except LampreiaError as error:
            errors.setdefault("student.tokenizer", str(error))

    def _check_student_memory(self, nested: dict[str, Any], errors: dict[str, str]) -> None:
        """Mark a student whose weights and optimizer state alone exceed the free memory, as the run would."""
        try:
            device = select_device(TrainingConfig(**nested["training"]).device)
            if device.type != "cpu":
                # Reading a GPU's free memory creates its CUDA context, seconds at the window's
                # start; the run checks the GPU's memory itself before it is recorded.
                return
            check_student_fits(StudentConfig(**nested["student"]), TASKS[nested["task"]].num_labels, device)
        except ConfigError as error:
            # An unusable device is reported when the run starts, which names the installed torch build.
            if error.field == "student.d_model":
                errors.setdefault(error.field, _reason(error))

    def _show_errors(self, errors: dict[str, str]) -> None:
        for path, editor in self.editors.items():
            editor.set_error(errors.get(path))
        unplaced = {path: message for path, message in errors.items() if path not in self.editors}
        self.general_error.setText("\n".join(f"{path}: {message}" for path, message in unplaced.items()))
        self.general_error.setVisible(bool(unplaced))

        lines = []
        for path, message in errors.items():
            label = self.editors[path].label if path in self.editors else path
            lines.append(f"{label}: {message}")
        self._problem = "\n".join(lines)
        self.validity_changed.emit(not errors, self._problem)

    @property
    def errors(self) -> dict[str, str]:
        return dict(self._errors)

    @property
    def is_valid(self) -> bool:
        return not self._errors

    @property
    def problem(self) -> str:
        """The current errors, one "label: message" line each, as ``validity_changed`` sent them last."""
        return self._problem

    # Reactions to edits

    def _on_editor_changed(self, path: str) -> None:
        if self._loading:
            return
        if path == "distillation.trust_remote_code":
            self.teacher_list.trust_remote_code = bool(self.editors[path].raw())
        if path == "distillation.teachers":
            self._carry_weights_to_new_order()
        self._after_change()

    def _carry_weights_to_new_order(self) -> None:
        """Reorder the fixed weights with their teachers when the same teachers are dragged into a new order.

        Without this, a weight would silently pass to whichever teacher took its place.
        """
        before, after = self._teacher_order, self.teacher_list.teachers()
        self._teacher_order = after
        weights_editor = self.editors["distillation.fixed_weights"]
        weights = weights_editor.raw()
        if sorted(before) != sorted(after) or before == after or len(weights) != len(before):
            return
        weight_of = dict(zip(before, weights))
        self._loading = True  # one change, validated below by the caller
        try:
            weights_editor.set_value([weight_of[teacher] for teacher in after])
        finally:
            self._loading = False

    def _after_change(self) -> None:
        self._teacher_order = self.teacher_list.teachers()
        self.teacher_list.trust_remote_code = bool(self.editors["distillation.trust_remote_code"].raw())
        self.validate()
        self._sync_size_combo()
        self._sync_weight_hint()
        self._sync_alpha_note()
        self._parameter_timer.start()
        self.values_changed.emit()

    @Slot(str)
    def apply_size_preset(self, name: str) -> None:
        if name not in SIZE_PRESETS:
            return
        self.set_values({f"student.{key}": value for key, value in SIZE_PRESETS[name].items()})

    def _sync_size_combo(self) -> None:
        current = {key: self.editors[f"student.{key}"].raw() for key in SIZE_PRESETS["tiny"]}
        matched = CUSTOM_SIZE
        for name, preset in SIZE_PRESETS.items():
            if all((current[k] or None) == (None if v is None else str(v)) for k, v in preset.items()):
                matched = name
        self.size_combo.blockSignals(True)
        self.size_combo.setCurrentText(matched)
        self.size_combo.blockSignals(False)

    def _sync_weight_hint(self) -> None:
        fixed = self.editors["distillation.weighting"].raw() == "fixed"
        self.editors["distillation.fixed_weights"].widget.setEnabled(fixed)
        teachers = self.teacher_list.teachers()
        if len(teachers) == 1:
            self.weights_hint.setText("With one teacher, its weight is 1 in every weighting mode, so the weighting changes nothing.")
        elif fixed:
            names = ", ".join(short_model_name(spec) for spec in teachers)
            self.weights_hint.setText(f"One weight per teacher, in this order: {names or '(no teacher checked)'}.")
        else:
            self.weights_hint.setText("Fixed weights are used only with weighting = fixed.")

    def _sync_alpha_note(self) -> None:
        try:
            alpha = float(self.editors["distillation.alpha"].raw())
        except (TypeError, ValueError):
            alpha = None  # empty (the default) or not a number, which the field's error names
        warning = alpha_warning(alpha) if alpha is not None and "distillation.alpha" not in self._errors else None
        self.alpha_note.setText(warning or "")
        self.alpha_note.setVisible(warning is not None)

    # Live parameter count

    @Slot()
    def _update_parameter_count(self) -> None:
        if any(path.startswith("student.") for path in self._errors):
            self.parameter_label.setText("— (fix the student fields first)")
            return
        nested = nest(self.raw_values())
        student = StudentConfig(**nested["student"])
        failure = self._vocab_failures.get(student.tokenizer.strip().lower())
        if failure is not None:
            self.parameter_label.setText(f"unknown: {failure}")
            return
        vocab_size = self._vocab_size(student.tokenizer)
        if vocab_size is None:
            self.parameter_label.setText(f"… (reading the vocabulary of {student.tokenizer})")
            return
        task = TASKS[nested["task"]]
        key = (tuple(sorted(nested["student"].items())), vocab_size, task.num_labels)
        if key not in self._parameter_cache:
            self._parameter_cache[key] = count_student_parameters(student, vocab_size, task.num_labels)
        self.parameter_label.setText(f"{self._parameter_cache[key]:,} (projection heads, used only in training, excluded)")

    def _vocab_size(self, spec: str) -> int | None:
        """Return the tokenizer's vocabulary size, or None while it is being looked up off the GUI thread."""
        key = spec.strip().lower()
        if key in self._vocab_sizes:
            return self._vocab_sizes[key]
        if key not in self._vocab_lookups:
            cancel = CancellationToken()
            lookup = BackgroundCall(partial(tokenizer_vocab_size, spec, cancel), f"Reading the vocabulary of {spec!r}", self, cancel=cancel)
            lookup.succeeded.connect(partial(self._on_vocab_size, key))
            lookup.failed.connect(partial(self._on_vocab_failed, key))
            self._vocab_lookups[key] = lookup
            lookup.start()
        return None

    def _on_vocab_size(self, key: str, size: int) -> None:
        self._vocab_sizes[key] = int(size)
        self._vocab_lookups.pop(key, None)
        self._parameter_timer.start()

    def _on_vocab_failed(self, key: str, message: str) -> None:
        # Remembered, so that a tokenizer that cannot be loaded is not retried at every edit.
        self._vocab_lookups.pop(key, None)
        self._vocab_failures[key] = message
        self._parameter_timer.start()
