"""Entry point of the ``lampreia`` command: the GUI without arguments (or with ``gui``), else the CLI.

Qt is imported only when the GUI is started, so the headless commands work on machines without
a display or Qt libraries.
"""

from __future__ import annotations

import sys
from typing import Sequence


# Options of the top-level command that the window takes too, so that `lampreia -v` opens it.
GUI_OPTIONS = ("-v", "--verbose")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["gui"]:
        args = args[1:]
    elif not all(arg in GUI_OPTIONS for arg in args):
        from engine.cli import main as cli_main

        return cli_main(args)

    from workbench.app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
