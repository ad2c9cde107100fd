"""Teacher weights, losses and token augmentation."""

import numpy as np
import pytest
import torch

from engine.augmentation import augment_tokens
from engine.config import DistillationConfig
from engine.distillation import combine_losses, probe_confidences, teacher_distances, teacher_weights


def _teachers(rows=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    informative = rng.normal(size=(rows, 16)) + 2.0 * labels[:, None]
    noise = rng.normal(size=(rows, 16))
    return labels, informative, noise


def test_confidence_weights_sum_to_one():
    labels, informative, noise = _teachers()
    confidences = probe_confidences([informative, noise], labels, regression=False, folds=5, seed=0)

    weights = teacher_weights(DistillationConfig(teachers=("good", "random")), len(labels), confidences)

    assert weights.shape == (400, 2)
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_confidence_favours_the_teacher_whose_probe_is_right():
    labels, informative, noise = _teachers()
    confidences = probe_confidences([informative, noise], labels, regression=False, folds=5, seed=0)
    weights = teacher_weights(DistillationConfig(teachers=("good", "random")), len(labels), confidences)

    assert confidences[:, 0].mean() > 0.9
    assert 0.35 < confidences[:, 1].mean() < 0.65
    assert weights[:, 0].mean() > weights[:, 1].mean()
    assert (weights[:, 0] > weights[:, 1]).mean() > 0.9


def test_confidence_for_regression_prefers_the_accurate_teacher():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 5, 300)
    good = np.c_[scores + rng.normal(scale=0.1, size=300), rng.normal(size=(300, 7))]
    bad = rng.normal(size=(300, 8))

    confidences = probe_confidences([good, bad], scores, regression=True, folds=5, seed=0)

    assert confidences.shape == (300, 2)
    assert np.all(confidences <= 0)
    assert confidences[:, 0].mean() > confidences[:, 1].mean()


def test_probes_are_cross_validated():
    # Pure noise with more dimensions than rows per fold: an in-sample probe would be near-perfect.
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 120)
    noise = rng.normal(size=(120, 200))

    confidences = probe_confidences([noise], labels, regression=False, folds=5, seed=0)

    assert confidences.mean() < 0.7


def test_temperature_sharpens_weights():
    confidences = np.array([[0.9, 0.1]], dtype=np.float32)
    soft = teacher_weights(DistillationConfig(teachers=("a", "b"), temperature=10.0), 1, confidences)
    sharp = teacher_weights(DistillationConfig(teachers=("a", "b"), temperature=0.05), 1, confidences)

    assert soft[0, 0] < 0.6
    assert sharp[0, 0] > 0.99


def test_uniform_and_fixed_weights():
    uniform = teacher_weights(DistillationConfig(teachers=("a", "b", "c"), weighting="uniform"), 4)
    fixed = teacher_weights(DistillationConfig(teachers=("a", "b"), weighting="fixed", fixed_weights=(3, 1)), 2)

    assert np.allclose(uniform, 1 / 3)
    assert np.allclose(fixed, [[0.75, 0.25], [0.75, 0.25]])


def test_distances_and_combined_loss():
    projections = [torch.zeros(2, 3), torch.ones(2, 3)]
    targets = [torch.ones(2, 3), torch.ones(2, 3)]
    distances = teacher_distances(projections, targets, "mse")
    weights = torch.tensor([[0.5, 0.5], [1.0, 0.0]])

    total, distill = combine_losses(torch.tensor(2.0), distances, weights, alpha=0.7)

    assert distances.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert float(distill) == pytest.approx(0.75)
    assert float(total) == pytest.approx(0.7 * 2.0 + 0.3 * 0.75)


def test_cosine_distance():
    distances = teacher_distances([torch.tensor([[1.0, 0.0]])], [torch.tensor([[0.0, 2.0]])], "cosine")

    assert float(distances[0, 0]) == pytest.approx(1.0)


def _augment(ids, attention, special, seed=0, **fractions):
    return augment_tokens(
        ids,
        attention,
        special,
        mask_id=0,
        replacement_ids=torch.arange(10, 20),
        mask_fraction=fractions.get("mask", 0.10),
        replace_fraction=fractions.get("replace", 0.05),
        generator=torch.Generator().manual_seed(seed),
    )


