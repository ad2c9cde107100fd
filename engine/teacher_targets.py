"""Teacher embeddings of the training rows: from the cache, or computed once and cached.

Teachers run one after another and each is released before the next is loaded, so peak device
memory is that of the largest teacher, not of all of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from engine.embedding_cache import CachedEmbeddings, EmbeddingCache, cache_key
from engine.events import CancellationToken, EventSink, PhaseChanged, Progress
from engine.glue_data import GlueSplit
from engine.teachers import TeacherEncoder, TeacherInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherEmbeddings:
    info: TeacherInfo
    entry: CachedEmbeddings
    cache_hit: bool
    forward_passes: int
    seconds: float


def extract_teacher_embeddings(
    teachers: list[TeacherInfo],
    split: GlueSplit,
    *,
    max_seq_len: int,
    batch_size: int,
    device: torch.device,
    cache: EmbeddingCache,
    trust_remote_code: bool,
    sink: EventSink,
    cancel: CancellationToken,
) -> list[TeacherEmbeddings]:
    """Return each teacher's embeddings of ``split`` in teacher order."""
    split_fingerprint = split.fingerprint()
    results = []
    for index, info in enumerate(teachers, start=1):
        cancel.raise_if_cancelled()
        sink(PhaseChanged("extracting", info.label, index, len(teachers)))
        start = time.perf_counter()
        key = cache_key(
            teacher_fingerprint=info.fingerprint,
            split_fingerprint=split_fingerprint,
            task=split.task,
            split=split.split,
            max_seq_len=max_seq_len,
        )

        entry = cache.load(key, expected_rows=len(split))
        if entry is not None:
            log.info("Teacher %s: %d embeddings from the cache (%s)", info.label, len(split), cache.path(key))
            results.append(TeacherEmbeddings(info, entry, True, 0, time.perf_counter() - start))
            continue

        encoder = TeacherEncoder(info, device, trust_remote_code=trust_remote_code)
        try:
            embeddings = encoder.embed(
                split.texts_a,
                split.texts_b,
                max_seq_len=max_seq_len,
                batch_size=batch_size,
                on_progress=_progress_reporter(sink, f"extracting {info.label}", start),
                cancel=cancel,
            )
            passes = encoder.forward_passes
        finally:
            encoder.release()

        metadata = {
            "teacher": info.spec,
            "teacher_fingerprint": info.fingerprint,
            "task": split.task,
            "split": split.split,
            "rows": str(len(split)),
            "max_seq_len": str(max_seq_len),
            "source": split.source,
        }
        entry = cache.store(key, embeddings, metadata)
        seconds = time.perf_counter() - start
        log.info("Teacher %s: %d embeddings computed in %.1f s (%d forward passes)", info.label, len(split), seconds, passes)
        results.append(TeacherEmbeddings(info, entry, False, passes, seconds))
    return results


def standardize(embeddings: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Standardize per dimension with the mean and std of ``rows`` (the training part only)."""
    reference = embeddings[rows]
    mean = reference.mean(axis=0)
    std = reference.std(axis=0)
    # Dimensions that are constant on the training rows carry no signal; dividing by a tiny std
    # would turn float16 rounding noise into huge targets.
    std = np.where(std < 1e-6, 1.0, std)
    return ((embeddings - mean) / std).astype(np.float32)


def _progress_reporter(sink: EventSink, phase: str, start: float):
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - last[0] < 0.2:
            return
        last[0] = now
        elapsed = now - start
        eta = elapsed / done * (total - done) if done else None
        sink(Progress(phase, done, total, elapsed, eta))

    return report
