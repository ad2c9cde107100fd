"""End-to-end distillation runs on real GLUE rows with real (tiny and pretrained) teachers."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import engine.trainer as trainer_module
from engine.cli import format_metrics_summary
from engine.config import RunConfig
from engine.embedding_cache import EmbeddingCache
from engine.events import (
    AttentionCaptured,
    CancellationToken,
    EvaluationLogged,
    PhaseChanged,
    RunFailed,
    RunFinished,
    RunPrepared,
    RunStarted,
    StepLogged,
)
from engine.run_store import RunStore
from engine.trainer import resume_distillation, run_distillation


def small_config(glue_dir, **sections) -> RunConfig:
    data = {
        "task": "sst2",
        "data": {"glue_dir": str(glue_dir), "train_limit": 240, "dev_limit": 120},
        "student": {"tokenizer": "minilm", "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 64},
        "distillation": {"teachers": ["minilm"]},
        "training": {"epochs": 2, "batch_size": 32, "evals_per_epoch": 1, "attention_probe": "A fine, funny film."},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return RunConfig.from_dict(data)


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite3")
    yield store
    store.close()


def test_minilm_run_records_everything(glue_dir, store):
    recorder = Recorder()

    result = run_distillation(small_config(glue_dir), store, recorder)

    assert result.status == "finished", result.error
    record = store.get_run(result.run_id)
    assert record.status == "finished"
    assert record.parameter_count > 0
    assert 0.4 < record.baseline["dev/accuracy"] < 0.6
    assert "dev/accuracy" in record.best_metrics and "heldout/accuracy" in record.best_metrics
    assert record.best_step is not None

    series = store.metric_series(result.run_id)
    for name in ("train/loss_total", "train/loss_task", "train/loss_distillation", "train/loss_distillation/minilm", "train/weight/minilm", "dev/accuracy"):
        assert len(series[name][0]) > 0, name
    assert np.allclose(series["train/weight/minilm"][1], 1.0)
    assert all(np.isfinite(values).all() for _, values in series.values())

    snapshot = store.attention_snapshot(result.run_id)
    tokens = snapshot.tokens
    assert tokens[0] == "[CLS]" and "funny" in tokens
    assert snapshot.maps.shape == (2, 4, len(tokens), len(tokens))

    artifacts = store.artifacts(result.run_id)
    assert artifacts["best"][0].is_file()
    assert artifacts["last"][0].is_file()
    assert (artifacts["best"][0].parent / "best.json").is_file()

    kinds = [type(e) for e in recorder.events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert RunPrepared in kinds and StepLogged in kinds and EvaluationLogged in kinds and AttentionCaptured in kinds
    phases = {e.phase for e in recorder.of(PhaseChanged)}
    assert {"loading data", "extracting", "training", "evaluating"} <= phases
    assert "probing" not in phases  # one teacher's weight is 1 without a probe


def test_three_tiny_teachers_and_minilm_then_cache_hit(glue_dir, tiny_teachers, gpt2_tokenizer_dir, tmp_path, monkeypatch):
    config = small_config(
        glue_dir,
        task="mrpc",
        data={"train_limit": 96, "dev_limit": 48},
        student={"tokenizer": str(gpt2_tokenizer_dir), "max_seq_len": 96},
        distillation={"teachers": [str(tiny_teachers["gpt2"]), str(tiny_teachers["distilbert"]), str(tiny_teachers["roberta"]), "minilm"]},
        training={"epochs": 1},
    )
    cache = EmbeddingCache(tmp_path / "cache")
    store = RunStore(tmp_path / "runs.sqlite3")

    first = run_distillation(config, store, cache=cache)

    assert first.status == "finished", first.error
    assert first.teacher_cache_hits == (False, False, False, False)
    assert first.teacher_forward_passes > 0
    series = store.metric_series(first.run_id)
    weight_names = sorted(name for name in series if name.startswith("train/weight/"))
    assert weight_names == ["train/weight/minilm", "train/weight/tiny-distilbert", "train/weight/tiny-gpt2", "train/weight/tiny-roberta"]
    weights = np.stack([series[name][1] for name in weight_names])
    assert np.allclose(weights.sum(axis=0), 1.0, atol=1e-4)
    assert not np.allclose(weights, 0.25)  # fitted confidence probes, not uniform weights
    assert "dev/f1" in store.get_run(first.run_id).best_metrics

    def no_teacher_allowed(*args, **kwargs):
        raise AssertionError("a teacher was loaded although its embeddings are cached")

    monkeypatch.setattr("engine.teacher_targets.TeacherEncoder", no_teacher_allowed)
    second = run_distillation(config, store, cache=cache)

    assert second.status == "finished", second.error
    assert second.teacher_forward_passes == 0
    assert second.teacher_cache_hits == (True, True, True, True)


def test_stsb_regression_reports_correlations(glue_dir, store):
    config = small_config(glue_dir, task="stsb", data={"train_limit": 160, "dev_limit": 80})

    result = run_distillation(config, store)

    assert result.status == "finished", result.error
    best = store.get_run(result.run_id).best_metrics
    assert {"dev/pearson", "dev/spearman", "heldout/pearson"} <= set(best)
    assert all(-1.0 <= best[name] <= 1.0 for name in ("dev/pearson", "dev/spearman"))
    assert store.get_run(result.run_id).baseline == {"dev/pearson": 0.0, "dev/spearman": 0.0}
    summary = format_metrics_summary(store.get_run(result.run_id))
    assert "(baseline predicting the training mean: 0.0000)" in summary
    assert "majority" not in summary
    assert "the baseline's correlations are 0 by convention" in summary


@pytest.mark.parametrize("mixer", ["softmax", "spectral"])
def test_other_mixers_train(glue_dir, store, mixer):
    config = small_config(glue_dir, student={"mixer": mixer, "embedding": "prime-harmonic+learned"}, training={"epochs": 1})

    result = run_distillation(config, store)

    assert result.status == "finished", result.error
    assert store.attention_snapshot(result.run_id).maps.shape[:2] == (2, 4)


def test_cancel_keeps_logged_curves(glue_dir, store):
    cancel = CancellationToken()
    recorder = Recorder()

    def sink(event):
        recorder(event)
        if isinstance(event, StepLogged) and event.step >= 3:
            cancel.cancel()

    result = run_distillation(small_config(glue_dir, training={"epochs": 3}), store, sink, cancel)

    assert result.status == "cancelled"
    record = store.get_run(result.run_id)
    assert record.status == "cancelled"
    assert record.error is None
    assert len(store.metric_series(result.run_id)["train/loss_total"][0]) >= 3
    assert recorder.events[-1] == RunFinished(result.run_id, "cancelled", result.best_metrics, result.final_metrics, result.best_step, recorder.events[-1].duration_seconds)


def test_nan_loss_fails_with_step_and_term(glue_dir, store, monkeypatch):
    calls = {"count": 0}
    original = trainer_module.task_loss

    def failing_task_loss(logits, labels, regression):
        calls["count"] += 1
        loss = original(logits, labels, regression)
        return loss * float("nan") if calls["count"] == 4 else loss

    monkeypatch.setattr(trainer_module, "task_loss", failing_task_loss)
    recorder = Recorder()

    result = run_distillation(small_config(glue_dir), store, recorder)

    assert result.status == "failed"
    assert "step 4" in result.error and "the task loss is nan" in result.error
    assert "learning rate" in result.error
    record = store.get_run(result.run_id)
    assert record.status == "failed"
    assert record.error == result.error
    assert all(np.isfinite(values).all() for _, values in store.metric_series(result.run_id).values())
    assert isinstance(recorder.events[-1], RunFailed)


def test_missing_teacher_folder_records_no_run(glue_dir, store, tmp_path):
    config = small_config(glue_dir, distillation={"teachers": [str(tmp_path / "missing-model")]})

    result = run_distillation(config, store)

    assert result.status == "failed"
    assert "does not exist or is not a folder" in result.error
    assert result.run_id is None
    assert store.list_runs() == []


def _model_folder(tmp_path, name: str, files: dict[str, bytes]) -> Path:
    """A local teacher folder with ``files`` (name to contents) and nothing else."""
    folder = tmp_path / name
    folder.mkdir()
    for file_name, contents in files.items():
        (folder / file_name).write_bytes(contents)
    return folder


BERT_CONFIG = b'{"model_type": "bert", "hidden_size": 32}'


def test_teacher_without_config_not_recorded(glue_dir, store, tmp_path):
    empty = _model_folder(tmp_path, "empty-model", {})
    config = small_config(glue_dir, distillation={"teachers": [str(empty)]})

    result = run_distillation(config, store)

    assert result.status == "failed"
    assert result.run_id is None
    assert f"The teacher folder {empty} has no config.json" in result.error
    assert store.list_runs() == []


def test_teacher_without_weights_not_recorded(glue_dir, store, tmp_path):
    weightless = _model_folder(tmp_path, "weightless-model", {"config.json": BERT_CONFIG, "pytorch_model.bin": b"pickled"})
    config = small_config(glue_dir, distillation={"teachers": [str(weightless)]})

    result = run_distillation(config, store)

    assert result.run_id is None
    assert f"The teacher folder {weightless} has no safetensors weights" in result.error
    assert store.list_runs() == []


def test_tokenizer_without_vocabulary_not_recorded(glue_dir, store, tmp_path):
    # A tokenizer_config.json alone passes the folder check but loads as special tokens only.
    folder = _model_folder(tmp_path, "config-only-tokenizer", {"tokenizer_config.json": b'{"tokenizer_class": "BertTokenizer"}'})
    config = small_config(glue_dir, student={"tokenizer": str(folder)})

    result = run_distillation(config, store)

    assert result.status == "failed"
    assert result.run_id is None
    assert "has no vocabulary" in result.error
    assert store.list_runs() == []


def test_unloadable_teacher_fails_before_training(glue_dir, store, tmp_path):
    # A folder with a config.json and a weight file passes the check before the run, so the run
    # that tries to load it is stored as failed, with no metric logged.
    broken = _model_folder(tmp_path, "broken-model", {"config.json": BERT_CONFIG, "model.safetensors": b"not really"})
    config = small_config(glue_dir, distillation={"teachers": [str(broken)]})

    result = run_distillation(config, store)

    assert result.status == "failed"
    assert "The weights of teacher broken-model could not be loaded" in result.error
    assert store.get_run(result.run_id).status == "failed"
    assert store.count_metrics(result.run_id) == 0


def test_cuda_request_without_gpu_is_rejected(glue_dir, store):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")

    result = run_distillation(small_config(glue_dir, training={"device": "cuda"}), store)

    assert result.status == "failed"
    assert result.run_id is None
    assert "sees no CUDA GPU" in result.error
    assert "torchrun" not in result.error


def test_minus_one_label_in_tsv_is_rejected(tmp_path, store):
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    good = [f"a good and lovely film number {i}\t1" for i in range(30)]
    bad = [f"a bad and dull film number {i}\t0" for i in range(30)]
    rows = "\n".join(["sentence\tlabel", *good, *bad, "an unlabelled row\t-1", ""])
    (folder / "train.tsv").write_text(rows)
    (folder / "dev.tsv").write_text("sentence\tlabel\nlovely\t1\ndull\t0\n")
    config = small_config(tmp_path / "glue", data={"train_limit": None, "dev_limit": None})

    result = run_distillation(config, store)

    # A training file must carry labels; -1 there is reported as a malformed row, with its line.
    assert result.status == "failed"
    assert "line 62" in result.error and "outside 0..1" in result.error


def test_dev_file_without_label_column_records_no_run(tmp_path, store):
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    rows = [f"a good and lovely film number {i}\t1" for i in range(30)] + [f"a bad and dull film number {i}\t0" for i in range(30)]
    (folder / "train.tsv").write_text("\n".join(["sentence\tlabel", *rows, ""]))
    (folder / "dev.tsv").write_text("sentence\tgold_label\nlovely\t1\ndull\t0\n")
    config = small_config(tmp_path / "glue", data={"train_limit": None, "dev_limit": None})

    result = run_distillation(config, store)

    # Loaded as unlabelled rows, the run used to finish without any dev metric.
    assert result.status == "failed"
    assert result.run_id is None
    assert "dev.tsv has no column 'label'" in result.error
    assert store.list_runs() == []


def test_resume_reaches_the_uninterrupted_final_state(glue_dir, tmp_path):
    config = small_config(glue_dir, training={"epochs": 2, "checkpoint_every_steps": 2, "evals_per_epoch": 1})
    reference_store = RunStore(tmp_path / "reference.sqlite3")
    reference = run_distillation(config, reference_store)
    assert reference.status == "finished", reference.error

    store = RunStore(tmp_path / "resumed.sqlite3")
    cancel = CancellationToken()

    def stop_midway(event):
        if isinstance(event, StepLogged) and event.step == 5:
            cancel.cancel()

    stopped = run_distillation(config, store, stop_midway, cancel)
    assert stopped.status == "cancelled"
    # Cancelling saves a resume checkpoint at the step where it stopped.
    assert store.get_run(stopped.run_id).checkpoint_step == 5

    first_session = store.get_run(stopped.run_id).duration_seconds
    finished_events = []
    resumed = resume_distillation(stopped.run_id, store, lambda event: finished_events.append(event) if isinstance(event, RunFinished) else None)

    assert resumed.status == "finished", resumed.error
    assert resumed.run_id == stopped.run_id
    # The reported duration covers both sessions, as the history shows it.
    assert finished_events[-1].duration_seconds == store.get_run(stopped.run_id).duration_seconds
    assert finished_events[-1].duration_seconds > first_session
    reference_series = reference_store.metric_series(reference.run_id)
    resumed_series = store.metric_series(stopped.run_id)
    assert reference_series.keys() == resumed_series.keys()
    for name in ("train/loss_total", "dev/accuracy", "dev/loss_task"):
        assert np.array_equal(reference_series[name][0], resumed_series[name][0]), name
        assert np.allclose(reference_series[name][1], resumed_series[name][1], atol=1e-5), name
    assert math.isclose(resumed.final_metrics["dev/loss_task"], reference.final_metrics["dev/loss_task"], abs_tol=1e-5)


def test_unlabelled_hub_rows_are_never_trained_or_scored(store, monkeypatch):
    import datasets

    rng = np.random.default_rng(0)
    sentences = [f"{'good fine lovely' if i % 2 else 'bad dull awful'} film {i}" for i in range(120)]
    train_labels = [i % 2 for i in range(120)]
    for index in range(0, 120, 10):
        train_labels[index] = -1
    dev_sentences = [f"{'lovely' if i % 2 else 'dull'} movie {i}" for i in range(40)]
    dev_labels = [i % 2 if i >= 10 else -1 for i in range(40)]
    rng.shuffle(dev_sentences)

    def fake_load_dataset(name, task, split):
        if split.startswith("train"):
            return datasets.Dataset.from_dict({"sentence": sentences, "label": train_labels, "idx": list(range(120))})
        return datasets.Dataset.from_dict({"sentence": dev_sentences, "label": dev_labels, "idx": list(range(40))})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    config = small_config("unused", data={"glue_dir": None, "train_limit": None, "dev_limit": None}, training={"epochs": 1})
    recorder = Recorder()

    result = run_distillation(config, store, recorder)

    assert result.status == "finished", result.error
    prepared = recorder.of(RunPrepared)[0]
    # 108 labelled training rows: 5% (5 rows) held out, 103 trained on; the 12 rows labelled -1 are in neither.
    assert prepared.train_rows + prepared.heldout_rows == 108
    assert prepared.dev_rows == {"dev": 40}
    assert store.get_run(result.run_id).baseline["dev/accuracy"] == pytest.approx(0.5)


def test_empty_and_unusual_sentences_train(tmp_path, store):
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    texts = ["", "😀🎬 great!!", "שלום עולם", "مرحبا بالعالم", "naïve café", "word " * 400]
    rows = [f"{texts[i % len(texts)]}\t{i % 2}" for i in range(96)]
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text("sentence\tlabel\n\t1\n😀\t0\n", encoding="utf-8")
    config = small_config(tmp_path / "glue", data={"train_limit": None, "dev_limit": None}, training={"epochs": 1})

    result = run_distillation(config, store)

    assert result.status == "finished", result.error
    assert all(np.isfinite(values).all() for _, values in store.metric_series(result.run_id).values())


def test_same_named_folders_distinct_labels(tmp_path):
    from engine.teachers import TeacherInfo
    from engine.trainer import distinct_teacher_labels

    def local(path: str) -> TeacherInfo:
        folder = tmp_path / path
        return TeacherInfo(spec=str(folder), label=folder.name, folder=folder, model_type="bert", hidden_size=32, position_limit=None, fingerprint="", hub_id=None)

    infos = [local("runs/bert-sst2/final"), local("runs/roberta-sst2/final"), local("a/x/model"), local("b/x/model"), local("runs/bert-sst2/final")]

    labels = distinct_teacher_labels(infos)

    assert labels[1] == "roberta-sst2/final"
    assert labels[2:4] == ["a/x/model", "b/x/model"]
    assert labels[0] == "bert-sst2/final#1"  # the same folder twice
    assert labels[4] == "bert-sst2/final#5"


def test_resume_keeps_teacher_labels(glue_dir, store):
    from engine.checkpoints import LoadedCheckpoint
    from engine.trainer import Trainer

    config = small_config(glue_dir)
    labels = {}
    for name, state in (("stored", {"teacher_labels": ["minilm-as-logged"]}), ("earlier version", {}), ("new run", None)):
        checkpoint = LoadedCheckpoint(tensors={}, state=state) if state is not None else None
        trainer = Trainer(config, store, checkpoint=checkpoint, resume_run_id=1 if checkpoint else None)
        infos = trainer._inspect_teachers()
        assert [info.label for info in infos] == trainer.teacher_labels  # progress lines name them so too
        labels[name] = trainer.teacher_labels

    assert labels == {"stored": ["minilm-as-logged"], "earlier version": ["minilm"], "new run": ["minilm"]}


def test_default_name_same_named_folders(glue_dir):
    from engine.trainer import default_run_name

    config = small_config(glue_dir, distillation={"teachers": ["/models/bert-a/final", "/models/bert-b/final/", "minilm"]})

    assert default_run_name(config) == "sst2-bert-a/final+bert-b/final+minilm-d32x2-logphase"
