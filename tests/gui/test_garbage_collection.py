"""Cyclic garbage is collected on the GUI thread only, never on a run's worker thread."""

import gc
import threading

import torch

from engine.teachers import TeacherEncoder
from workbench.garbage_collection import GuiThreadGarbageCollector


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collector_disables_automatic_collection(qapp):
    collector = GuiThreadGarbageCollector(qapp)
    was_enabled = gc.isenabled()
    try:
        collector.start()

        assert not gc.isenabled()
        assert collector.timer.isActive()
    finally:
        collector.stop()
        if not was_enabled:
            gc.disable()


def test_collector_frees_cycles_past_threshold(qapp):
    collector = GuiThreadGarbageCollector(qapp)
    threshold = gc.get_threshold()[0]
    gc.collect()

    for _ in range(threshold + 10):
        Cycle()

    assert collector.collect_due() >= threshold


def released_encoder() -> TeacherEncoder:
    encoder = TeacherEncoder.__new__(TeacherEncoder)  # only the attributes that release() reads
    encoder.model = torch.nn.Linear(2, 2)
    encoder.device = torch.device("cpu")
    return encoder


def test_teacher_release_collects_only_on_main_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(threading.current_thread().name) or 0)

    worker = threading.Thread(target=released_encoder().release, name="run-worker")
    worker.start()
    worker.join()
    released_encoder().release()

    assert calls == [threading.main_thread().name]


def test_import_warmup_never_collects_on_its_thread(monkeypatch):
    from workbench.import_warmup import warm_run_imports

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(threading.current_thread().name) or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))

    warm_run_imports().join()

    assert calls == ["freeze"]
