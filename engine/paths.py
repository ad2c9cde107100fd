"""Default locations of the run database, run artifacts and the teacher-embedding cache.

``LAMPREIA_DATA_DIR`` and ``LAMPREIA_CACHE_DIR`` override the platform's user folders (used by
the tests and by users who keep runs on a project disk).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import platformdirs

APP_NAME = "lampreia-workbench"


def data_dir() -> Path:
    override = os.environ.get("LAMPREIA_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    override = os.environ.get("LAMPREIA_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir(APP_NAME))


def default_database_path() -> Path:
    return data_dir() / "runs.sqlite3"


def teacher_cache_dir() -> Path:
    return cache_dir() / "teacher-embeddings"


def safe_file_name(text: str, fallback: str = "run", max_length: int = 80) -> str:
    """Turn user text (a run name) into one file-name component that cannot leave its folder.

    Keeps letters, digits, '-', '_' and '.'; everything else, path separators included,
    becomes '_'. Leading dots are dropped so that '..' and hidden names cannot result.
    """
    cleaned = "".join(ch if (ch.isalnum() and ch.isascii()) or ch in "-_." else "_" for ch in text)
    cleaned = cleaned.lstrip(".").strip()[:max_length]
    return cleaned or fallback


@contextlib.contextmanager
def replaced_text_file(path: Path) -> Iterator[TextIO]:
    """Open a temporary file beside ``path`` for writing text, and move it onto ``path`` on success.

    A write that fails (a full disk, an exception in the caller) removes the temporary file and
    leaves an existing ``path`` as it was. A replaced file keeps its permissions, and a symbolic
    link keeps pointing to the file, which is the one replaced.
    """
    path = path.resolve() if path.is_symlink() else path
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            yield handle
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
