"""Teachers: resolution, validation messages, pooling, padding, position limits."""

import json
import shutil

import numpy as np
import pytest
import torch

from engine.errors import HubUnreachableError, RemoteCodeRefusedError, TeacherLoadError
from engine.model_sources import resolve_model_source
from engine.teachers import TeacherEncoder, check_sequence_length, inspect_teacher

CPU = torch.device("cpu")


def test_minilm_alias_works_offline():
    info = inspect_teacher("minilm")

    assert info.label == "minilm"
    assert info.model_type == "bert"
    assert info.hidden_size == 384
    assert info.position_limit == 512
    assert len(info.fingerprint) == 64


def test_roberta_limit_is_512_despite_config_514(tiny_teachers):
    info = inspect_teacher(str(tiny_teachers["roberta"]))

    assert info.position_limit == 512


def test_hub_alias_without_cache_reports_offline():
    with pytest.raises(HubUnreachableError) as caught:
        inspect_teacher("distilbert")

    assert "distilbert/distilbert-base-uncased" in str(caught.value)
    assert "HF_HUB_OFFLINE" in str(caught.value)


def test_unknown_hub_id_reports_unreachable_when_offline():
    with pytest.raises(HubUnreachableError, match="'someone/no-such-model-xyz'"):
        inspect_teacher("someone/no-such-model-xyz")


def test_repository_not_found_is_named(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    def missing(*args, **kwargs):
        # The real error needs an HTTP response object; only its type matters here.
        error = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(error, "404 Repository Not Found")
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)

    with pytest.raises(TeacherLoadError) as caught:
        resolve_model_source("someone/typo-model", what="teacher")

    assert "was not found on the Hugging Face Hub" in str(caught.value)
    assert "Check the spelling" in str(caught.value)


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(TeacherLoadError, match="does not exist or is not a folder"):
        inspect_teacher(str(tmp_path / "no-model-here"))


