"""The main window: assembles the panels, menus and status bar, and routes run events between them.

Each panel owns one concern; this class only wires them. Run events reach it as signals from the
``RunController``, whose worker runs the engine on its own thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.config import RunConfig, list_presets, load_preset, preset_description
from engine.devices import describe_device, select_device
from engine.errors import LampreiaError, StoreError
from engine.events import Event, RunFailed, RunFinished, RunStarted
from engine.logs import log_file_path
from engine.paths import safe_file_name
from engine.run_comparison import is_rerun_name, rerun_name, rerun_origin
from engine.run_store import RunRecord, RunStore
from workbench.compare_view import CompareView
from workbench.compute_threads import run_thread_count
from workbench.config_panel import ConfigPanel
from workbench.curve_plot import CurvePlot
from workbench.history_panel import HistoryPanel
from workbench.live_view import LiveView
from workbench.plot_style import configure_pyqtgraph, export_plot_png
from workbench.run_controls import RunControls
from workbench.run_worker import RunController
from workbench.save_dialog import ask_save_path
from workbench.settings import WorkbenchSettings

log = logging.getLogger(__name__)

READ_ONLY_REASON = (
    "This run database is read-only here (this user cannot write it or its folder): its runs can be browsed, "
    "compared and exported, but not trained, resumed or changed. To train, open a writable database: "
    "lampreia gui --db FILE, or a copy of this one."
)


class MainWindow(QMainWindow):
    """The workbench window. Owned by the GUI thread.

    Message boxes go through ``show_message`` and ``confirm_close_during_run``, and file dialogs
    through ``choose_save_path``, so that tests can replace them.
    """

    def __init__(self, store: RunStore, settings: WorkbenchSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.store = store
        self.settings = settings or WorkbenchSettings()
        self.controller = RunController(store, self)
        self.last_message: tuple[str, str] | None = None
        self._closing_after_run = False
        # The run id of a resume in progress, so that a rejected resume is not reported as a failed run.
        self._resuming: int | None = None
        # Whether the active run was recorded (RunStarted), so that a run stopped before gets its own message.
        self._run_recorded = False
        self._interrupted = False
        self._config_valid = True
        self._config_problem = ""
        self._active_run_name = ""
        # The stored run whose settings "Run again" loaded, the run its re-run name starts from, and
        # the name loaded with the settings.
        self._rerun_source: tuple[RunRecord, RunRecord | None, str] | None = None
        self._following_rerun_name = False
        self.setWindowTitle("Lampreia Workbench — read-only database" if store.read_only else "Lampreia Workbench")

        self._build_panels()
        self._build_menus()
        self._build_status_bar()
        self._connect()
        self._restore_state()
        if store.read_only:
            # Nothing can be trained here, so the window opens on what it can show.
            self.live_view.progress.title_label.setText("No runs can start here: this run database is read-only.")
            self.areas.setCurrentWidget(self.history_splitter)
        self.history.refresh()
        self._update_run_controls()

    # Construction

    def _build_panels(self) -> None:
        self.config_panel = ConfigPanel()
        self.run_controls = RunControls()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(4, 4, 4, 4)
        left_layout.addWidget(self.config_panel, 1)
        left_layout.addWidget(self.run_controls)

        self.live_view = LiveView()
        self.history = HistoryPanel(self.store)
        self.compare_view = CompareView(self.store)
        self.history_splitter = QSplitter(Qt.Orientation.Vertical)
        self.history_splitter.addWidget(self.history)
        self.history_splitter.addWidget(self.compare_view)
        self.history_splitter.setStretchFactor(1, 2)
        # Dragged to the top, the run table would vanish. Its minimum height keeps rows in view.
        self.history_splitter.setCollapsible(0, False)

        self.areas = QTabWidget()
        self.areas.addTab(self.live_view, "Live training")
        self.areas.addTab(self.history_splitter, "History and compare")

        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.addWidget(left)
        self.main_splitter.addWidget(self.areas)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setSizes([480, 1020])
        # Collapsed, the settings panel would take the Run and Stop buttons with it.
        self.main_splitter.setCollapsible(0, False)
        self.setCentralWidget(self.main_splitter)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.export_png_action = self._action(file_menu, "Export current plot as PNG…", self.export_current_plot)
        self.export_csv_action = self._action(file_menu, "Export compared curves as CSV…", self.compare_view.export_csv)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence(QKeySequence.StandardKey.Quit))

        presets_menu = self.menuBar().addMenu("&Presets")
        self.preset_actions: dict[str, QAction] = {}
        for name in list_presets():
            action = self._action(presets_menu, name.replace("-", " "), lambda _checked=False, n=name: self.apply_preset(n))
            action.setStatusTip(preset_description(name))
            action.setToolTip(preset_description(name))
            self.preset_actions[name] = action
        presets_menu.setToolTipsVisible(True)

        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action(run_menu, "Run", self.start_run, QKeySequence("Ctrl+R"))
        self.stop_action = self._action(run_menu, "Stop", self.stop_run, QKeySequence("Ctrl+."))
        run_menu.addSeparator()
        run_menu.addAction(self.history.resume_action)
        run_menu.addAction(self.history.run_again_action)
        run_menu.addAction(self.history.predict_action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.history.refresh_action)
        self._action(view_menu, "Live training", lambda: self.areas.setCurrentIndex(0), QKeySequence("Ctrl+1"))
        self._action(view_menu, "History and compare", lambda: self.areas.setCurrentIndex(1), QKeySequence("Ctrl+2"))

        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "About Lampreia Workbench", self._show_about)

    def _action(self, menu, text: str, slot, shortcut: QKeySequence | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_status_bar(self) -> None:
        try:
            device = describe_device(select_device("auto"), threads=run_thread_count())
        except LampreiaError as error:
            device = f"unavailable ({error})"
        self.device_label = QLabel(f"Device: {device}")
        self.device_label.setToolTip("The device that device = auto selects: the first CUDA GPU when there is one, else the CPU.")
        if self.store.read_only:
            self.database_label = QLabel(f"Database (read-only): {self.store.path}")
            self.database_label.setToolTip(f"{READ_ONLY_REASON}\nLog file: {log_file_path()}")
        else:
            self.database_label = QLabel(f"Database: {self.store.path}")
            self.database_label.setToolTip(f"Run database. Log file: {log_file_path()}")
        self.database_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addPermanentWidget(self.device_label)
        self.statusBar().addPermanentWidget(self.database_label)

    def _connect(self) -> None:
        self.config_panel.validity_changed.connect(self._on_validity_changed)
        # The panel checked its first values before this connection, so their result is read here.
        self._on_validity_changed(self.config_panel.is_valid, self.config_panel.problem)
        self.config_panel.values_changed.connect(self._sync_probe_to_attention)
        self.config_panel.values_changed.connect(self._follow_rerun_name)
        self.live_view.attention_view.probe_edited.connect(lambda text: self.config_panel.set_value("training.attention_probe", text))
        self.run_controls.run_clicked.connect(self.start_run)
        self.run_controls.stop_clicked.connect(self.stop_run)

        self.controller.events_received.connect(self.live_view.enqueue_all)
        self.controller.events_received.connect(self._on_events)
        self.controller.running_changed.connect(self._on_running_changed)
        self.controller.run_ended.connect(self._on_run_ended)

        self.history.selection_changed.connect(self.compare_view.show_run_ids)
        self.history.run_again_requested.connect(self.run_again)
        self.history.resume_requested.connect(self.resume_run)
        self.history.export_requested.connect(self.compare_view.export_csv)
        self.history.predict_requested.connect(self.open_predictions)

        self._sync_probe_to_attention()

    # Run control

    @Slot()
    def start_run(self) -> None:
        if self.controller.is_running:
            return
        if self.store.read_only:
            self.show_message("Cannot start a run", READ_ONLY_REASON)
            return
        if not self.config_panel.is_valid:
            # Every marked field by its label, as the Run button's tooltip lists them.
            self.show_message("The configuration is not valid", self.config_panel.problem)
            return
        try:
            config = self.config_panel.config()
        except LampreiaError as error:
            self.show_message("The configuration is not valid", str(error))
            return
        if self._rerun_source is not None and config.name == self._rerun_source[2]:
            # As `lampreia run --from-run`: the source's name would describe settings since changed.
            # The source stays until other settings are loaded, so a second run is named after it too.
            source, origin, _name = self._rerun_source
            config = config.with_overrides({"name": rerun_name(source, config.to_dict(), origin)})
        self._remember_config()
        self.live_view.begin_run(config.task)
        self.areas.setCurrentWidget(self.live_view)
        self._resuming = None
        self._run_recorded = False
        self.controller.start(config)

    @Slot()
    def stop_run(self) -> None:
        if self.controller.is_running:
            self.controller.stop()
            self.live_view.progress.show_stopping()
            self.statusBar().showMessage("Stopping the run …")
            self._update_run_controls()

    @Slot(int)
    def resume_run(self, run_id: int) -> None:
        if self.controller.is_running:
            self.show_message("A run is active", "Stop the active run or wait for it to end, then resume.")
            return
        if self.store.read_only:
            self.show_message(f"Cannot resume run #{run_id}", READ_ONLY_REASON)
            return
        try:
            record = self.store.get_run(run_id)
            series = self.store.metric_series(run_id)
        except StoreError as error:
            self.show_message(f"Cannot resume run #{run_id}", str(error))
            return
        self.live_view.begin_run(record.task, resume_of=run_id)
        self.live_view.load_stored_curves(series, up_to_step=record.checkpoint_step)
        self.areas.setCurrentWidget(self.live_view)
        self._resuming = run_id
        self._run_recorded = False
        self.controller.resume(run_id)

    def shutdown(self) -> None:
        """Stop an active run and wait for its thread (application exit)."""
        self.controller.shutdown()

    @Slot(object)
    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, (RunStarted, RunFinished, RunFailed)):
                self._on_run_event(event)

    def _on_run_event(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_recorded = True
            self._active_run_name = event.name
            self.live_view.attention_view.set_run_probe(event.config.get("training", {}).get("attention_probe"))
            self.device_label.setText(f"Device: {event.device}")
            self.statusBar().showMessage(f"Run #{event.run_id} ({event.name}) started")
            self.history.refresh()
        elif isinstance(event, RunFinished):
            self.statusBar().showMessage(f"Run #{event.run_id} {event.status}")
        elif isinstance(event, RunFailed):
            self._report_failure(event)

    def _report_failure(self, event: RunFailed) -> None:
        log_path = log_file_path()
        if event.run_id is not None:
            title = f"Run #{event.run_id} failed"
            log.error("%s: %s", title, event.message)
            # An unexpected error's message names the log file already.
            details = "" if str(log_path) in event.message else f" Details are in the log: {log_path}"
            text = f"{event.message}\n\nThe run is stored as failed with this reason.{self._resume_note(event.run_id)}{details}"
        elif self._resuming is not None:
            # Rejected before the run was claimed: the stored run did not change.
            title = f"Run #{self._resuming} was not resumed"
            log.warning("%s: %s", title, event.message)
            text = f"{event.message}\n\nThe stored run is unchanged. Details are in the log: {log_path}"
        else:
            title = "The run did not start"
            log.warning("%s: %s", title, event.message)
            text = f"{event.message}\n\nNo run was recorded. Details are in the log: {log_path}"
        self.statusBar().showMessage(title)
        self.show_message(title, text)

    def _resume_note(self, run_id: int) -> str:
        """Return how to continue a failed run that has a checkpoint, or "" without one."""
        try:
            step = self.store.get_run(run_id).checkpoint_step
        except StoreError:
            return ""
        if step is None:
            return ""
        return f" Once the cause is fixed, Resume in the history continues it from its checkpoint at step {step}."

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        self.history.set_run_active(running)
        self._update_run_controls()

    @Slot(str)
    def _on_run_ended(self, status: str) -> None:
        if status == "cancelled" and not self._run_recorded:
            self.statusBar().showMessage("Stopped before the run was recorded; nothing was stored.")
        self.live_view.end_run()
        self.history.refresh()
        self.compare_view.show_run_ids(self.history.selected_ids())
        self._update_run_controls()
        if self._closing_after_run:
            self.close()

    @Slot(bool, str)
    def _on_validity_changed(self, valid: bool, reason: str) -> None:
        self._config_valid = valid
        self._config_problem = reason
        self._update_run_controls()

    def _update_run_controls(self) -> None:
        running = self.controller.is_running
        stopping = self.controller.is_stopping
        unavailable = READ_ONLY_REASON if self.store.read_only else ""
        self.run_controls.set_state(valid=self._config_valid, reason=self._config_problem, running=running, stopping=stopping, unavailable=unavailable)
        self.run_action.setEnabled(self._config_valid and not running and not unavailable)
        # Menus show status tips, not tooltips, in the status bar.
        self.run_action.setStatusTip(unavailable or self.run_controls.run_button.toolTip())
        self.stop_action.setEnabled(running and not stopping)

    # Configuration

    def apply_preset(self, name: str) -> None:
        """Load a preset; the data source and device stay as chosen, because presets do not set them."""
        keep = {path: self.config_panel.value(path) for path in ("data.glue_dir", "training.device")}
        try:
            config = load_preset(name)
        except LampreiaError as error:
            self.show_message(f"Cannot load the preset {name}", str(error))
            return
        self.config_panel.set_config(config)
        self.config_panel.set_values(keep)
        self._rerun_source = None
        self.statusBar().showMessage(f"Loaded the preset '{name}': {preset_description(name)}", 10_000)

    @Slot(int)
    def run_again(self, run_id: int) -> None:
        """Load a stored run's settings; a run started from them is named after it and what changed."""
        try:
            record = self.store.get_run(run_id)
        except StoreError as error:
            self.show_message(f"Cannot load the settings of run #{run_id}", str(error))
            return
        if self.load_config_from_run(record.config):
            origin = rerun_origin(self.store, record)
            name = rerun_name(record, RunConfig.from_dict(record.config).to_dict(), origin)
            self.config_panel.set_values({"name": name})
            self._rerun_source = (record, origin, name)
            self.statusBar().showMessage(
                f"Loaded the settings of run #{record.id}. Press Run to train them again; the settings you change are added to the run's name.",
                10_000,
            )

    @Slot()
    def _follow_rerun_name(self) -> None:
        """Keep the name that Run again gave in step with the settings, until the user types another name."""
        if self._rerun_source is None or self._following_rerun_name:
            return
        source, origin, name = self._rerun_source
        if self.config_panel.value("name") != name or not self.config_panel.is_valid:
            return
        try:
            config = self.config_panel.config()
        except LampreiaError:
            return
        updated = rerun_name(source, config.to_dict(), origin)
        if updated == name:
            return
        self._rerun_source = (source, origin, updated)
        self._following_rerun_name = True
        try:
            self.config_panel.set_values({"name": updated})
        finally:
            self._following_rerun_name = False

    def load_config_from_run(self, config: dict) -> bool:
        """Load a stored configuration into the panel; return whether it could be loaded."""
        try:
            self.config_panel.set_config(RunConfig.from_dict(config))
        except LampreiaError as error:
            self.show_message("Cannot load this run's configuration", str(error))
            return False
        self._rerun_source = None
        self.statusBar().showMessage("Loaded the stored configuration; press Run to train it again.", 10_000)
        return True

    def _sync_probe_to_attention(self) -> None:
        self.live_view.attention_view.set_probe_text(str(self.config_panel.value("training.attention_probe")))

    def _remember_config(self) -> None:
        self.settings.set_config_values(self.config_panel.raw_values())
        self.settings.set_custom_teachers(self.config_panel.teacher_list.custom_descriptions())

    # Export

    @Slot()
    def export_current_plot(self) -> Path | None:
        if self.areas.currentWidget() is not self.live_view:
            return self.compare_view.export_png()
        page = self.live_view.tabs.currentWidget()
        plot_widget = page.plot_widget if isinstance(page, CurvePlot) else self.live_view.attention_view.plot_widget
        tab = self.live_view.tabs.tabText(self.live_view.tabs.currentIndex())
        suggested = safe_file_name(f"{self._active_run_name or 'run'}-{tab}", fallback="plot") + ".png"
        path = self.choose_save_path("Export plot as PNG", suggested, "PNG images (*.png)")
        if not path:
            return None
        try:
            return export_plot_png(plot_widget, path)
        except OSError as error:
            self.show_message("Export failed", f"Could not write {path}: {error.strerror or error}. Choose another folder.")
            return None

    # Remembered state

    def _restore_state(self) -> None:
        teacher_list = self.config_panel.teacher_list
        for spec, description in self.settings.custom_teachers().items():
            teacher_list.add_custom(spec, description, checked=False)
        values = self.settings.config_values() or {}
        if is_rerun_name(str(values.get("name") or "")):
            # "baseline (from #4: …)" lists the changes from run #4, which this session has not
            # loaded, so a run started with the name would claim a source it may no longer match.
            values["name"] = ""
        if values:
            self.config_panel.set_values(values)

        geometry = self.settings.byte_array("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1500, 950)
        for key, splitter in (("window/main_splitter", self.main_splitter), ("window/history_splitter", self.history_splitter)):
            state = self.settings.byte_array(key)
            if state is not None:
                splitter.restoreState(state)
        for key, tabs in self._tab_widgets().items():
            index = self.settings.int_value(key, tabs.currentIndex())
            if 0 <= index < tabs.count():
                tabs.setCurrentIndex(index)
        for key, box in self._check_boxes().items():
            box.setChecked(bool(self.settings.int_value(key, int(box.isChecked()))))

    def _tab_widgets(self) -> dict[str, QTabWidget]:
        return {
            "view/area": self.areas,
            "view/live_plot": self.live_view.tabs,
            "view/compare_plot": self.compare_view.tabs,
        }

    def _check_boxes(self) -> dict[str, QCheckBox]:
        return {
            "view/live_fit_attention_colours": self.live_view.attention_view.fit_colours_box,
            "view/compare_fit_attention_colours": self.compare_view.attention_view.fit_colours_box,
            "view/compare_pool_seeds": self.compare_view.pool_seeds_box,
        }

    def _save_state(self) -> None:
        self._remember_config()
        self.settings.set_byte_array("window/geometry", self.saveGeometry())
        self.settings.set_byte_array("window/main_splitter", self.main_splitter.saveState())
        self.settings.set_byte_array("window/history_splitter", self.history_splitter.saveState())
        for key, tabs in self._tab_widgets().items():
            self.settings.set_int_value(key, tabs.currentIndex())
        for key, box in self._check_boxes().items():
            self.settings.set_int_value(key, int(box.isChecked()))
        self.settings.sync()

    # Closing

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.controller.is_running:
            # The window stays open (and responsive) until the worker thread has ended;
            # _on_run_ended then closes it again.
            event.ignore()
            if self._closing_after_run:
                return
            if not self._interrupted and not self.confirm_close_during_run():
                return
            self._closing_after_run = True
            self.stop_run()
            self.statusBar().showMessage("Stopping the run; the window closes when it has stopped …")
            return
        self._save_state()
        event.accept()

    def close_on_interrupt(self) -> None:
        """Close the window for Ctrl-C in the terminal that started it, stopping an active run without the confirmation dialog."""
        log.info("Interrupted (SIGINT): closing the window%s", "; stopping the active run first" if self.controller.is_running else "")
        self._interrupted = True
        self.close()

    # Dialogs, replaceable in tests

    def confirm_close_during_run(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Stop the run?",
            "A run is active. Stop it and close the window? Everything logged so far is kept, and the run is stored as cancelled.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    @Slot(int)
    def open_predictions(self, run_id: int) -> QDialog | None:
        """Open the Predictions dialog of a run; it stays owned by the window, so a running prediction outlives its closing."""
        # Imported here: it loads the student's modules, which the window does not need to start.
        from engine.prediction import find_checkpoint
        from workbench.prediction_dialog import PredictionDialog

        try:
            record = self.store.get_run(run_id)
            find_checkpoint(self.store, run_id, "best")
        except LampreiaError as best_problem:
            # With the best checkpoint deleted, the dialog can still predict with the last one.
            try:
                find_checkpoint(self.store, run_id, "last")
            except LampreiaError:
                self.show_message("Cannot predict", str(best_problem))
                return None
        dialog = PredictionDialog(self.store, record, self)
        dialog.open()
        return dialog

    def show_message(self, title: str, text: str) -> None:
        """Show a non-blocking warning; the latest one stays in ``last_message``."""
        self.last_message = (title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()

    def choose_save_path(self, caption: str, suggested_name: str, file_filter: str) -> str:
        return ask_save_path(self, caption, suggested_name, file_filter)

    def _show_about(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "About Lampreia Workbench",
            "Lampreia Workbench: multi-teacher knowledge distillation into spectral-attention students.\n\n"
            f"Run database: {self.store.path}\nLog file: {log_file_path()}",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
