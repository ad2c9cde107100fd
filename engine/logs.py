"""Logging set-up shared by the CLI and the GUI: short messages on stderr, full detail in a file."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from engine.paths import data_dir

log = logging.getLogger(__name__)
_configured = False


def log_file_path() -> Path:
    return data_dir() / "logs" / "lampreia.log"


def configure_logging(verbose: bool = False, create_folder: bool = True) -> Path | None:
    """Send WARNING (INFO with ``verbose``) to stderr and INFO with tracebacks to the log file.

    Returns the log file, or None when its folder cannot be written (then only stderr is used).
    Without ``create_folder`` (commands that only read), the file is used only when its folder
    exists already, and None is returned otherwise. Safe to call more than once.
    """
    global _configured
    root = logging.getLogger()
    path: Path | None = log_file_path()
    if _configured:
        return path

    root.setLevel(logging.DEBUG if os.environ.get("LAMPREIA_DEBUG") else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)

    path = _add_file_handler(root, path) if create_folder or path.parent.is_dir() else None

    # Third-party libraries log download and weight-loading chatter at INFO.
    for noisy in ("httpx", "huggingface_hub", "urllib3", "filelock", "alembic", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True
    return path


def _add_file_handler(root: logging.Logger, path: Path) -> Path | None:
    """Log everything to ``path``, creating its folder; return None when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    except OSError as error:
        log.warning("Cannot write the log file %s (%s), so messages go to stderr only.", path, error)
        return None
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    return path


def log_file_in_use() -> Path | None:
    """Return the file that the root logger writes to, or None when it writes to none."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None