def test_augmentation_rates_are_ten_and_five_percent():
    rows, length = 2000, 20
    ids = torch.full((rows, length), 100)
    attention = torch.ones(rows, length, dtype=torch.long)
    special = torch.zeros(rows, length, dtype=torch.bool)

    augmented = _augment(ids, attention, special)

    masked = (augmented == 0).float().mean().item()
    replaced = ((augmented >= 10) & (augmented < 20)).float().mean().item()
    assert masked == pytest.approx(0.10, abs=0.01)
    assert replaced == pytest.approx(0.05, abs=0.01)


def test_augmentation_keeps_padding_and_special_tokens():
    ids = torch.full((500, 6), 100)
    attention = torch.tensor([[1, 1, 1, 1, 0, 0]]).repeat(500, 1)
    special = torch.tensor([[True, False, False, True, False, False]]).repeat(500, 1)

    augmented = _augment(ids, attention, special, mask=0.4, replace=0.3)

    assert torch.all(augmented[:, [0, 3, 4, 5]] == 100)
    assert (augmented[:, 1:3] != 100).any()


def test_augmentation_rounds_counts_stochastically_for_short_rows():
    # Five real tokens: 10% is half a token, so about half of the rows get one mask.
    ids = torch.full((4000, 5), 100)
    attention = torch.ones(4000, 5, dtype=torch.long)
    special = torch.zeros(4000, 5, dtype=torch.bool)

    augmented = _augment(ids, attention, special, replace=0.0)

    assert (augmented == 0).float().mean().item() == pytest.approx(0.10, abs=0.01)


def test_augmentation_is_reproducible_from_the_generator():
    ids = torch.randint(30, 90, (50, 12))
    attention = torch.ones(50, 12, dtype=torch.long)
    special = torch.zeros(50, 12, dtype=torch.bool)

    assert torch.equal(_augment(ids, attention, special, seed=3), _augment(ids, attention, special, seed=3))
    assert not torch.equal(_augment(ids, attention, special, seed=3), _augment(ids, attention, special, seed=4))


@pytest.mark.filterwarnings("ignore:Number of classes in training fold")  # the reference's own warning
@pytest.mark.parametrize("labels", [np.repeat([0, 1, 2], 20), np.array([0] * 30 + [1] * 29 + [2])], ids=["stratified", "class-with-one-row"])
def test_probe_matches_cross_val_predict(labels):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.distillation import _probe_one

    embeddings = np.random.default_rng(0).normal(size=(len(labels), 6)) + labels[:, None]
    counts = np.bincount(labels)
    splitter = StratifiedKFold(5, shuffle=True, random_state=3) if counts.min() >= 2 else KFold(5, shuffle=True, random_state=3)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    reference = cross_val_predict(probe, embeddings, labels, cv=splitter, method="predict_proba")[np.arange(len(labels)), labels]

    assert np.allclose(_probe_one(embeddings, labels, regression=False, folds=5, seed=3), reference)


def test_regression_probe_matches_cross_val_predict():
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from engine.distillation import _probe_one

    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(40, 5))
    scores = embeddings @ rng.normal(size=5)
    splitter = KFold(5, shuffle=True, random_state=3)
    predicted = cross_val_predict(make_pipeline(StandardScaler(), Ridge(alpha=1.0)), embeddings, scores, cv=splitter)

    assert np.allclose(_probe_one(embeddings, scores, regression=True, folds=5, seed=3), -((predicted - scores) ** 2))


def test_probe_stops_between_folds():
    from engine.errors import RunCancelled

    class CancelAfterFirstFold:
        checks = 0

        def raise_if_cancelled(self):
            self.checks += 1
            if self.checks > 1:
                raise RunCancelled()

    cancel = CancelAfterFirstFold()
    labels = np.repeat([0, 1], 30)
    embeddings = np.random.default_rng(0).normal(size=(60, 4))

    with pytest.raises(RunCancelled):
        probe_confidences([embeddings], labels, regression=False, folds=5, seed=0, cancel=cancel)
    assert cancel.checks == 2


@pytest.mark.parametrize("weighting", ["confidence", "uniform", "fixed"])
def test_one_teacher_weighs_one(weighting):
    config = DistillationConfig(teachers=("a",), weighting=weighting, fixed_weights=(3.0,) if weighting == "fixed" else ())

    weights = teacher_weights(config, 4)

    assert weights.shape == (4, 1)
    assert np.all(weights == 1.0)
