"""Entry point of the ``lampreia`` command: the GUI without arguments (or with ``gui``), else the CLI.

Qt is imported only when the GUI is started, so the headless commands work on machines without
a display or Qt libraries.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import Mapping, Sequence


log = logging.getLogger(__name__)

# Options of the top-level command that the window takes too, so that `lampreia -v` opens it.
GUI_OPTIONS = ("-v", "--verbose")
# The shell's status for a process ended by SIGINT, as `lampreia run` returns on Ctrl-C.
EXIT_INTERRUPTED = 130
# The status of a command that cannot do what was requested in this environment, as for usage errors.
EXIT_NO_DISPLAY = 2


class StartUpInterrupt:
    """Ctrl-C received while the workbench starts, recorded by a SIGINT handler instead of raised.

    A KeyboardInterrupt raised inside Qt's C++ code (a PySide callback, PySide's import hook) is
    printed and dropped, so a Ctrl-C during start-up could be lost and the window then stayed open.
    ``check`` raises it at points where Python code alone runs.
    """

    def __init__(self) -> None:
        self.received = False
        self._previous = signal.signal(signal.SIGINT, self._record)

    def _record(self, _signal: int, _frame: object) -> None:
        self.received = True

    def check(self) -> None:
        if self.received:
            raise KeyboardInterrupt

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


WITHOUT_DISPLAY = "The other commands need no display: `lampreia run --help`, `lampreia runs`, `lampreia show RUN_ID`."


def missing_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Return why Qt would find no display on Linux (over SSH, say), or None.

    Without a display Qt aborts the process with advice to reinstall it, which does not help.
    QT_QPA_PLATFORM (offscreen, for example) chooses a platform that needs none.
    """
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display was found (DISPLAY and WAYLAND_DISPLAY are unset). Start it on a desktop session or over "
        f"`ssh -X`. {WITHOUT_DISPLAY}"
    )


# Code that creates what the window creates first, a QGuiApplication. Qt aborts the process when
# its platform plugin cannot start, so this runs in a child process, where the abort can be reported.
PLATFORM_PROBE = "import sys\nfrom PySide6.QtGui import QGuiApplication\nQGuiApplication(sys.argv[:1])\n"
PLATFORM_PROBE_TIMEOUT_S = 60


def platform_failure(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Return why Qt cannot open a window on Linux, found by starting its platform in a child process, or None.

    A stale DISPLAY over SSH or a missing xcb-cursor library (needed by Qt 6.5 and later) makes Qt
    abort with advice to reinstall the application. QT_QPA_PLATFORM set by the user skips the probe.
    """
    environ = dict(os.environ if environ is None else environ)
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PLATFORM_PROBE], env=environ, capture_output=True, text=True, timeout=PLATFORM_PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        # The window's own start then shows what goes wrong.
        log.debug("The Qt platform probe did not finish: %s", error)
        return None
    if probe.returncode == 0:
        return None

    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    # Qt's own lines name the plugin, the display and the missing library. Its last line advises reinstalling.
    qt_lines = [line for line in lines if "qt.qpa" in line or "display" in line.lower()][:2] or lines[-1:]
    details = " ".join(qt_lines) or f"exit status {probe.returncode}"
    if "xcb-cursor" in probe.stderr:
        fix = "On Debian or Ubuntu, install the library Qt names: sudo apt install libxcb-cursor0."
    else:
        fix = "Check that DISPLAY names a running X server; over SSH, that X forwarding works (ssh -X)."
    return f"Qt could not start its display platform (DISPLAY={environ.get('DISPLAY', '')!r}): {details} {fix} {WITHOUT_DISPLAY}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["gui"]:
        args = args[1:]
    elif not all(arg in GUI_OPTIONS for arg in args):
        from engine.cli import main as cli_main

        return cli_main(args)

    problem = missing_display() or platform_failure()
    if problem:
        print(f"lampreia: cannot open the workbench window: {problem}", file=sys.stderr)
        return EXIT_NO_DISPLAY

    start_up = StartUpInterrupt()
    try:
        from workbench.app import run_app

        start_up.check()
        return run_app(args, start_up)
    except KeyboardInterrupt:
        # Ctrl-C before the window is up (imports take seconds). Once it is up, Ctrl-C closes it.
        print("lampreia: interrupted while the workbench was starting", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        start_up.restore()


if __name__ == "__main__":
    sys.exit(main())
