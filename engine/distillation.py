"""The distillation objective and the per-teacher weights.

    L = α·L_task + (1 − α)·L_distill,   L_distill = mean_i Σ_k w_ik · d(proj_k(s_i), t_ik)

with d the mean squared error (or cosine distance) to the teacher embedding t_ik standardized per
dimension with training-split statistics, and L_task cross-entropy (classification) or the squared
error of the standardized score (STS-B regression).

Teacher weights w_ik:
- ``uniform``: 1/K;
- ``fixed``: the user's weights, normalised;
- ``confidence``: a probe per teacher (logistic regression on its cached training embeddings, or
  ridge regression for STS-B) is cross-validated so that no row is judged by a probe fitted on it;
  c_ik is the probe's probability of the gold label (regression: minus the squared error), and
  w_ik = softmax_k(c_ik / τ).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.config import DistillationConfig
from engine.events import CancellationToken

log = logging.getLogger(__name__)


def probe_confidences(
    teacher_embeddings: list[np.ndarray],
    labels: np.ndarray,
    *,
    regression: bool,
    folds: int,
    seed: int,
    cancel: CancellationToken | None = None,
) -> np.ndarray:
    """Return c (N, K): each teacher's out-of-fold confidence in each row's gold label.

    ``cancel`` is checked before each fold of each teacher's probe; one fold's fit is the unit of
    work that cannot be interrupted.
    """
    columns = [_probe_one(embeddings, labels, regression, folds, seed, cancel) for embeddings in teacher_embeddings]
    return np.stack(columns, axis=1).astype(np.float32)


def _probe_one(
    embeddings: np.ndarray,
    labels: np.ndarray,
    regression: bool,
    folds: int,
    seed: int,
    cancel: CancellationToken | None = None,
) -> np.ndarray:
    if regression:
        splitter = KFold(n_splits=min(folds, len(labels)), shuffle=True, random_state=seed)
        probe = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
        predicted = _out_of_fold(probe, embeddings, labels, splitter, cancel, classes=None)
        return -((predicted - labels) ** 2)

    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        # A probe cannot be fitted on a single class; every teacher is then equally right.
        return np.ones(len(labels), dtype=np.float64)
    usable_folds = int(min(folds, counts.min()))
    if usable_folds >= 2:
        splitter = StratifiedKFold(n_splits=usable_folds, shuffle=True, random_state=seed)
    else:
        # TODO: no stratified split exists when a class has a single row. Plain K-fold then leaves
        # that class out of some training folds, so its rows look hard for every teacher.
        splitter = KFold(n_splits=min(folds, len(labels)), shuffle=True, random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    probabilities = _out_of_fold(probe, embeddings, labels, splitter, cancel, classes=classes)
    column = np.searchsorted(classes, labels)
    return probabilities[np.arange(len(labels)), column]


def _out_of_fold(probe, embeddings: np.ndarray, labels: np.ndarray, splitter, cancel: CancellationToken | None, classes: np.ndarray | None) -> np.ndarray:
    """Out-of-fold predictions as sklearn's cross_val_predict makes them, with ``cancel`` checked between folds.

    With ``classes`` the result is predict_proba over all of them (N, C); a class missing from a
    fold's training rows gets probability 0 there. Without, it is predict (N,).
    """
    predicted = np.zeros((len(labels), len(classes))) if classes is not None else np.zeros(len(labels))
    for train_rows, held_out_rows in splitter.split(embeddings, labels):
        if cancel is not None:
            cancel.raise_if_cancelled()
        fitted = clone(probe).fit(embeddings[train_rows], labels[train_rows])
        if classes is None:
            predicted[held_out_rows] = fitted.predict(embeddings[held_out_rows])
        else:
            seen = np.searchsorted(classes, fitted.classes_)
            predicted[np.ix_(held_out_rows, seen)] = fitted.predict_proba(embeddings[held_out_rows])
    return predicted


def teacher_weights(
    config: DistillationConfig,
    n_rows: int,
    confidences: np.ndarray | None = None,
) -> np.ndarray:
    """Return w (N, K) for the configured weighting; every row sums to 1."""
    k = len(config.teachers)
    if config.weighting == "uniform":
        return np.full((n_rows, k), 1.0 / k, dtype=np.float32)
    if config.weighting == "fixed":
        return np.tile(np.asarray(config.normalized_fixed_weights, dtype=np.float32), (n_rows, 1))
    if k == 1:
        return np.ones((n_rows, 1), dtype=np.float32)
    if confidences is None:
        raise ValueError("confidence weighting needs the probe confidences")
    logits = torch.from_numpy(np.asarray(confidences, dtype=np.float32)) / config.temperature
    return logits.softmax(dim=1).numpy()


def teacher_distances(projections: list[torch.Tensor], targets: list[torch.Tensor], kind: str) -> torch.Tensor:
    """Per-row, per-teacher distance (B, K) between projected student and teacher embeddings."""
    columns = []
    for projected, target in zip(projections, targets):
        projected = projected.float()
        if kind == "cosine":
            columns.append(1.0 - F.cosine_similarity(projected, target, dim=-1))
        else:
            columns.append(((projected - target) ** 2).mean(dim=-1))
    return torch.stack(columns, dim=1)


def task_loss(logits: torch.Tensor, labels: torch.Tensor, regression: bool) -> torch.Tensor:
    if regression:
        return F.mse_loss(logits.float().squeeze(-1), labels.float())
    return F.cross_entropy(logits.float(), labels)


def combine_losses(task: torch.Tensor, distances: torch.Tensor, weights: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (total, distillation) losses for the batch."""
    distill = (weights * distances).sum(dim=1).mean()
    return alpha * task + (1.0 - alpha) * distill, distill
