"""The README's screenshot script runs end to end on real rows and writes its PNG files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "capture_screenshots.py"
EXPECTED = ["main-window-during-run.png", "attention-map.png", "compare-view.png", "compare-dev-metric.png", "compare-config-diff.png"]


def test_capture_script_writes_every_screenshot(shared_data, tmp_path):
    environment = {**os.environ, "LAMPREIA_TEST_DATA": str(shared_data), "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "shots"), "--train-rows", "96", "--epochs", "1"]

    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)

    assert completed.returncode == 0, completed.stderr[-3000:]
    for name in EXPECTED:
        assert (tmp_path / "shots" / name).stat().st_size > 10_000, name
    assert not list(tmp_path.glob("lampreia-screenshots-*"))  # its scratch folder is removed
