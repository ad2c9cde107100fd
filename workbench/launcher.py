"""Entry point of the ``lampreia`` command: the GUI without arguments (or with ``gui``), else the CLI.

Qt is imported only when the GUI is started, so the headless commands work on machines without
a display or Qt libraries.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] == "gui":
        from workbench.app import run_app

        return run_app(args[1:])

    from engine.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