def test_folder_without_config_is_named(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")

    with pytest.raises(TeacherLoadError) as caught:
        inspect_teacher(str(tmp_path))

    assert "has no config.json" in str(caught.value)


def test_custom_code_is_refused_unless_trusted(tiny_teachers, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_teachers["distilbert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))

    with pytest.raises(RemoteCodeRefusedError) as caught:
        inspect_teacher(str(folder))

    assert "ships its own Python code" in str(caught.value)
    assert "Trust remote code" in str(caught.value)
    assert inspect_teacher(str(folder), trust_remote_code=True).hidden_size == 32


def test_pickle_only_weights_are_refused(tiny_teachers, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_teachers["distilbert"], folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")

    with pytest.raises(TeacherLoadError, match="no safetensors weights"):
        inspect_teacher(str(folder))


def test_partly_cached_hub_teacher_online_suggests_completing_download(tiny_teachers, tmp_path, monkeypatch):
    import huggingface_hub

    # Without internet access and without HF_HUB_OFFLINE, the Hub library serves what the cache holds.
    snapshot = tmp_path / "snapshot"
    shutil.copytree(tiny_teachers["distilbert"], snapshot)
    (snapshot / "model.safetensors").unlink()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kwargs: str(snapshot))

    with pytest.raises(TeacherLoadError) as caught:
        inspect_teacher("someone/half-downloaded")

    assert f"The teacher 'someone/half-downloaded' has no safetensors weights in its Hugging Face cache folder {snapshot}" in str(caught.value)
    assert "run once more with internet access to complete it" in str(caught.value)


def test_max_seq_len_above_teacher_limit_is_rejected(tiny_teachers):
    info = inspect_teacher(str(tiny_teachers["roberta"]))

    with pytest.raises(TeacherLoadError) as caught:
        check_sequence_length(info, 1024)

    assert "exceeds the position limit" in str(caught.value)
    assert "at most 512" in str(caught.value)


@pytest.mark.parametrize("kind", ["gpt2", "distilbert", "roberta"])
def test_tiny_teacher_embeddings_ignore_padding(tiny_teachers, kind):
    encoder = TeacherEncoder(inspect_teacher(str(tiny_teachers[kind])), CPU)
    short = "a short one"
    long = "a much longer sentence that forces the short one to be padded in its batch " * 3

    alone = encoder.embed((short,), None, max_seq_len=128, batch_size=1)
    together = encoder.embed((short, long), None, max_seq_len=128, batch_size=2)

    assert alone.shape == (1, 32)
    assert np.allclose(alone[0], together[0], atol=1e-5)
    assert encoder.forward_passes == 2


def test_gpt2_teacher_pads_with_eos(tiny_teachers):
    encoder = TeacherEncoder(inspect_teacher(str(tiny_teachers["gpt2"])), CPU)

    assert encoder.tokenizer.pad_token == encoder.tokenizer.eos_token == "<|endoftext|>"
    assert encoder.tokenizer.padding_side == "right"


def test_minilm_embeddings_ignore_padding_and_keep_order():
    encoder = TeacherEncoder(inspect_teacher("minilm"), CPU)
    texts = ("a gripping , funny film", "dull", "the plot goes nowhere and the actors seem bored throughout")

    batched = encoder.embed(texts, None, max_seq_len=128, batch_size=3)
    single = np.stack([encoder.embed((text,), None, max_seq_len=128, batch_size=1)[0] for text in texts])

    assert np.allclose(batched, single, atol=1e-4)


def test_long_sentences_are_truncated_not_crashing(tiny_teachers):
    encoder = TeacherEncoder(inspect_teacher(str(tiny_teachers["roberta"])), CPU)
    very_long = "word " * 3000

    embeddings = encoder.embed((very_long,), ("and another " * 2000,), max_seq_len=512, batch_size=1)

    assert embeddings.shape == (1, 32)
    assert np.isfinite(embeddings).all()


@pytest.mark.parametrize("kind", ["gpt2", "distilbert", "roberta"])
def test_empty_and_unusual_text(tiny_teachers, kind):
    encoder = TeacherEncoder(inspect_teacher(str(tiny_teachers[kind])), CPU)
    texts = ("", "😀🎬 great!!", "שלום עולם", "مرحبا بالعالم", "naïve café")

    embeddings = encoder.embed(texts, None, max_seq_len=64, batch_size=2)

    assert embeddings.shape == (5, 32)
    assert np.isfinite(embeddings).all()


def _fake_snapshot_download(chunks_sent: list[int], cancel_after: int, cancel):
    """A snapshot_download that reports bytes the way huggingface_hub 2.4 does.

    It builds its byte bar with the library's own ``_create_progress_bar`` and updates it from a
    download thread of the library's ``hf_thread_map``, one chunk at a time, without any network.
    """
    from huggingface_hub.utils.tqdm import _create_progress_bar, hf_thread_map

    def snapshot_download(repo_id, allow_patterns=None, tqdm_class=None, **kwargs):
        bar = _create_progress_bar(cls=tqdm_class, log_level=30, name="huggingface_hub.snapshot_download", total=100, unit="B")

        def download(filename):
            for chunk in range(100):
                if chunk == cancel_after:
                    cancel.cancel()  # the user presses Stop while this file downloads
                bar.update(1)
                chunks_sent.append(chunk)

        hf_thread_map(download, ["model.safetensors"], tqdm_class=tqdm_class)
        raise AssertionError("the download should have been cancelled")

    return snapshot_download


def test_hub_download_stops_when_cancelled(monkeypatch):
    import huggingface_hub

    from engine.errors import RunCancelled
    from engine.events import CancellationToken

    cancel = CancellationToken()
    chunks_sent: list[int] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot_download(chunks_sent, 3, cancel))

    with pytest.raises(RunCancelled):
        inspect_teacher("someone/large-model", cancel=cancel)

    assert chunks_sent == [0, 1, 2]


def test_cancelled_run_skips_the_download(monkeypatch):
    import huggingface_hub

    from engine.errors import RunCancelled
    from engine.events import CancellationToken

    def never(*args, **kwargs):
        raise AssertionError("a cancelled run must not start a download")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", never)
    cancel = CancellationToken()
    cancel.cancel()

    with pytest.raises(RunCancelled):
        resolve_model_source("someone/large-model", what="teacher", cancel=cancel)


def test_cache_check_runs_only_offline(monkeypatch, tmp_path):
    import huggingface_hub

    from engine.model_sources import check_cached_when_offline

    lookups = []

    def cached(repo_id, allow_patterns=None, local_files_only=False, **kwargs):
        lookups.append((repo_id, local_files_only))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", cached)

    check_cached_when_offline("distilbert", what="teacher")
    check_cached_when_offline("minilm", what="teacher")
    check_cached_when_offline(str(tmp_path), what="teacher")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    check_cached_when_offline("someone/model", what="teacher")

    assert lookups == [("distilbert/distilbert-base-uncased", True)]


def test_cache_check_names_uncached_id_offline():
    from engine.model_sources import check_cached_when_offline

    with pytest.raises(HubUnreachableError, match="student tokenizer 'someone/no-such-tokenizer' is not in the local Hugging Face cache"):
        check_cached_when_offline("someone/no-such-tokenizer", what="student tokenizer")


def test_transformers_offline_counts_as_offline(monkeypatch):
    from engine.model_sources import check_cached_when_offline

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")

    with pytest.raises(HubUnreachableError) as caught:
        check_cached_when_offline("someone/no-such-model", what="teacher")

    assert "TRANSFORMERS_OFFLINE is set" in str(caught.value)
    assert "unset TRANSFORMERS_OFFLINE" in str(caught.value)


def test_unreachable_hub_suggests_offline_mode(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("connection failed and the file is not cached")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)

    with pytest.raises(HubUnreachableError) as caught:
        resolve_model_source("someone/model", what="teacher")

    assert "the Hugging Face Hub cannot be reached" in str(caught.value)
    assert "set HF_HUB_OFFLINE=1" in str(caught.value)


def test_partly_cached_hub_model_is_named_offline(monkeypatch, tmp_path):
    import huggingface_hub

    from engine.model_sources import check_cached_when_offline
    from engine.teachers import TEACHER_REQUIRED_FILES
    from engine.tokenization import TOKENIZER_REQUIRED_FILES

    # What an interrupted download leaves: the snapshot folder with the config but no weights.
    snapshot = tmp_path / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kwargs: str(snapshot))

    with pytest.raises(HubUnreachableError) as caught:
        check_cached_when_offline("someone/half-downloaded", what="teacher", required=TEACHER_REQUIRED_FILES)

    message = str(caught.value)
    assert f"The teacher 'someone/half-downloaded' is only partly in the local Hugging Face cache: its snapshot {snapshot} has no *.safetensors" in message
    assert "unset HF_HUB_OFFLINE on a machine with internet access and run once to complete it" in message
    (snapshot / "model.safetensors").write_bytes(b"")
    check_cached_when_offline("someone/half-downloaded", what="teacher", required=TEACHER_REQUIRED_FILES)
    (snapshot / "config.json").unlink()
    with pytest.raises(HubUnreachableError, match="has no tokenizer.json or tokenizer_config.json or vocab.txt …, and HF_HUB_OFFLINE is set"):
        check_cached_when_offline("someone/half-downloaded", what="student tokenizer", required=TOKENIZER_REQUIRED_FILES)


def test_unwritable_digest_index_warns_once(tmp_path, monkeypatch, caplog):
    import logging

    from engine.model_sources import folder_fingerprint

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LAMPREIA_CACHE_DIR", str(blocker / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        (model / name).write_text(name)

    with caplog.at_level(logging.DEBUG, logger="engine.model_sources"):
        first = folder_fingerprint(model)
        second = folder_fingerprint(model)

    # The fingerprint does not depend on the index, which only saves reading files again.
    assert first == second
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Could not update the file digest index" in warnings[0].getMessage()


def test_teacher_check_counts_unusable_teachers(tmp_path):
    from engine.errors import TeacherLoadError
    from engine.teachers import check_teacher_sources

    with pytest.raises(TeacherLoadError) as some:
        check_teacher_sources(["minilm", str(tmp_path / "missing-a"), str(tmp_path / "missing-b")])
    with pytest.raises(TeacherLoadError) as every:
        check_teacher_sources([str(tmp_path / "missing-a"), str(tmp_path / "missing-b")])

    assert str(some.value).startswith("2 of the 3 teachers cannot be used. ")
    assert str(every.value).startswith("None of the 2 teachers can be used. ")
