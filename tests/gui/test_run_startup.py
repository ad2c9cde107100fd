"""What `lampreia gui` does at start so that runs on the QThread are fast and the plots stay live.

Each check runs in a fresh interpreter: the test process has long since imported everything and
run torch operators on its main thread.
"""

import subprocess
import sys
import textwrap


def run_fresh(code: str) -> str:
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_gui_thread_openmp_limit():
    output = run_fresh(
        """
        import threading
        import torch
        torch.set_num_threads(2)
        from workbench.compute_threads import keep_openmp_threads_for_runs

        keep_openmp_threads_for_runs()
        seen = []
        worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        worker.start()
        worker.join()
        print(torch.get_num_threads(), seen[0])
        """
    )

    gui_threads, run_threads = output.split()
    assert gui_threads == "1"
    assert run_threads == "2"


def test_warmup_imports_and_freezes():
    output = run_fresh(
        """
        import gc
        import sys
        from workbench.import_warmup import LAZY_RUN_MODULES, warm_run_imports

        before = [name in sys.modules for name in LAZY_RUN_MODULES]
        warm_run_imports().join()
        after = [name in sys.modules for name in LAZY_RUN_MODULES]
        print(any(before), all(after), gc.get_freeze_count())
        """
    )

    imported_before, imported_after, frozen = output.split()
    assert imported_before == "False"
    assert imported_after == "True"
    # torch and transformers alone leave well over 100,000 tracked objects.
    assert int(frozen) > 100_000


def test_stopped_warmup_skips_later_imports():
    output = run_fresh(
        """
        import gc
        import sys
        from workbench.import_warmup import LAZY_RUN_MODULES, warm_run_imports

        warmup = warm_run_imports()
        ended = warmup.stop(timeout=60)
        print(ended, LAZY_RUN_MODULES[-1] in sys.modules, gc.get_freeze_count())
        """
    )

    ended, last_imported, frozen = output.split()
    assert ended == "True"
    assert last_imported == "False"
    assert frozen == "0"
