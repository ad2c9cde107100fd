"""Content-addressed on-disk cache of teacher embeddings.

A teacher's embeddings depend only on its weights and tokenizer (the folder fingerprint), the
exact input texts (the split fingerprint), ``max_seq_len`` and the pooling. The SHA-256 of those
is the file name, so a changed input can never return stale embeddings and identical inputs are
computed once across epochs and runs. Files are float16 safetensors with the split's
per-dimension float32 mean and standard deviation, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from engine.paths import teacher_cache_dir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
POOLING = "mean"


@dataclass(frozen=True)
class CachedEmbeddings:
    embeddings: np.ndarray  # (N, D) float32
    mean: np.ndarray  # (D,) float32, over this split's rows
    std: np.ndarray  # (D,) float32
    metadata: dict[str, str]


def cache_key(*, teacher_fingerprint: str, split_fingerprint: str, task: str, split: str, max_seq_len: int) -> str:
    parts = {
        "format": CACHE_FORMAT,
        "teacher": teacher_fingerprint,
        "texts": split_fingerprint,
        "task": task,
        "split": split,
        "max_seq_len": max_seq_len,
        "pooling": POOLING,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class EmbeddingCache:
    """Read and write cached teacher embeddings under ``root`` (default: the user cache folder)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else teacher_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str, expected_rows: int) -> CachedEmbeddings | None:
        """Return the cached entry, or None when absent, unreadable or of the wrong size."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="np") as handle:
                metadata = handle.metadata() or {}
        except (OSError, ValueError, SafetensorError) as error:
            log.warning("Ignoring unreadable teacher-embedding cache file %s: %s", path, error)
            return None

        embeddings = tensors.get("embeddings")
        if embeddings is None or embeddings.shape[0] != expected_rows:
            log.warning("Ignoring teacher-embedding cache file %s: it does not hold %d rows.", path, expected_rows)
            return None
        return CachedEmbeddings(
            embeddings=embeddings.astype(np.float32),
            mean=tensors["mean"],
            std=tensors["std"],
            metadata=metadata,
        )

    def store(self, key: str, embeddings: np.ndarray, metadata: dict[str, str]) -> CachedEmbeddings:
        """Write an entry atomically and return it as read back (float16-rounded embeddings).

        A failed write (full or read-only cache disk) is logged and the embeddings are still
        returned, so the run goes on without the cache.
        """
        rounded = embeddings.astype(np.float16)
        as_float = rounded.astype(np.float32)
        mean = as_float.mean(axis=0).astype(np.float32)
        std = as_float.std(axis=0).astype(np.float32)
        entry = CachedEmbeddings(as_float, mean, std, {**metadata, "created": f"{time.time():.0f}"})

        path = self.path(key)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"embeddings": rounded, "mean": mean, "std": std}, str(temporary), metadata=entry.metadata)
            os.replace(temporary, path)
        except OSError as error:
            log.warning("Could not write teacher-embedding cache file %s (%s); continuing without the cache.", path, error)
            temporary.unlink(missing_ok=True)
        return entry
