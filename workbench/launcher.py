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
    if not args or args[0] == "gui" or all(arg in GUI_OPTIONS for arg in args):
        from workbench.app import run_app

        return run_app(args[1:] if args and args[0] == "gui" else args)

    from engine.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
