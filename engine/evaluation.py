"""Scoring the student on the held-out slice and the GLUE dev splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.devices import autocast
from engine.distillation import task_loss
from engine.student import Student
from engine.tasks import GlueTask, compute_metrics
from engine.tokenization import EncodedRows, collate


@dataclass
class EvaluationSet:
    """Encoded rows and gold labels of one split; ``name`` prefixes its metrics (``dev``, ``heldout``)."""

    name: str
    rows: EncodedRows
    labels: np.ndarray


@dataclass(frozen=True)
class LabelScaling:
    """Standardization of STS-B scores: the student regresses (y − mean) / std."""

    mean: float = 0.0
    std: float = 1.0


@torch.no_grad()
def predict(
    model: Student,
    rows: EncodedRows,
    *,
    batch_size: int,
    device: torch.device,
    pad_id: int,
    amp_dtype: torch.dtype | None,
) -> np.ndarray:
    """Return the classifier outputs (N, num_labels) in row order; rows are batched by length."""
    order = np.argsort(rows.lengths, kind="stable")
    outputs: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate(rows, indices, pad_id).to(device)
        with autocast(device, amp_dtype):
            logits = model(batch.input_ids, batch.attention_mask, with_projections=False).logits
        logits = logits.float().cpu().numpy()
        if outputs is None:
            outputs = np.zeros((len(rows), logits.shape[1]), dtype=np.float32)
        outputs[indices] = logits
    return outputs if outputs is not None else np.zeros((0, 1), dtype=np.float32)


def evaluate(
    model: Student,
    task: GlueTask,
    sets: list[EvaluationSet],
    *,
    batch_size: int,
    device: torch.device,
    pad_id: int,
    amp_dtype: torch.dtype | None,
    scaling: LabelScaling,
) -> dict[str, float]:
    """Return ``{set}/{metric}`` for every set, plus ``{set}/loss_task`` on the scored rows."""
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    try:
        for evaluation_set in sets:
            if len(evaluation_set.rows) == 0:
                continue
            outputs = predict(model, evaluation_set.rows, batch_size=batch_size, device=device, pad_id=pad_id, amp_dtype=amp_dtype)
            labels = evaluation_set.labels
            scored = labels != -1
            if task.is_regression:
                predictions = outputs[:, 0] * scaling.std + scaling.mean
                target = torch.from_numpy(((labels[scored] - scaling.mean) / scaling.std).astype(np.float32))
            else:
                predictions = outputs.argmax(axis=1)
                target = torch.from_numpy(labels[scored].astype(np.int64))
            for name, value in compute_metrics(task, predictions, labels).items():
                metrics[f"{evaluation_set.name}/{name}"] = value
            if scored.any():
                loss = task_loss(torch.from_numpy(outputs[scored]), target, task.is_regression)
                metrics[f"{evaluation_set.name}/loss_task"] = float(loss)
    finally:
        model.train(was_training)
    return metrics
