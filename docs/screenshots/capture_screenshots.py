"""Capture the README screenshots from real runs in the workbench window (offscreen, no display needed).

Two SST-2 runs are trained through the GUI with two teachers: MiniLM (pretrained, shipped with the
package) and a deliberately weak one, a randomly initialised 2-layer DistilBERT built from the real
DistilBERT tokenizer files. The weak teacher gives the confidence weighting something to tell
apart. The second run changes the mixer and α, so that the compare view has a config diff.

Usage (about 30 s on an idle 2-core CPU):

    LAMPREIA_TEST_DATA=/path/to/data python docs/screenshots/capture_screenshots.py

LAMPREIA_TEST_DATA must contain glue/SST-2/{train,dev}.tsv and tokenizers/distilbert-base-uncased/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPOSITORY = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY))

WINDOW_SIZE = (1600, 1000)
RUN_TIMEOUT_MS = 900_000


def parse_arguments() -> argparse.Namespace:
    data = os.environ.get("LAMPREIA_TEST_DATA", "")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=data, help="Folder with glue/ and tokenizers/ (default: $LAMPREIA_TEST_DATA).")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent), help="Folder for the PNG files.")
    parser.add_argument("--train-rows", type=int, default=2000, help="SST-2 training rows per run.")
    parser.add_argument("--epochs", type=int, default=2, help="Epochs per run.")
    parser.add_argument(
        "--compare-from", metavar="DATABASE",
        help="Skip training: capture only the compare views from the runs in this database (e.g. one an earlier capture left).",
    )
    return parser.parse_args()


def wait_ms(milliseconds: int) -> None:
    """Run the event loop for ``milliseconds``.

    Not QTest.qWait: under it the run's thread trained at 40 instead of about 2,400 rows per
    second here, most likely because PySide6 keeps the GIL while qWait sleeps between batches.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def wait_until(predicate, timeout_ms: int) -> None:
    waited = 0
    while not predicate():
        if waited > timeout_ms:
            raise TimeoutError("the window did not reach the expected state in time")
        wait_ms(100)
        waited += 100


def settle() -> None:
    """Let Qt lay out and paint pending changes before a grab."""
    wait_ms(300)


def main() -> int:
    arguments = parse_arguments()
    data = Path(arguments.data)
    if not (data / "glue" / "SST-2").is_dir() or not (data / "tokenizers").is_dir():
        print("Set LAMPREIA_TEST_DATA (or --data) to a folder with glue/SST-2/ and tokenizers/.", file=sys.stderr)
        return 2
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="lampreia-screenshots-"))
    os.environ["LAMPREIA_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("LAMPREIA_CACHE_DIR", str(work / "cache"))

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from engine.run_store import RunStore
    from tests.tiny_models import build_tiny_teacher
    from workbench.app import load_stylesheet, prepare_gui_thread
    from workbench.import_warmup import warm_run_imports
    from workbench.main_window import MainWindow
    from workbench.settings import WorkbenchSettings

    app = QApplication([sys.argv[0]])
    app.setStyleSheet(load_stylesheet())
    # Before this thread runs any torch operator (building the weak teacher runs some).
    prepare_gui_thread(app)

    if arguments.compare_from:
        store = RunStore(arguments.compare_from, recover_interrupted=False)
    else:
        store = RunStore()
    window = MainWindow(store, WorkbenchSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)))
    window.show_message = lambda title, text: print(f"{title}: {text}", file=sys.stderr)
    window.resize(*WINDOW_SIZE)
    window.show()
    warm_run_imports().join()

    names = []
    if not arguments.compare_from:
        weak_teacher = build_tiny_teacher("distilbert", data / "tokenizers", work / "weak-distilbert")
        names += train_two_runs(window, data, weak_teacher, arguments, out)
    names += capture_compare(window, store, out)

    window.close()
    store.close()
    # The runs, the weak teacher and the embedding cache were only needed for the pictures.
    shutil.rmtree(work, ignore_errors=True)
    for name in names:
        print(out / name)
    return 0


