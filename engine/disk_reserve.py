"""Space held on the run database's disk so that a run can still be closed when the disk fills.

SQLite cannot write a single row once the disk is full: a run that filled the disk with its own
metrics or checkpoints could not even record that it failed, and would show as ``running`` until
the next start marks it ``interrupted``. The trainer therefore holds a few megabytes in a file
beside the run's checkpoints and frees them before it records the end of the run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_BYTES = 1024 * 1024


class DiskReserve:
    """A file of ``size_bytes`` in ``folder``; ``release`` deletes it. Owned by the trainer's thread."""

    def __init__(self, folder: Path, size_bytes: int = RESERVE_BYTES) -> None:
        self.path = folder / "disk-reserve.bin"
        self.size_bytes = size_bytes

    def acquire(self) -> bool:
        """Allocate the reserve; return False (and log why) if the disk has no room for it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as handle:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(handle.fileno(), 0, self.size_bytes)
                else:
                    handle.write(b"\0" * self.size_bytes)
            return True
        except OSError as error:
            log.warning("No disk reserve at %s (%s); a full disk may leave the run marked running.", self.path, error)
            self.path.unlink(missing_ok=True)
            return False

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("Could not delete the disk reserve %s: %s", self.path, error)
