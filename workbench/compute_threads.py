"""Keep torch's OpenMP threads for the run: the GUI thread computes single-threaded.

torch's CPU operators run in OpenMP thread teams, one team per thread that calls them. Once the
GUI thread has run a parallel operator, its idle team member stays alive beside the run thread's
team. With more OpenMP threads than cores, GNU OpenMP (the runtime of torch's Linux wheels) stops
busy-waiting between parallel regions, so each small operator of a training step pays a sleep and
a wake-up. On a 2-core machine a run on its QThread trained at 0.4 times the speed of the same run
on a main thread (bench/gui_overhead.py). Limiting the GUI thread to one OpenMP thread
before it runs any operator means it never starts a team.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_run_threads: int | None = None  # torch's thread count for runs, read before the GUI thread's limit


def keep_openmp_threads_for_runs() -> None:
    """Limit the calling (GUI) thread to one OpenMP thread; threads started later keep torch's default.

    Call it on the GUI thread before it runs any torch operator.
    """
    from threadpoolctl import threadpool_limits

    global _run_threads
    # torch sets a thread's OpenMP thread count on that thread's first request for it. Requesting
    # it here fixes the GUI thread's count, so that the limit below is not overwritten later.
    _run_threads = _run_threads or torch.get_num_threads()
    threadpool_limits(limits=1, user_api="openmp")
    log.debug("GUI thread limited to one OpenMP thread")


def run_thread_count() -> int:
    """Return the torch threads that a run's thread uses, also when called on the limited GUI thread."""
    return _run_threads or torch.get_num_threads()
