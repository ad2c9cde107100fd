#!/usr/bin/env python3
"""The GUI costs nothing: training throughput with the workbench attached over the same run headless.

Each repetition runs the same SST-2 distillation four times, interleaved, each in a fresh
process: headless through ``run_distillation`` on the main thread, and three times through the
workbench's main window (offscreen Qt, live plots on, the run on its QThread, set up as
`lampreia gui` sets it up). Throughput is training samples per second of the training phase, from
the trainer's own step timings (evaluations excluded). The window is shown and left to paint for
a second before Run is pressed.

The first windowed run gives the throughput figure. The second measures stalls. From the press
of Run until the run ends, a 10 ms QTimer records every gap between its ticks. The largest gap
minus the interval is the worst stall of the GUI event loop, reported with the run phase it fell
in. That timer wakes the GUI thread a hundred times a second, which a user's window does not
do, so its run does not enter the throughput figure (its speed is printed beside it). The GUI
thread's CPU time over the run's wall time is printed per run as a diagnostic. While a stall
lasts longer than the 100 ms goal, faulthandler's watchdog thread writes every thread's Python
stack. That thread needs no GIL, so it writes even while another thread holds it, and the stacks
are printed with the stall.

Runs in separate processes differ by 10-30% on this kind of machine, more than the effect
measured, so a third windowed run compares the two states within one run: its GUI thread
alternates between working as usual for half a second and sleeping for half a second (no event
processing, no redraws, as if no window were there). The trainer's step timings, taken on the run
thread as the steps happen, are split by state, and each working half is compared with the mean of
the sleeping halves beside it. Step and progress events of a sleeping half are not passed to the
window (the other events are), so a working half carries the GUI work of its own steps only. A
fourth windowed run, the control, marks the same turns on the clock without sleeping. Both of its
states are alike, so its median shows how far the split alone moves the figure. On a 2-core VM the
control's per-run medians ranged from 0.87 to 1.09, and its median over five runs was 1.02.

The in-run figure and the control's median are printed with 95% bootstrap intervals of their
medians over the halves. ``--turns-only --rows N`` runs only those two, with longer runs, for a
narrower interval.

``--by-part`` looks for what a windowed process pays that the in-run figure cannot see, because
it is there while the GUI thread sleeps too. It adds the workbench's parts one at a time, each
variant a fresh process: headless; headless with the workbench's modules imported, a QApplication
and the start-up objects frozen (training still on the main thread); the run on its QThread
through the run controller, with the GUI thread's OpenMP limit and garbage-collection policy, but
no window; and the full window. Each variant's speed over the headless run of its repetition is
printed, median of the repetitions.

    python bench/gui_overhead.py [--quick] [--data DIR] [--threads N] [--repeats N] [--rows N] [--turns-only | --by-part]
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_common_arguments,
    add_data_argument,
    apply_threads,
    data_folder,
    describe_environment,
    detail,
    isolated_user_folders,
    median,
    median_interval,
    summary,
)

TICK_MS = 10
HALF_TURN_S = 0.5
HEADLESS, WINDOWED, STALL_PROBE = "headless", "windowed", "windowed with stall timer"
TURNS, TURNS_CONTROL = "windowed in turns", "windowed in turns, control"
QT_LOADED, NO_WINDOW = "headless, Qt loaded", "run controller, no window"
SLOWER_REDRAWS = "windowed, redraws every 1 s"
VARIANTS = (HEADLESS, WINDOWED, STALL_PROBE, TURNS, TURNS_CONTROL)
PARTS = (HEADLESS, QT_LOADED, NO_WINDOW, WINDOWED)
INTERVALS = (HEADLESS, WINDOWED, SLOWER_REDRAWS)
# The workbench's redraw and event-batch intervals, doubled, for the --intervals comparison.
SLOWER_REFRESH_MS, SLOWER_BATCH_S = 1000, 0.5
# Training rows of the full benchmark: two epochs of 4,000 rows train for about 7 s here, long
# enough that a run's speed varies less than the effect measured.
TRAIN_ROWS = 4000
SETTLE_MS = 1000
# A stall longer than this gets every thread's stack written while it lasts (the goal's limit).
STALL_LIMIT_MS = 100
STACKS_KEPT_CHARS = 20_000


def make_config(data: Path, quick: bool, seed: int, rows: int = TRAIN_ROWS):
    from engine.config import RunConfig

    student = {"tokenizer": "minilm", "d_model": 64 if quick else 128, "n_layers": 2, "n_heads": 4, "max_seq_len": 64}
    return RunConfig.from_dict(
        {
            "task": "sst2",
            "data": {"glue_dir": str(data / "glue"), "train_limit": 256 if quick else rows, "dev_limit": 100 if quick else 400},
            "student": student,
            "distillation": {"teachers": ["minilm"]},
            "training": {"epochs": 1 if quick else 2, "batch_size": 32, "evals_per_epoch": 2, "device": "cpu", "seed": seed},
        }
    )


class StepSpeed:
    """Event sink that adds up the trainer's own step timings, measured on its thread.

    Speeds come from ``StepLogged`` (samples per second over ``window_seconds`` of training), so
    the queued delivery of events to the GUI thread does not shift the measurement.
    """

    def __init__(self) -> None:
        self.samples = 0.0
        self.seconds = 0.0

    def __call__(self, event: object) -> None:
        from engine.events import StepLogged

        if isinstance(event, StepLogged):
            self.samples += event.samples_per_second * event.window_seconds
            self.seconds += event.window_seconds

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


class StallWatch:
    """Write every thread's Python stack to a file while the GUI thread is stalled.

    Each tick of the stall timer re-arms ``faulthandler.dump_traceback_later``. Its watchdog is a
    C thread that takes no GIL, so it writes the stacks even while another thread holds the GIL,
    the case the stall timer alone cannot explain. The stack of the thread that held the GIL, or
    of the GUI thread's own slow slot, shows where the time went.
    """

    def __init__(self, path: Path, limit_ms: float = STALL_LIMIT_MS) -> None:
        self.path = path
        self.limit_s = limit_ms / 1000
        self.file = open(path, "w+", encoding="utf-8")

    def arm(self, interval_s: float = 0.0) -> None:
        """Write the stacks unless ``arm`` or ``disarm`` is called again within interval + limit."""
        faulthandler.dump_traceback_later(interval_s + self.limit_s, repeat=False, file=self.file)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()

    def stacks(self) -> str:
        """Return the stacks written so far (the first ``STACKS_KEPT_CHARS``), '' when no stall was long enough."""
        self.disarm()
        self.file.flush()
        return self.path.read_text(encoding="utf-8", errors="replace")[:STACKS_KEPT_CHARS]

    def close(self) -> None:
        self.disarm()
        self.file.close()


def headless_run(config, scratch: Path) -> float:
    """Return training samples/s of a run on this thread, without Qt."""
    from engine.run_store import RunStore
    from engine.trainer import run_distillation

    speed = StepSpeed()
    store = RunStore(scratch / "headless.sqlite3")
    try:
        result = run_distillation(config, store, speed)
    finally:
        store.close()
    if result.status != "finished":
        raise SystemExit(f"The headless run failed: {result.error}")
    return speed.samples_per_second


def windowed_run(config, scratch: Path, app, stall_probe: bool = False, turns: bool = False, control: bool = False) -> dict:
    """Run ``config`` from the main window and return its measurements.

    Keys: ``speed`` (training samples/s), ``stall_ms`` and ``stall_phase`` (largest gap of the
    stall timer, 0 without ``stall_probe``), ``stall_stacks`` (every thread's stack during each
    stall above the limit, '' if none), ``gui_cpu`` (GUI-thread CPU time over wall time) and,
    with ``turns``, ``turn_ratios`` (see ``turn_ratios``). With ``control`` as well, the turns
    are only marked on the clock and the GUI thread never sleeps, so both states are alike.
    """
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from engine.events import Progress, StepLogged
    from engine.run_store import RunStore
    from workbench.main_window import MainWindow
    from workbench.run_worker import RunWorker
    from workbench.settings import WorkbenchSettings

    store = RunStore(scratch / "windowed.sqlite3")
    settings = WorkbenchSettings(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(store, settings)
    window.resize(1600, 1000)
    window.show()
    window.config_panel.set_config(config)
    # A user presses Run in a window that is already on screen. Without this wait the window's
    # first layout and paint (about 100 ms) fell into the run's first tick gap.
    settle = QEventLoop()
    QTimer.singleShot(SETTLE_MS, settle.quit)
    settle.exec()

    phase = ["starting"]

    def track_phase(events) -> None:
        for event in events:
            phase[0] = getattr(event, "phase", phase[0])

    if stall_probe:
        window.controller.events_received.connect(track_phase)
    gaps: list[tuple[float, str]] = []
    last_tick: list[float | None] = [None]
    watch = StallWatch(scratch / "stall_stacks.txt") if stall_probe else None

    def tick() -> None:
        # A gap counts from the press of Run to the last tick while the run is active.
        now = time.perf_counter()
        if not window.controller.is_running:
            last_tick[0] = None
            watch.disarm()
            return
        if last_tick[0] is not None:
            gaps.append((now - last_tick[0], phase[0]))
        last_tick[0] = now
        watch.arm(TICK_MS / 1000)

    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)

    # Step timings as the run thread logs them, and the GUI thread's sleeps, on one clock. They are
    # taken on the run thread, as the headless variant takes them, so no measuring code runs on
    # the GUI thread.
    arrivals: list[tuple[float, float, float]] = []
    pauses: list[tuple[float, float]] = []
    asleep = [False]
    send = RunWorker._send
    run_thread = [0]

    def timed_send(worker, event) -> None:
        run_thread[0] = threading.get_ident()
        if isinstance(event, StepLogged):
            arrivals.append((time.perf_counter(), event.samples_per_second * event.window_seconds, event.window_seconds))
        if not (asleep[0] and isinstance(event, (StepLogged, Progress))):
            send(worker, event)

    def pause() -> None:
        if not window.controller.is_running:
            return
        started = time.perf_counter()
        if control:
            QTimer.singleShot(int(HALF_TURN_S * 1000), lambda: end_pause(started))
            return
        asleep[0] = True
        time.sleep(HALF_TURN_S)
        asleep[0] = False
        end_pause(started)

    def end_pause(started: float) -> None:
        pauses.append((started, time.perf_counter()))
        QTimer.singleShot(int(HALF_TURN_S * 1000), pause)

    RunWorker._send = timed_send
    if turns:
        QTimer.singleShot(int(HALF_TURN_S * 1000), pause)
    loop = QEventLoop()
    statuses: list[str] = []
    window.controller.run_ended.connect(lambda status: (statuses.append(status), loop.quit()))

    if stall_probe:
        timer.start()
        watch.arm(TICK_MS / 1000)
    # Pressing Run counts: its own work on the GUI thread belongs to the first gap.
    last_tick[0] = time.perf_counter()
    window.start_run()
    cpu_started, wall_started = time.thread_time(), time.perf_counter()
    loop.exec()
    gui_cpu_share = (time.thread_time() - cpu_started) / (time.perf_counter() - wall_started)
    timer.stop()
    RunWorker._send = send
    stall_stacks = ""
    if watch is not None:
        stall_stacks = watch.stacks()
        watch.close()
        if stall_stacks:
            # faulthandler names threads by their ident only.
            stall_stacks = f"GUI thread 0x{threading.get_ident():016x}, run thread 0x{run_thread[0]:016x}\n{stall_stacks}"

    window.close()
    window.deleteLater()
    app.processEvents()
    store.close()
    if statuses != ["finished"]:
        raise SystemExit(f"The windowed run ended as {statuses}")
    gap, stall_phase = max(gaps, default=(0.0, "none"))
    return {
        "speed": sum(samples for _, samples, _ in arrivals) / max(sum(seconds for _, _, seconds in arrivals), 1e-9),
        "stall_ms": max(0.0, gap * 1000 - TICK_MS) if stall_probe else 0.0,
        "stall_phase": stall_phase if stall_probe else "none",
        "stall_stacks": stall_stacks,
        "gui_cpu": gui_cpu_share,
        "turn_ratios": turn_ratios(arrivals, pauses) if turns else [],
    }


def controller_run(config, scratch: Path) -> float:
    """Return training samples/s of a run on its QThread, started by the run controller without a window."""
    from PySide6.QtCore import QEventLoop

    from engine.run_store import RunStore
    from workbench.run_worker import RunController, RunWorker

    speed = StepSpeed()
    send = RunWorker._send

    def timed_send(worker, event) -> None:
        speed(event)  # on the run thread, as the headless run measures
        send(worker, event)

    store = RunStore(scratch / "controller.sqlite3")
    controller = RunController(store)
    loop = QEventLoop()
    statuses: list[str] = []
    controller.run_ended.connect(lambda status: (statuses.append(status), loop.quit()))
    RunWorker._send = timed_send
    try:
        controller.start(config)
        loop.exec()
    finally:
        RunWorker._send = send
        store.close()
    if statuses != ["finished"]:
        raise SystemExit(f"The run without a window ended as {statuses}")
    return speed.samples_per_second


def turn_ratios(arrivals: list[tuple[float, float, float]], pauses: list[tuple[float, float]]) -> list[float]:
    """Training speed of each working half over the mean speed of the sleeping halves beside it.

    ``arrivals`` contains (time, samples, training seconds) of each logged step, and ``pauses`` the
    (start, end) of each sleep of the GUI thread. A step counts for a state when the time since the
    previous step lies wholly inside it. Steps with an evaluation before them are left out.
    """
    paused = [[0.0, 0.0] for _ in pauses]  # samples, seconds
    working = [[0.0, 0.0] for _ in range(len(pauses) + 1)]  # working half k ends where pause k starts
    for (previous, _, _), (now, samples, seconds) in zip(arrivals, arrivals[1:]):
        if seconds <= 0 or now - previous > 1.5 * seconds:
            continue
        index = sum(1 for start, _ in pauses if start < now)  # pauses begun before this step ended
        if index and pauses[index - 1][0] <= previous and now <= pauses[index - 1][1]:
            totals = paused[index - 1]
        elif index == 0 or previous >= pauses[index - 1][1]:
            totals = working[index]
        else:
            continue  # the step straddles the start or end of a sleep
        totals[0] += samples
        totals[1] += seconds

    def speed(totals: list[float]) -> float | None:
        return totals[0] / totals[1] if totals[1] >= 0.2 * HALF_TURN_S else None

    ratios = []
    for index in range(1, len(pauses)):  # working half between pause index-1 and pause index
        neighbours = [value for value in (speed(paused[index - 1]), speed(paused[index])) if value]
        own = speed(working[index])
        if own and neighbours:
            ratios.append(own / (sum(neighbours) / len(neighbours)))
    return ratios


def run_variant(variant: str, data: Path, quick: bool, scratch: Path, rows: int) -> None:
    """Run one variant in this process and print its result as one ``RESULT`` line."""
    config = make_config(data, quick, seed=42, rows=rows)
    if variant == HEADLESS:
        print_result(speed_only(headless_run(config, scratch)))
        return

    from PySide6.QtWidgets import QApplication

    from workbench.app import prepare_gui_thread
    from workbench.import_warmup import warm_run_imports

    import workbench.main_window  # noqa: F401  (every Qt variant loads the same modules)

    app = QApplication.instance() or QApplication(["gui_overhead"])
    if variant == QT_LOADED:
        # Everything a windowed process loads and freezes, but the run stays on the main thread,
        # which keeps its OpenMP threads and Python's own garbage collection.
        warm_run_imports().join()
        print_result(speed_only(headless_run(config, scratch)))
        return
    prepare_gui_thread(app)
    # The run starts after the import warm-up, as it does when a user sets up a run before
    # pressing Run.
    warm_run_imports().join()
    if variant == NO_WINDOW:
        print_result(speed_only(controller_run(config, scratch)))
        return
    if variant == SLOWER_REDRAWS:
        import workbench.live_view
        import workbench.run_worker

        workbench.live_view.REFRESH_INTERVAL_MS = SLOWER_REFRESH_MS
        workbench.run_worker.BATCH_INTERVAL_S = SLOWER_BATCH_S
        print_result(windowed_run(config, scratch, app))
        return
    turns = variant in (TURNS, TURNS_CONTROL)
    print_result(windowed_run(config, scratch, app, stall_probe=variant == STALL_PROBE, turns=turns, control=variant == TURNS_CONTROL))


def speed_only(speed: float) -> dict:
    """Return the result of a variant without a window: its speed, and no stalls, GUI time or turns."""
    return {"speed": speed, "stall_ms": 0.0, "stall_phase": "none", "stall_stacks": "", "gui_cpu": 0.0, "turn_ratios": []}


def print_result(result: dict) -> None:
    """Print a variant's result as the ``RESULT`` line that ``measure_in_subprocess`` reads."""
    print("RESULT " + json.dumps(result), flush=True)