def train_two_runs(window, data: Path, weak_teacher: Path, arguments: argparse.Namespace, out: Path) -> list[str]:
    """Train the two runs through the window, capturing the first one while it trains."""
    from engine.events import Progress

    panel = window.config_panel
    panel.apply_size_preset("tiny")
    panel.set_values(
        {
            "task": "sst2",
            "name": "minilm+weak logphase",
            "data.glue_dir": str(data / "glue"),
            "data.train_limit": str(arguments.train_rows),
            "data.dev_limit": "400",
            "distillation.teachers": ["minilm", str(weak_teacher)],
            "student.tokenizer": "minilm",
            "student.max_seq_len": "64",
            "training.epochs": str(arguments.epochs),
            "training.batch_size": "32",
            "training.evals_per_epoch": "4",
            "training.learning_rate": "0.001",
            "training.device": "cpu",
        }
    )
    progress: list[Progress] = []
    window.controller.events_received.connect(lambda events: progress.extend(event for event in events if isinstance(event, Progress)))

    def training_fraction() -> float:
        latest = next((p for p in reversed(progress) if p.phase == "training"), None)
        return latest.done / latest.total if latest and latest.total else 0.0

    # Run 1: the main window and the attention map while it trains.
    window.start_run()
    wait_until(lambda: training_fraction() >= 0.6, RUN_TIMEOUT_MS)
    wait_until(lambda: window.live_view.attention_view.tokens() != (), RUN_TIMEOUT_MS)
    window.live_view.tabs.setCurrentIndex(0)
    settle()
    window.grab().save(str(out / "main-window-during-run.png"))
    window.live_view.tabs.setCurrentWidget(window.live_view.attention_view)
    window.live_view.attention_view.select(1, 0)
    settle()
    window.grab().save(str(out / "attention-map.png"))
    wait_until(lambda: not window.controller.is_running, RUN_TIMEOUT_MS)

    # Run 2: same data and teachers, softmax mixer and α 0.5.
    panel.set_values({"name": "minilm+weak softmax α0.5", "student.mixer": "softmax", "distillation.alpha": "0.5"})
    window.start_run()
    wait_until(lambda: window.controller.is_running, 5000)
    wait_until(lambda: not window.controller.is_running, RUN_TIMEOUT_MS)
    return ["main-window-during-run.png", "attention-map.png"]


def capture_compare(window, store, out: Path) -> list[str]:
    """Select the newest finished runs in the history and capture the compare view's curves and config diff.

    At most as many runs as the compare view shows; all newest runs when none has finished.
    """
    from workbench.compare_view import MAX_COMPARED_RUNS

    window.areas.setCurrentIndex(1)
    window.history.refresh()
    runs = store.list_runs(statuses=["finished"]) or store.list_runs()
    run_ids = [run.id for run in runs[:MAX_COMPARED_RUNS]]
    if not run_ids:
        raise SystemExit("The run database has no runs to compare.")
    window.history.select_runs(run_ids)
    window.history_splitter.setSizes([230, 670])
    wait_until(lambda: len(window.compare_view.runs) == len(run_ids), 5000)
    wait_until(lambda: window.config_panel.parameter_label.text() != "", 5000)

    compare = window.compare_view
    compare.tabs.setCurrentWidget(compare.loss_plot)
    settle()
    window.grab().save(str(out / "compare-view.png"))
    compare.tabs.setCurrentWidget(compare.metric_plot)
    settle()
    window.grab().save(str(out / "compare-dev-metric.png"))
    compare.tabs.setCurrentWidget(compare.diff_table)
    settle()
    window.grab().save(str(out / "compare-config-diff.png"))
    return ["compare-view.png", "compare-dev-metric.png", "compare-config-diff.png"]


if __name__ == "__main__":
    sys.exit(main())
