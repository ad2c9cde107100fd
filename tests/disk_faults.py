"""A full disk for the trainer's checkpoint writes, made by replacing ``engine.trainer.write_checkpoint``."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest


def fill_disk_at_write(monkeypatch: pytest.MonkeyPatch, file_name: str, write_number: int) -> Callable:
    """Make the ``write_number``-th write of checkpoint ``file_name`` (and later ones) fail with ENOSPC.

    Returns the real ``write_checkpoint``, so that a test can give the disk its space back.
    """
    import engine.trainer

    written = engine.trainer.write_checkpoint
    writes = 0

    def write_checkpoint(path, *args, **kwargs):
        nonlocal writes
        if path.name == file_name:
            writes += 1
            if writes >= write_number:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return written(path, *args, **kwargs)

    monkeypatch.setattr(engine.trainer, "write_checkpoint", write_checkpoint)
    return written