def measure_in_subprocess(variant: str, data: Path, quick: bool, threads: int | None, rows: int) -> dict:
    """Run one variant in a fresh process: a process's earlier runs would change its thread teams."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, __file__, "--variant", variant, "--scratch", scratch, "--data", str(data), "--rows", str(rows)]
        command += (["--quick"] if quick else []) + (["--threads", str(threads)] if threads else [])
        completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"The {variant} run failed (exit status {completed.returncode}); its error is above.")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    add_data_argument(parser)
    parser.add_argument("--rows", type=int, default=TRAIN_ROWS, help=f"SST-2 training rows per run (default {TRAIN_ROWS}); more rows give more turns per run")
    parser.add_argument(
        "--turns-only",
        action="store_true",
        help="run only the in-turns run and its control, for a narrower interval of the in-run figure",
    )
    parser.add_argument(
        "--by-part",
        action="store_true",
        help="run headless, headless with Qt loaded, the run controller without a window, and the window, to see which part costs speed",
    )
    parser.add_argument(
        "--intervals",
        action="store_true",
        help=f"run headless, the window, and the window with redraws every {SLOWER_REFRESH_MS} ms and event batches every {SLOWER_BATCH_S} s",
    )
    parser.add_argument("--variant", choices=VARIANTS + PARTS + INTERVALS, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = data_folder(args.data)
    apply_threads(args.threads)
    if args.variant is not None:
        run_variant(args.variant, data, args.quick, args.scratch, args.rows)
        return

    repeats = args.repeats or (1 if args.quick else 5)
    detail(describe_environment())
    if args.by_part or args.intervals:
        run_by_part(data, args, repeats, INTERVALS if args.intervals else PARTS)
        return
    variants = (TURNS, TURNS_CONTROL) if args.turns_only else VARIANTS
    with isolated_user_folders():
        # Fill the teacher-embedding cache first, so that every variant times training alone.
        measure_in_subprocess(HEADLESS, data, args.quick, args.threads, args.rows)

        speeds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        stalls, gui_cpu, turns, control = [], [], [], []
        for repeat in range(repeats):
            # Each variant takes each place in the order in turn, so the machine's drift over a
            # repetition does not favour one of them.
            shift = repeat % len(variants)
            turn_count = control_count = 0
            for variant in variants[shift:] + variants[:shift]:
                result = measure_in_subprocess(variant, data, args.quick, args.threads, args.rows)
                speeds[variant].append(result["speed"])
                if variant == STALL_PROBE:
                    stalls.append((result["stall_ms"], result["stall_phase"]))
                    if result["stall_stacks"]:
                        detail(f"repeat {repeat + 1}: every thread's stack during a stall above {STALL_LIMIT_MS} ms:\n{result['stall_stacks']}")
                elif variant == WINDOWED:
                    gui_cpu.append(result["gui_cpu"])
                elif variant == TURNS:
                    turns.extend(result["turn_ratios"])
                    turn_count = len(result["turn_ratios"])
                elif variant == TURNS_CONTROL:
                    control.extend(result["turn_ratios"])
                    control_count = len(result["turn_ratios"])
            parts = []
            if not args.turns_only:
                headless = speeds[HEADLESS][-1]
                parts.append(
                    f"headless {headless:.1f} samples/s, windowed {speeds[WINDOWED][-1]:.1f} samples/s "
                    f"({speeds[WINDOWED][-1] / headless:.2f}, GUI thread busy {gui_cpu[-1]:.1%} of the run); "
                    f"with the stall timer {speeds[STALL_PROBE][-1]:.1f} samples/s ({speeds[STALL_PROBE][-1] / headless:.2f}), "
                    f"largest stall {stalls[-1][0]:.0f} ms (phase: {stalls[-1][1]})"
                )
            parts.append(
                f"in turns: {turn_count} working halves, median {median(turns[-turn_count:]) if turn_count else float('nan'):.2f}; "
                f"control: {control_count} halves, median {median(control[-control_count:]) if control_count else float('nan'):.2f}"
            )
            detail(f"repeat {repeat + 1}: " + "; ".join(parts))

    config = make_config(data, args.quick, seed=42, rows=args.rows)
    if not args.turns_only:
        summarize_separate_runs(config, speeds, stalls, repeats)
    summarize_turns(turns, control, repeats)


def run_by_part(data: Path, args, repeats: int, variants: tuple[str, ...] = PARTS) -> None:
    """Run ``variants`` (headless first) in rotation and print each one's speed over the headless run's."""
    with isolated_user_folders():
        measure_in_subprocess(HEADLESS, data, args.quick, args.threads, args.rows)  # fills the teacher cache
        speeds: dict[str, list[float]] = {variant: [] for variant in variants}
        for repeat in range(repeats):
            shift = repeat % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                speeds[variant].append(measure_in_subprocess(variant, data, args.quick, args.threads, args.rows)["speed"])
            headless = speeds[HEADLESS][-1]
            detail(f"repeat {repeat + 1}: " + "; ".join(f"{variant} {speeds[variant][-1]:.1f} samples/s ({speeds[variant][-1] / headless:.2f})" for variant in variants))

    config = make_config(data, args.quick, seed=42, rows=args.rows)
    for variant in variants[1:]:
        ratios = [speed / headless for speed, headless in zip(speeds[variant], speeds[HEADLESS])]
        low, high = min(ratios), max(ratios)
        summary(
            f"gui overhead {'by interval' if SLOWER_REDRAWS in variants else 'by part'} (SST-2 {config.data.train_limit} rows, d{config.student.d_model}x{config.student.n_layers}, {repeats} runs each): "
            f"{variant}/headless, median of the {repeats} pairs = {median(ratios):.2f} (pairs {low:.2f}-{high:.2f}; 1.0 = no cost)"
        )


def summarize_separate_runs(config, speeds: dict[str, list[float]], stalls: list[tuple[float, str]], repeats: int) -> None:
    """Print the windowed/headless throughput figure and the worst stall."""
    student = config.student
    # The machine's speed drifts by 10-20% over minutes, so each windowed run is compared with the
    # headless run next to it, and the figure is the median of those ratios.
    ratio = median([w / h for w, h in zip(speeds[WINDOWED], speeds[HEADLESS])])
    probed = median([w / h for w, h in zip(speeds[STALL_PROBE], speeds[HEADLESS])])
    detail(f"with the 10 ms stall timer running: windowed/headless, median of the {repeats} pairs = {probed:.2f}")
    summary(
        f"gui overhead (SST-2 {config.data.train_limit} rows, d{student.d_model}x{student.n_layers}, live plots on, {repeats} runs each): "
        f"{median(speeds[WINDOWED]):.1f} vs {median(speeds[HEADLESS]):.1f} samples/s (medians); "
        f"throughput windowed/headless, median of the {repeats} pairs = {ratio:.2f} (goal >= 0.95)"
    )
    worst, worst_phase = max(stalls)
    summary(
        f"gui event loop: largest stall during a run {worst:.0f} ms ({worst_phase} phase) over {repeats} runs; "
        f"stall/limit = {worst / 100:.2f} (goal <= 1, i.e. <= 100 ms)"
    )


def summarize_turns(turns: list[float], control: list[float], repeats: int) -> None:
    """Print the in-run figure over the control's, each with a 95% bootstrap interval of its median."""
    if not (turns and control):
        summary("gui work within one run: no complete turn (the runs are too short); run without --quick")
        return
    # The control run marks the same turns without sleeping. Its median shows how far the split
    # itself moves the figure when both states are alike (1.0 if it did not at all).
    low, high = median_interval(control)
    detail(f"control run (turns marked, GUI thread never asleep): median of {len(control)} halves = {median(control):.2f} (95% interval {low:.2f}-{high:.2f})")
    low, high = median_interval(turns)
    ratio_low, ratio_high = median_interval(turns, over=control)
    summary(
        f"gui work within one run (GUI thread working or asleep in turns of {HALF_TURN_S:g} s): training speed working/asleep, "
        f"median of {len(turns)} working halves over {repeats} runs = {median(turns):.2f} (95% interval {low:.2f}-{high:.2f}); "
        f"over the control run's {median(control):.2f} = {median(turns) / median(control):.2f} "
        f"(95% interval {ratio_low:.2f}-{ratio_high:.2f}; goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
