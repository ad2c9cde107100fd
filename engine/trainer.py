"""The distillation trainer: data → teachers (cached) → student → training loop → run store.

``Trainer.run`` is blocking and owned by the thread that calls it (the CLI's main thread or the
GUI's worker thread). It reports through the event sink, polls the cancellation token between
steps, and records everything in the run store, so that a cancelled, failed or killed run keeps
the metrics logged before it stopped.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from engine.augmentation import augment_tokens
from engine.checkpoints import LoadedCheckpoint, load_optimizer_tensors, optimizer_tensors, read_checkpoint, write_checkpoint
from engine.config import RunConfig
from engine.devices import autocast, autocast_dtype, describe_device, describe_precision, select_device, software_versions
from engine import distributed
from engine.disk_reserve import DiskReserve
from engine.distillation import combine_losses, probe_confidences, task_loss, teacher_distances, teacher_weights
from engine.embedding_cache import EmbeddingCache
from engine.errors import (
    CheckpointError,
    DataError,
    HubUnreachableError,
    LampreiaError,
    OutOfMemoryError,
    RunCancelled,
    StoreError,
    TeacherLoadError,
    TrainingDivergedError,
)
from engine.evaluation import EvaluationSet, LabelScaling, evaluate
from engine.events import (
    AttentionCaptured,
    CancellationToken,
    Event,
    EventSink,
    EvaluationLogged,
    PhaseChanged,
    Progress,
    RunFailed,
    RunFinished,
    RunPrepared,
    RunStarted,
    StepLogged,
    discard_events,
)
from engine.glue_data import GlueSplit, hub_rows_offline, load_split, validate_glue_dir
from engine.logs import log_file_in_use
from engine.model_sources import check_cached_when_offline, hub_offline, is_local_source
from engine.run_store import AttentionSnapshot, MetricPoint, RunStore
from engine.student import Student, check_student_fits
from engine.tasks import TASKS, GlueTask, majority_baseline
from engine.teacher_targets import TeacherEmbeddings, extract_teacher_embeddings, standardize
from engine.teachers import TeacherInfo, check_sequence_length, check_teacher_sources, inspect_teacher
from engine.tokenization import TOKENIZER_REQUIRED_FILES, EncodedRows, StudentTokenizer, check_tokenizer_folder, collate, epoch_batches

log = logging.getLogger(__name__)

# Upper bound on logged training steps per run: more points would not show in a plot.
MAX_LOGGED_STEPS = 1000
METRIC_FLUSH_SECONDS = 2.0
HEARTBEAT_SECONDS = 30.0


@dataclass
class RunResult:
    """Outcome of one call to ``Trainer.run``."""

    run_id: int | None
    status: str
    best_metrics: dict[str, float] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    best_step: int | None = None
    error: str | None = None
    teacher_forward_passes: int = 0
    teacher_cache_hits: tuple[bool, ...] = ()


def run_distillation(
    config: RunConfig,
    store: RunStore,
    sink: EventSink = discard_events,
    cancel: CancellationToken | None = None,
    *,
    cache: EmbeddingCache | None = None,
) -> RunResult:
    """Run one distillation from ``config`` and record it in ``store``."""
    return Trainer(config, store, sink, cancel, cache=cache).run()


def resume_distillation(
    run_id: int,
    store: RunStore,
    sink: EventSink = discard_events,
    cancel: CancellationToken | None = None,
    *,
    cache: EmbeddingCache | None = None,
) -> RunResult:
    """Continue an interrupted, cancelled or failed run from its last checkpoint."""
    record = store.get_run(run_id)
    if record.status in ("finished",):
        raise CheckpointError(f"Run {run_id} already finished.", f"Use 'Run again' (CLI: lampreia run --from-run {run_id}) to train it anew.")
    if record.status == "running":
        raise CheckpointError(
            f"Run {run_id} is still marked as running in another process ({record.owner_host}, pid {record.owner_pid}).",
            "Wait for it to end, or stop that process; a killed run is marked interrupted at the next start.",
        )
    paths = store.artifacts(run_id)
    if "last" not in paths:
        raise CheckpointError(
            f"Run {run_id} has no resumable checkpoint (it stopped before its first checkpoint).",
            f"Start it again with 'Run again' (CLI: lampreia run --from-run {run_id}).",
        )
    checkpoint = read_checkpoint(paths["last"][0], run_id)
    config = RunConfig.from_dict(record.config)
    return Trainer(config, store, sink, cancel, cache=cache, resume_run_id=run_id, checkpoint=checkpoint).run()


def data_fingerprints(train: GlueSplit, dev: dict[str, GlueSplit]) -> tuple[str, dict[str, str]]:
    """Return the SHA-256 over the texts and labels of the train and dev rows a run reads, and one per split.

    The per-split digests are keyed by split name ("train" and the dev prefixes).
    """
    total = hashlib.sha256()
    per_split = {}
    for name, split in [("train", train), *sorted(dev.items())]:
        texts = split.fingerprint().encode()
        labels = np.ascontiguousarray(split.labels).tobytes()
        total.update(name.encode())
        total.update(texts)
        total.update(labels)
        per_split[name] = split.rows_fingerprint()
    return total.hexdigest(), per_split


def distinct_teacher_labels(infos: list[TeacherInfo]) -> list[str]:
    """Return one label per teacher for metric names and plots, each different from the others.

    Local folders are labelled by their name. Where two names are the same (checkpoints saved as
    ".../bert-sst2/final" and ".../roberta-sst2/final"), those labels take parent folders until
    they differ. Labels that still repeat (one teacher given twice) get "#1", "#2" by position.
    """
    labels = [info.label for info in infos]
    for depth in range(2, 5):
        # Labels shared by different folders. One folder given twice is numbered by position only.
        shared = {label for label in labels if len({info.folder for info, other in zip(infos, labels) if other == label}) > 1}
        if not shared:
            break
        labels = [
            "/".join(info.folder.parts[-depth:]) if label in shared and info.hub_id is None and info.label == info.folder.name else label
            for info, label in zip(infos, labels)
        ]
    return numbered_labels(labels)


def numbered_labels(labels: list[str]) -> list[str]:
    """Return ``labels`` with "#" and the position appended to each label that repeats."""
    return [label if labels.count(label) == 1 else f"{label}#{i + 1}" for i, label in enumerate(labels)]


def default_run_name(config: RunConfig) -> str:
    teachers = "+".join(_name_parts(config.distillation.teachers))
    student = config.student
    return f"{config.task}-{teachers}-d{student.d_model}x{student.n_layers}-{student.mixer}"


def _name_parts(teachers: tuple[str, ...] | list[str]) -> list[str]:
    """Return the last path part of each teacher, or the last two where two teachers share the last."""
    lasts = [spec.rstrip("/").split("/")[-1] for spec in teachers]
    return ["/".join(spec.rstrip("/").split("/")[-2:]) if lasts.count(last) > 1 else last for spec, last in zip(teachers, lasts)]


class Trainer:
    """One distillation run. Not thread-safe: create, run and discard it on one thread."""

    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        sink: EventSink = discard_events,
        cancel: CancellationToken | None = None,
        *,
        cache: EmbeddingCache | None = None,
        resume_run_id: int | None = None,
        checkpoint: LoadedCheckpoint | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._sink = sink
        self.cancel = cancel or CancellationToken()
        self.cache = cache or EmbeddingCache()
        self.resume_run_id = resume_run_id
        self.checkpoint = checkpoint

        self.run_id: int | None = resume_run_id
        self.task: GlueTask
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_score = -math.inf
        self.best_step: int | None = None
        self.best_metrics: dict[str, float] = {}
        self.last_metrics: dict[str, float] = {}
        if checkpoint is not None:
            # A resume that fails before it restores the checkpoint records these again at its end,
            # so they must be the run's, not empty.
            self.best_step = checkpoint.state.get("best_step")
            self.best_metrics = dict(checkpoint.state.get("best_metrics") or {})
            self.last_metrics = dict(checkpoint.state.get("last_metrics") or {})
        self._pending: list[MetricPoint] = []
        self._last_flush = time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._extractions: list[TeacherEmbeddings] = []
        self._loaded_splits: tuple[GlueSplit, dict[str, GlueSplit]] | None = None
        self._loaded_tokenizer: StudentTokenizer | None = None
        self.group: distributed.ProcessGroup | None = None

    @property
    def is_main(self) -> bool:
        """True in a single-process run and on rank 0 of a torchrun job, which alone writes."""
        return self.group is None or self.group.is_main

    # Events

    def _emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except Exception:  # a broken sink must not kill the run; the store still records it
            log.exception("Event sink raised on %s", type(event).__name__)
        if isinstance(event, Progress) and self.run_id is not None and time.monotonic() - self._last_heartbeat > HEARTBEAT_SECONDS:
            self._last_heartbeat = time.monotonic()
            self.store.heartbeat(self.run_id)

    # Entry point

    def run(self) -> RunResult:
        started = time.perf_counter()
        try:
            self.device = select_device(self.config.training.device)
            try:
                self._join_process_group()
            except LampreiaError:
                raise
            except (RuntimeError, ValueError) as error:
                raise LampreiaError(
                    f"Could not join the torchrun job: {error}.", "Check the torchrun options and that every process can reach the others."
                ) from error
            self._check_data_folder()
            self._check_model_folders()
            self._check_student_fits()
            # Last, because reading a large task's rows takes seconds.
            self._load_rows_before_claim()
        except LampreiaError as error:
            attempt = f"resume of run {self.resume_run_id}" if self.resume_run_id is not None else "run"
            log.info("The %s was rejected before it started: %s", attempt, error)
            self._emit(RunFailed(None, str(error), type(error).__name__))
            return RunResult(None, "failed", error=str(error))

        if self.cancel.cancelled and self.group is None:
            # Stopped during the checks: nothing is recorded, as for a rejected run. (The ranks of
            # a torchrun job go on together and record the run as cancelled.)
            log.info("The run was stopped before it was recorded")
            return RunResult(None, "cancelled")

        try:
            self._open_run()
        except StoreError as error:
            self._emit(RunFailed(None, str(error), type(error).__name__))
            return RunResult(None, "failed", error=str(error))

        status, message, self._error_type = "finished", None, ""
        try:
            self._prepare()
            self._train()
        except RunCancelled:
            status = "cancelled"
            log.info("Run %d cancelled at step %d", self.run_id, self.step)
            self._save_on_cancel()
        except Exception as error:  # every failure is recorded with the run, then reported
            status, message = "failed", self._describe_failure(error)
            self._error_type = type(error).__name__

        return self._close_run(status, message, time.perf_counter() - started)

    def _check_model_folders(self) -> None:
        """Reject missing teacher folders and unusable tokenizers before a run is recorded.

        Online, Hub ids are only checked by the download, inside the run, so a wrong one is stored
        as a failed run with the Hub's error. With HF_HUB_OFFLINE set, a Hub id missing from the
        local cache is rejected here. A resume skips the teachers, whose embeddings it may find
        in the embedding cache, but not the student tokenizer, which it always loads.
        """
        if self.resume_run_id is None:
            check_teacher_sources(self.config.distillation.teachers)
        student = self.config.student
        with self._for_resume():
            check_tokenizer_folder(student.tokenizer)
            check_cached_when_offline(student.tokenizer, what="student tokenizer", required=TOKENIZER_REQUIRED_FILES)
            if is_local_source(student.tokenizer) or hub_offline():
                self._load_tokenizer_before_claim()

    def _load_tokenizer_before_claim(self) -> None:
        """Load the student tokenizer where that needs no download, so that files without a vocabulary reject the run.

        An unexpected loading error is left to the run, which loads the tokenizer again and
        records the error with the run.
        """
        student = self.config.student
        try:
            self._loaded_tokenizer = StudentTokenizer(student.tokenizer, student.max_seq_len, student.pair_separator)
        except LampreiaError:
            raise
        except Exception:
            log.debug("Loading the student tokenizer before the run failed, so the run loads it again", exc_info=True)

    def _check_data_folder(self) -> None:
        """Reject a missing glue_data folder or task file before a run is recorded or resumed."""
        if self.config.data.glue_dir:
            with self._for_resume():
                validate_glue_dir(TASKS[self.config.task], self.config.data.glue_dir)

    def _load_rows_before_claim(self) -> None:
        """Read the GLUE rows before a run is recorded or claimed, where that needs no download.

        Rows from a glue_data folder, or from the local cache when an offline variable is set,
        load in seconds. So a malformed row, a dataset missing from the cache and, on a resume,
        changed rows reject the run without recording it or changing its status. Rows from the
        Hub online may need a download, which the run does after it is recorded, where a Stop
        ends it and the window shows its progress.
        """
        if not self.config.data.glue_dir and not hub_rows_offline():
            return
        self.task = TASKS[self.config.task]
        with self._for_resume():
            # Without the cancellation token: a stop before the claim has no run to mark as
            # cancelled, and ``run`` checks the token right after these checks.
            splits = self._load_splits(cancel=None)
        if self.checkpoint is not None:
            self._check_same_rows(self.checkpoint.state, *splits, claimed=False)
        self._loaded_splits = splits

    def _check_student_fits(self) -> None:
        if self.resume_run_id is None:
            check_student_fits(self.config.student, TASKS[self.config.task].num_labels, self.device)

    @contextmanager
    def _for_resume(self) -> Iterator[None]:
        """On a resume, replace a failed check's hint: the run's settings cannot change.

        The check fails before the run is claimed, so the run keeps its status and can be resumed
        once its files are back.
        """
        try:
            yield
        except (DataError, TeacherLoadError, HubUnreachableError) as error:
            if self.resume_run_id is None:
                raise
            run_id = self.resume_run_id
            hint = (
                f"Run {run_id} resumes with the settings it was started with and is left as it was: put the files back and "
                f"resume it, or train anew with other settings (lampreia run --from-run {run_id} with the options to change, "
                "or 'Run again' in the workbench)."
            )
            if isinstance(error, HubUnreachableError):
                hint = f"{error.hint} {hint}"  # how to fill the cache applies to a resume too
            # Only the hint changes. The error keeps its type and fields (MalformedRowsError has its rows).
            error.hint = hint
            raise

    def _join_process_group(self) -> None:
        self.group = distributed.process_group_from_environment(self.device.type == "cuda")
        if self.group is None:
            return
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.group.local_rank)
            torch.cuda.set_device(self.device)
        if not self.group.is_main:
            # Only rank 0 records the run and reports events; the others train their shard.
            self._sink = discard_events

    def _open_run(self) -> None:
        self.amp_dtype = autocast_dtype(self.device, self.config.training.amp)
        device_name = f"{describe_device(self.device)}, {describe_precision(self.amp_dtype)}"
        if self.group is not None:
            device_name += f" × {self.group.world_size} processes"
        if not self.is_main:
            self.run_id = distributed.broadcast_from_main(None)
            self.store = distributed.FollowerStore(self.run_id)
            return
        if self.resume_run_id is None:
            name = self.config.name or default_run_name(self.config)
            self.run_id = self.store.create_run(self.config.to_dict(), name=name, device=device_name, versions=software_versions())
        else:
            name = self.store.get_run(self.resume_run_id).name
            self.store.claim_run(self.resume_run_id, device_name)
        self._disk_reserve = DiskReserve(self.store.artifact_dir(self.run_id))
        self._disk_reserve.acquire()
        resumed_from = self.checkpoint.state["step"] if self.checkpoint is not None else None
        if self.group is not None:
            distributed.broadcast_from_main(self.run_id)
        self._emit(RunStarted(self.run_id, name, self.config.to_dict(), device_name, resumed_from))
        log.info("Run %d (%s) started on %s", self.run_id, name, device_name)

    def _save_on_cancel(self) -> None:
        """Save a resume checkpoint at the step where the user stopped, so Resume continues from there.

        Cancellation is only raised between optimizer steps, so the state is consistent.
        """
        if not self.is_main or self.step == 0 or not hasattr(self, "optimizer"):
            return
        try:
            self._save_resume_checkpoint()
        except (LampreiaError, OSError) as error:
            log.warning("Run %d: no resume checkpoint at cancel: %s", self.run_id, error)

    def _describe_failure(self, error: Exception) -> str:
        if isinstance(error, LampreiaError):
            # An expected, user-fixable failure: it is stored with the run and returned, so the
            # log keeps it at INFO instead of printing it twice on the console.
            log.info("Run %s failed: %s", self.run_id, error)
            log.debug("Traceback of the failure:\n%s", traceback.format_exc())
            return str(error)
        if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
            log.exception("Run %s ran out of memory", self.run_id)
            return str(self._out_of_memory())
        if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in str(error):
            log.exception("Run %s: disk full", self.run_id)
            where = getattr(error, "filename", None) or "while writing run files"
            # How to resume is added by the CLI and the workbench, which know whether a checkpoint exists.
            return f"The disk is full ({where}). Free disk space on that drive."
        log.exception("Run %s failed with an unexpected error", self.run_id)
        log_file = log_file_in_use()
        where = f"the log file {log_file}" if log_file else "the log output"
        return f"Unexpected error: {type(error).__name__}: {error}. The full traceback is in {where}; please report it."

    def _out_of_memory(self) -> OutOfMemoryError:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        training = self.config.training
        return OutOfMemoryError(
            f"Out of memory on {describe_device(self.device)} with batch size {training.batch_size} "
            f"and max sequence length {self.config.student.max_seq_len}.",
            f"Lower training.batch_size (e.g. to {max(1, training.batch_size // 2)}) or student.max_seq_len, then run again.",
        )

    def _stored_duration(self, seconds: float) -> float:
        """Return the run's active seconds over all its sessions as stored, else this session's ``seconds``."""
        if not self.is_main or self.run_id is None:
            return seconds
        try:
            return self.store.get_run(self.run_id).duration_seconds or seconds
        except StoreError as error:
            log.warning("Could not read the duration of run %s: %s", self.run_id, error)
            return seconds

    def _close_run(self, status: str, message: str | None, seconds: float) -> RunResult:
        if self.group is not None:
            # A finished run ends on every rank after the same last step, so the ranks can wait
            # for each other. A failure or a cancellation can end one rank alone.
            distributed.shutdown(synchronize=status == "finished")
        if self.is_main:
            self._disk_reserve.release()
        try:
            self._flush_metrics(force=True)
        except StoreError as error:
            log.error("Could not write the last metrics of run %s: %s", self.run_id, error)
            if message is None:
                status, message = "failed", str(error)
        try:
            self.store.finish_run(
                self.run_id,
                status,
                final_metrics=self.last_metrics,
                best_metrics=self.best_metrics,
                best_step=self.best_step,
                error=message,
            )
        except StoreError as error:
            log.error("Could not record the end of run %s: %s", self.run_id, error)
            if message is None:
                status, message = "failed", str(error)

        if status == "failed":
            self._emit(RunFailed(self.run_id, message or "", self._error_type or "StoreError"))
        else:
            duration = self._stored_duration(seconds)
            self._emit(RunFinished(self.run_id, status, self.best_metrics, self.last_metrics, self.best_step, duration))
        return RunResult(
            self.run_id,
            status,
            best_metrics=self.best_metrics,
            final_metrics=self.last_metrics,
            best_step=self.best_step,
            error=message,
            teacher_forward_passes=sum(e.forward_passes for e in self._extractions),
            teacher_cache_hits=tuple(e.cache_hit for e in self._extractions),
        )

    # Preparation

    def _prepare(self) -> None:
        config = self.config
        from engine.tasks import TASKS

        self.task = TASKS[config.task]
        self._emit(PhaseChanged("loading data", f"GLUE {self.task.title}"))
        checked_before_claim = self._loaded_splits is not None
        train_split, dev_splits = self._loaded_splits or self._load_splits(self.cancel)
        self._loaded_splits = None
        self.data_fingerprint, self.split_fingerprints = data_fingerprints(train_split, dev_splits)
        if self.checkpoint is not None and not checked_before_claim:
            # Before the teachers: changed rows miss the embedding cache and would make them run for nothing.
            self._check_same_rows(self.checkpoint.state, train_split, dev_splits, claimed=True)

        self.cancel.raise_if_cancelled()
        self.tokenizer = self._loaded_tokenizer or StudentTokenizer(
            config.student.tokenizer, config.student.max_seq_len, config.student.pair_separator, self.cancel
        )
        self._loaded_tokenizer = None
        self.cancel.raise_if_cancelled()
        teachers = self._inspect_teachers()
        self.cancel.raise_if_cancelled()

        self._split_heldout(train_split)
        self._encode(train_split, dev_splits)

        if not self.is_main:
            distributed.barrier()  # wait until rank 0 has filled the teacher cache
        self._extractions = extract_teacher_embeddings(
            teachers,
            train_split,
            max_seq_len=config.student.max_seq_len,
            batch_size=config.distillation.extraction_batch_size,
            device=self.device,
            cache=self.cache,
            trust_remote_code=config.distillation.trust_remote_code,
            sink=self._emit,
            cancel=self.cancel,
        )
        if self.group is not None and self.is_main:
            distributed.barrier()
        self._build_targets()
        self._build_student()

        baseline = majority_baseline(self.task, self.train_labels_np, {s.name: s.labels for s in self.eval_sets if s.name != "heldout"})
        self.store.set_prepared(self.run_id, parameter_count=self.parameter_count, baseline=baseline)
        self._emit(
            RunPrepared(
                run_id=self.run_id,
                parameter_count=self.parameter_count,
                teacher_names=tuple(self.teacher_labels),
                teacher_dims=tuple(e.info.hidden_size for e in self._extractions),
                baseline=baseline,
                train_rows=len(self.train_index),
                heldout_rows=len(self.eval_sets[0].rows),
                dev_rows={s.name: len(s.rows) for s in self.eval_sets[1:]},
                total_steps=self.total_steps,
                steps_per_epoch=self.steps_per_epoch,
            )
        )

    def _load_splits(self, cancel: CancellationToken | None) -> tuple[GlueSplit, dict[str, GlueSplit]]:
        data = self.config.data
        train = load_split(self.task, "train", data.glue_dir, data.train_limit, data.skip_malformed_rows, cancel)
        if cancel is not None:
            cancel.raise_if_cancelled()
        dev = {
            dev_split.prefix: load_split(self.task, dev_split.hub_split, data.glue_dir, data.dev_limit, data.skip_malformed_rows, cancel)
            for dev_split in self.task.dev_splits
        }
        if cancel is not None:
            cancel.raise_if_cancelled()
        return train, dev

    def _inspect_teachers(self) -> list[TeacherInfo]:
        infos = []
        for spec in self.config.distillation.teachers:
            self.cancel.raise_if_cancelled()
            info = inspect_teacher(spec, trust_remote_code=self.config.distillation.trust_remote_code, cancel=self.cancel)
            check_sequence_length(info, self.config.student.max_seq_len)
            infos.append(info)
        self.teacher_labels = distinct_teacher_labels(infos)
        if self.checkpoint is not None:
            # A resumed run keeps the labels of its metric names. Checkpoints of earlier versions
            # have none and were labelled by folder name and position.
            stored = self.checkpoint.state.get("teacher_labels")
            self.teacher_labels = list(stored) if stored is not None else numbered_labels([info.label for info in infos])
        # Progress lines and messages name the teachers as the metrics do.
        return [replace(info, label=label) for info, label in zip(infos, self.teacher_labels)]

    def _split_heldout(self, train: GlueSplit) -> None:
        labelled = np.flatnonzero(train.labels != -1)
        if len(labelled) < 2:
            raise LampreiaError(
                f"The training split of {self.task.title} has {len(labelled)} labelled rows; at least 2 are needed.",
                "Raise data.train_limit or check the training file.",
            )
        rng = np.random.default_rng(self.config.training.seed)
        shuffled = rng.permutation(labelled)
        n_heldout = min(max(1, round(self.config.data.heldout_fraction * len(labelled))), len(labelled) - 1)
        self.heldout_index = np.sort(shuffled[:n_heldout])
        self.train_index = np.sort(shuffled[n_heldout:])

    def _encode(self, train: GlueSplit, dev_splits: dict[str, GlueSplit]) -> None:
        self._emit(PhaseChanged("loading data", "tokenizing"))
        encoded_train = self.tokenizer.encode(train.texts_a, train.texts_b)
        self.train_rows = EncodedRows([encoded_train.ids[i] for i in self.train_index], [encoded_train.special[i] for i in self.train_index])
        heldout = EncodedRows([encoded_train.ids[i] for i in self.heldout_index], [encoded_train.special[i] for i in self.heldout_index])
        self.train_labels_np = train.labels[self.train_index]
        self.eval_sets = [EvaluationSet("heldout", heldout, train.labels[self.heldout_index])]
        for prefix, split in dev_splits.items():
            self.eval_sets.append(EvaluationSet(prefix, self.tokenizer.encode(split.texts_a, split.texts_b), split.labels))

        probe = self.tokenizer.encode([self.config.training.attention_probe])
        self.probe_ids = torch.from_numpy(probe.ids[0])[None]
        self.probe_tokens = tuple(self.tokenizer.tokens(probe.ids[0]))

        self.steps_per_epoch = math.ceil(len(self.train_index) / self.config.training.batch_size)
        if self.group is not None:
            self.steps_per_epoch //= self.group.world_size
            if self.steps_per_epoch == 0:
                raise LampreiaError(
                    f"{len(self.train_index)} training rows make fewer batches than the {self.group.world_size} processes.",
                    "Use more training rows, a smaller batch size or fewer processes.",
                )
        self.total_steps = self.steps_per_epoch * self.config.training.epochs

    def _build_targets(self) -> None:
        distillation = self.config.distillation
        targets = []
        for extraction in self._extractions:
            standardized = standardize(extraction.entry.embeddings, self.train_index)[self.train_index]
            targets.append(standardized)

        confidences = None
        # One teacher's weight is 1 whatever its confidence, so its probe would change nothing.
        if distillation.weighting == "confidence" and len(targets) > 1:
            # One call fits the probes of all teachers, so the phase has no per-teacher counter.
            self._emit(PhaseChanged("probing", f"fitting the confidence probes of {len(targets)} teacher{'s' if len(targets) != 1 else ''}"))
            confidences = probe_confidences(
                targets,
                self.train_labels_np,
                regression=self.task.is_regression,
                folds=distillation.probe_folds,
                seed=self.config.training.seed,
                cancel=self.cancel,
            )
        weights = teacher_weights(distillation, len(self.train_index), confidences)

        storage = self.device if self.device.type == "cuda" else torch.device("cpu")
        self.targets = [torch.from_numpy(t).to(torch.float16).to(storage) for t in targets]
        self.weights = torch.from_numpy(weights).to(storage)

        if self.task.is_regression:
            labels = self.train_labels_np.astype(np.float64)
            self.scaling = LabelScaling(float(labels.mean()), float(labels.std()) or 1.0)
            scaled = (labels - self.scaling.mean) / self.scaling.std
            self.train_labels = torch.from_numpy(scaled.astype(np.float32)).to(storage)
        else:
            self.scaling = LabelScaling()
            self.train_labels = torch.from_numpy(self.train_labels_np.astype(np.int64)).to(storage)

    def _build_student(self) -> None:
        config = self.config
        torch.manual_seed(config.training.seed)
        np.random.seed(config.training.seed % 2**32)

        dims = [e.info.hidden_size for e in self._extractions]
        self.model = Student(config.student, self.tokenizer.vocab_size, self.task.num_labels, dims).to(self.device)
        self.parameter_count = self.model.count_parameters()
        self.forward_model = self.model
        if self.group is not None:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(self.model, device_ids=device_ids)
        if config.training.compile:
            self.forward_model = torch.compile(self.forward_model)

        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._learning_rate_factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.augment_generator = torch.Generator().manual_seed(config.training.seed)
        self.replacement_ids = self.tokenizer.replacement_ids()

        if self.checkpoint is not None:
            self._restore(self.checkpoint)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, parameter in self.model.named_parameters():
            (decay if parameter.dim() >= 2 and "learned_filter" not in name else no_decay).append(parameter)
        groups = [
            {"params": decay, "weight_decay": self.config.training.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        lr = self.config.training.learning_rate
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(groups, lr=lr)

    def _learning_rate_factor(self, step: int) -> float:
        warmup = int(self.config.training.warmup_fraction * self.total_steps)
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    # Training

    def _train(self) -> None:
        training = self.config.training
        spe = self.steps_per_epoch
        self.eval_steps = {
            min(epoch * spe + round((j + 1) * spe / training.evals_per_epoch), (epoch + 1) * spe)
            for epoch in range(training.epochs)
            for j in range(training.evals_per_epoch)
        }
        self.log_interval = max(1, math.ceil(self.total_steps / MAX_LOGGED_STEPS))
        self._window = _StepWindow()
        self.train_lengths = self.train_rows.lengths
        self._train_started = time.perf_counter()
        self._steps_at_start = self.step

        self.model.train()
        for epoch in range(self.epoch, training.epochs):
            self.epoch = epoch
            self._emit(PhaseChanged("training", f"epoch {epoch + 1} of {training.epochs}", epoch + 1, training.epochs))
            batches = epoch_batches(self.train_lengths, training.batch_size, training.seed, epoch, training.padding)
            if self.group is not None:
                batches = distributed.shard_batches(batches, self.group)
            for batch_index in range(self.batch_in_epoch, len(batches)):
                self._check_cancelled()
                self._train_step(batches[batch_index], epoch + (batch_index + 1) / len(batches))
                self.batch_in_epoch = batch_index + 1
                self._after_step(epoch, batch_index, len(batches))
            self.batch_in_epoch = 0
        self.epoch = training.epochs

    def _train_step(self, indices: np.ndarray, epoch_position: float) -> None:
        config = self.config
        distillation = config.distillation
        pad_to = config.student.max_seq_len if config.training.padding == "max_length" else None
        batch = collate(self.train_rows, indices, self.tokenizer.pad_id, pad_to=pad_to).to(self.device)
        input_ids = augment_tokens(
            batch.input_ids,
            batch.attention_mask,
            batch.special_mask,
            mask_id=self.tokenizer.mask_id,
            replacement_ids=self.replacement_ids,
            mask_fraction=distillation.mask_fraction,
            replace_fraction=distillation.replace_fraction,
            generator=self.augment_generator,
        )
        rows = torch.from_numpy(indices).to(self.targets[0].device)
        targets = [t[rows].to(self.device, non_blocking=True).float() for t in self.targets]
        weights = self.weights[rows].to(self.device, non_blocking=True)
        labels = self.train_labels[rows].to(self.device, non_blocking=True)

        with autocast(self.device, self.amp_dtype):
            output = self.forward_model(input_ids, batch.attention_mask)
        task = task_loss(output.logits, labels, self.task.is_regression)
        distances = teacher_distances(output.projections, targets, distillation.distill_loss)
        total, distill = combine_losses(task, distances, weights, distillation.alpha)

        # One device sync per step: the values are needed for the finiteness check anyway.
        summary = torch.cat([torch.stack([total, task, distill]), distances.mean(dim=0), weights.mean(dim=0)])
        values = summary.detach().float().cpu().tolist()
        teacher_count = len(self.teacher_labels)
        losses, mean_weights = values[: 3 + teacher_count], values[3 + teacher_count :]
        if self.group is not None:
            self._agree_to_continue(losses)
        self._check_finite(losses)

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if config.training.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.training.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1

        tokens = int(self.train_lengths[indices].sum())
        self._window.add(losses, mean_weights, len(indices), tokens, epoch_position)

    def _check_cancelled(self) -> None:
        # In a torchrun job the ranks agree on cancellation inside the step instead.
        if self.group is None:
            self.cancel.raise_if_cancelled()

    def _agree_to_continue(self, losses: list[float]) -> None:
        """Stop every rank at the same step when rank 0 is cancelled or any rank's loss is not finite.

        One all-reduce per step; without it the other ranks would wait forever in the next
        gradient all-reduce.
        """
        locally_finite = all(map(math.isfinite, losses))
        cancelled, diverged = distributed.any_rank([self.cancel.cancelled, not locally_finite], self.device)
        if diverged and locally_finite:
            raise TrainingDivergedError(self.step + 1, "loss of another process", float("nan"))
        if cancelled and locally_finite:
            raise RunCancelled()

    def _check_finite(self, values: list[float]) -> None:
        """Raise on the first non-finite term, components before the sums they feed."""
        total, task, distill, *per_teacher = values
        terms = [("task", task)]
        terms += [(f"distillation ({label})", value) for label, value in zip(self.teacher_labels, per_teacher)]
        terms += [("distillation", distill), ("total", total)]
        for name, value in terms:
            if not math.isfinite(value):
                raise TrainingDivergedError(self.step + 1, name, value)

    def _after_step(self, epoch: int, batch_index: int, batches_in_epoch: int) -> None:
        if not self.is_main:
            return
        if self.step % self.log_interval == 0 or self.step in self.eval_steps:
            self._log_window()
        if self.step in self.eval_steps:
            self._evaluate_and_checkpoint()
        elif self.step % self.config.training.checkpoint_every_steps == 0:
            self._save_resume_checkpoint()
        self._flush_metrics()
        if self._window.steps == 0:
            # Evaluations, checkpoints and metric writes are not training: speeds exclude them.
            self._window.started = time.perf_counter()

    def _log_window(self) -> None:
        window = self._window
        if window.steps == 0:
            return
        seconds = max(time.perf_counter() - window.started, 1e-9)
        losses = {"total": window.mean(0), "task": window.mean(1), "distillation": window.mean(2)}
        for k, label in enumerate(self.teacher_labels):
            losses[f"distillation/{label}"] = window.mean(3 + k)
        weights = {label: window.weight_mean(k) for k, label in enumerate(self.teacher_labels)}
        lr = self.scheduler.get_last_lr()[0]
        elapsed = time.perf_counter() - self._train_started
        event = StepLogged(
            step=self.step,
            epoch=window.epoch,
            losses=losses,
            teacher_weights=weights,
            learning_rate=lr,
            samples_per_second=window.samples / seconds,
            tokens_per_second=window.tokens / seconds,
            elapsed_seconds=elapsed,
            window_seconds=seconds,
        )
        self._emit(event)

        points = [MetricPoint(self.step, window.epoch, f"train/loss_{name}", value) for name, value in losses.items()]
        points += [MetricPoint(self.step, window.epoch, f"train/weight/{label}", value) for label, value in weights.items()]
        points += [
            MetricPoint(self.step, window.epoch, "train/learning_rate", lr),
            MetricPoint(self.step, window.epoch, "train/samples_per_second", event.samples_per_second),
            MetricPoint(self.step, window.epoch, "train/tokens_per_second", event.tokens_per_second),
        ]
        self._pending.extend(points)

        done = self.step - self._steps_at_start
        remaining = self.total_steps - self.step
        eta = elapsed / done * remaining if done else None
        self._emit(Progress("training", self.step, self.total_steps, elapsed, eta))
        self._window = _StepWindow()

    def _evaluate_and_checkpoint(self) -> None:
        self._emit(PhaseChanged("evaluating", f"step {self.step}"))
        batch_size = min(2 * self.config.training.batch_size, 256)
        metrics = evaluate(
            self.model,
            self.task,
            self.eval_sets,
            batch_size=batch_size,
            device=self.device,
            pad_id=self.tokenizer.pad_id,
            amp_dtype=self.amp_dtype,
            scaling=self.scaling,
        )
        epoch = self.step / self.steps_per_epoch
        score = metrics.get(f"heldout/{self.task.primary_metric}", -math.inf)
        is_best = score > self.best_score or self.best_step is None
        self.last_metrics = metrics
        if is_best:
            previous = (self.best_score, self.best_step, self.best_metrics)
            self.best_score, self.best_step, self.best_metrics = score, self.step, dict(metrics)
            try:
                self._save_best_checkpoint()
            except BaseException:
                # The run records the best step and metrics when it ends. They must be those of
                # the best checkpoint on disk, so a failed write (a full disk) keeps the earlier one.
                self.best_score, self.best_step, self.best_metrics = previous
                raise

        self._pending.extend(MetricPoint(self.step, epoch, name, value) for name, value in metrics.items() if math.isfinite(value))
        self._emit(EvaluationLogged(self.step, epoch, metrics, is_best))
        self._capture_attention()
        self._save_resume_checkpoint()
        self._emit(PhaseChanged("training", f"epoch {self.epoch + 1} of {self.config.training.epochs}", self.epoch + 1, self.config.training.epochs))

    def _capture_attention(self) -> None:
        ids = self.probe_ids.to(self.device)
        mask = torch.ones_like(ids)
        maps = self.model.mixing_matrices(ids, mask)[0].float().cpu().numpy()  # (layers, heads, T, T)
        self.store.log_attention(self.run_id, AttentionSnapshot(self.step, self.probe_tokens, maps))
        self._emit(AttentionCaptured(self.step, self.probe_tokens, maps, self.config.student.mixer))

    # Checkpoints

    def _save_best_checkpoint(self) -> None:
        folder = self.store.artifact_dir(self.run_id)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        state = self._checkpoint_state()
        write_checkpoint(folder / "best.safetensors", tensors, state)
        (folder / "best.json").write_text(self.config.to_json(), encoding="utf-8")
        self.store.log_artifact(self.run_id, "best", folder / "best.safetensors", self.step)

    def _save_resume_checkpoint(self) -> None:
        folder = self.store.artifact_dir(self.run_id)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optimizer_state, optimizer_json = optimizer_tensors(self.optimizer)
        tensors.update(optimizer_state)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.augment"] = self.augment_generator.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        state = self._checkpoint_state()
        state.update(
            optimizer=optimizer_json,
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
            best_score=self.best_score if math.isfinite(self.best_score) else None,
        )
        self._flush_metrics(force=True)
        size = write_checkpoint(folder / "last.safetensors", tensors, state)
        self.store.log_artifact(self.run_id, "last", folder / "last.safetensors", self.step)
        self.store.set_checkpoint(self.run_id, self.step, self.best_step, self.best_metrics)
        log.debug("Saved resume checkpoint of run %d at step %d (%d bytes)", self.run_id, self.step, size)

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_step": self.best_step,
            "best_metrics": self.best_metrics,
            "last_metrics": self.last_metrics,
            "config": self.config.to_dict(),
            "vocab_size": self.tokenizer.vocab_size,
            "num_labels": self.task.num_labels,
            "teachers": self.teacher_labels,
            "teacher_dims": [e.info.hidden_size for e in self._extractions],
            "teacher_labels": self.teacher_labels,
            "label_scaling": [self.scaling.mean, self.scaling.std],
            "data_fingerprint": self.data_fingerprint,
            "split_fingerprints": self.split_fingerprints,
        }

    def _check_same_rows(self, state: dict[str, Any], train: GlueSplit, dev: dict[str, GlueSplit], claimed: bool) -> None:
        """Reject a resume on other GLUE rows than the run trained on before it stopped."""
        # Checkpoints written before the fingerprint existed have none, and resume unchecked.
        fingerprint, per_split = data_fingerprints(train, dev)
        if state.get("data_fingerprint", fingerprint) == fingerprint:
            return
        source = self.config.data.glue_dir or "the Hugging Face Hub"
        changed = ""
        if "split_fingerprints" in state:  # checkpoints of earlier versions have only the total
            sources = {"train": train.source, **{name: split.source for name, split in dev.items()}}
            names = [name for name, value in per_split.items() if state["split_fingerprints"].get(name) != value]
            changed = f" Changed: {', '.join(f'the {name} split ({sources[name]})' for name in names)}."
        unchanged_note = "" if claimed else f"Run {self.run_id} is left as it was. "
        raise CheckpointError(
            f"The GLUE rows that run {self.run_id} reads from {source} are not those it trained on before it stopped "
            f"(the files changed since), so its second part would train on other data.{changed}",
            f"{unchanged_note}Put the original files back and resume, or train anew on the current rows "
            f"(lampreia run --from-run {self.run_id}, or 'Run again' in the workbench).",
        )

    def _restore(self, checkpoint: LoadedCheckpoint) -> None:
        state = checkpoint.state
        if RunConfig.from_dict(state.get("config", {})) != self.config:
            raise CheckpointError("The resume checkpoint was written with a different config than the run's.", "Start the run again.")
        model_state = {k.removeprefix("model."): v for k, v in checkpoint.tensors.items() if k.startswith("model.")}
        try:
            self.model.load_state_dict(model_state)
            load_optimizer_tensors(self.optimizer, checkpoint.tensors, state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"The resume checkpoint does not fit the student: {error}.", "Start the run again.") from None

        torch.set_rng_state(checkpoint.tensors["rng.torch"])
        self.augment_generator.set_state(checkpoint.tensors["rng.augment"])
        if self.device.type == "cuda" and "rng.cuda" in checkpoint.tensors:
            torch.cuda.set_rng_state(checkpoint.tensors["rng.cuda"], self.device)
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.best_step = state["best_step"]
        self.best_metrics = dict(state["best_metrics"])
        self.last_metrics = dict(state["last_metrics"])
        self.best_score = state["best_score"] if state.get("best_score") is not None else -math.inf
        self.store.discard_after_step(self.run_id, self.step)
        log.info("Run %d resumes at step %d (epoch %d, batch %d)", self.run_id, self.step, self.epoch, self.batch_in_epoch)

    # Metrics

    def _flush_metrics(self, force: bool = False) -> None:
        if self.run_id is None or not self._pending:
            return
        if not force and time.monotonic() - self._last_flush < METRIC_FLUSH_SECONDS:
            return
        points, self._pending = self._pending, []
        self.store.log_metrics(self.run_id, points)
        self._last_flush = time.monotonic()
        self._last_heartbeat = self._last_flush


class _StepWindow:
    """Sums over the steps since the last log line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps = 0
        self.samples = 0
        self.tokens = 0
        self.epoch = 0.0
        self._values: list[float] = []
        self._weights: list[float] = []

    def add(self, values: list[float], weights: list[float], samples: int, tokens: int, epoch: float) -> None:
        if not self._values:
            self._values = [0.0] * len(values)
            self._weights = [0.0] * len(weights)
        self._values = [a + b for a, b in zip(self._values, values)]
        self._weights = [a + b for a, b in zip(self._weights, weights)]
        self.steps += 1
        self.samples += samples
        self.tokens += tokens
        self.epoch = epoch

    def mean(self, index: int) -> float:
        return self._values[index] / self.steps

    def weight_mean(self, index: int) -> float:
        return self._weights[index] / self.steps
