"""Names from the transformers package, resolved under one lock for the whole process.

transformers 5 resolves its top-level names on first access (its ``_LazyModule``). When several
threads do that at once, some can fail with "cannot import name 'AutoTokenizer' from
'transformers'". With transformers 5.25.0, three threads running ``from transformers import
AutoTokenizer, …`` in a fresh interpreter gave two such failures in each of 6 tries here. The
workbench imports these names from its import warm-up, the parameter count's vocabulary lookup,
the Add model check and the run thread, so the engine and the workbench import transformers
through this module only.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from typing import Any

# Reentrant, because importing one transformers module can import another through here.
_LOCK = threading.RLock()


@contextlib.contextmanager
def transformers_import_lock() -> Iterator[None]:
    """Hold the lock under which this process imports transformers modules and resolves their names."""
    with _LOCK:
        yield


def transformers_names(*names: str) -> tuple[Any, ...]:
    """Return the named top-level objects of transformers (``AutoTokenizer``, …), resolved under the lock."""
    with _LOCK:
        transformers = importlib.import_module("transformers")
        return tuple(getattr(transformers, name) for name in names)


def transformers_module(name: str) -> Any:
    """Return the transformers submodule ``name`` (such as ``transformers.utils.logging``), imported under the lock."""
    with _LOCK:
        return importlib.import_module(name)
