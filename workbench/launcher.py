"""Entry point of the ``lampreia`` command: the GUI without arguments (or with ``gui``), else the CLI.

Qt is imported only when the GUI is started, so the headless commands work on machines without
a display or Qt libraries.
"""

from __future__ import annotations

import sys
from typing import Sequence


# Options of the top-level command that the window takes too, so that `lampreia -v` opens it.
GUI_OPTIONS = ("-v", "--verbose")
# The shell's status for a process ended by SIGINT, as `lampreia run` returns on Ctrl-C.
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["gui"]:
        args = args[1:]
    elif not all(arg in GUI_OPTIONS for arg in args):
        from engine.cli import main as cli_main

        return cli_main(args)

    try:
        from workbench.app import run_app

        return run_app(args)
    except KeyboardInterrupt:
        # Ctrl-C before the window is up (imports take seconds); once it is, Ctrl-C closes it.
        print("lampreia: interrupted while the workbench was starting", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
