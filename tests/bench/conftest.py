"""Run a benchmark script in a subprocess in its quickest mode; no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def run_bench():
    """Return a function that runs ``bench/<name>`` with arguments and returns the completed process.

    One torch thread keeps the smoke runs quick on a machine shared with other test runs.
    """

    def run(name: str, *arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(BENCH / name), *arguments]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    return run
