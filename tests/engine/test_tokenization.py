"""The student tokenizer loads folders that hold only a vocabulary, as GPT-2, RoBERTa and BERT publish it."""

import pytest

from engine.errors import TeacherLoadError
from engine.tokenization import KNOWN_VOCAB_SIZES, TOKENIZER_REQUIRED_FILES, StudentTokenizer, check_tokenizer_folder, load_tokenizer
from tests.tiny_models import save_tokenizer


@pytest.mark.parametrize(
    ("folder", "kind", "size"),
    [("gpt2", "gpt2", KNOWN_VOCAB_SIZES["gpt2"]), ("roberta-base", "roberta", KNOWN_VOCAB_SIZES["roberta"]), ("distilbert-base-uncased", "distilbert", KNOWN_VOCAB_SIZES["distilbert"])],
)
def test_vocabulary_folder_encodes_like_the_saved_tokenizer(tokenizer_files, tmp_path, folder, kind, size):
    # The shared folders hold vocab.json + merges.txt or vocab.txt only; the saved folder is the
    # same vocabulary written by save_pretrained, which AutoTokenizer reads.
    raw = StudentTokenizer(str(tokenizer_files / folder), max_seq_len=32, pair_separator="\n")
    saved = StudentTokenizer(str(save_tokenizer(kind, tokenizer_files, tmp_path / kind)), max_seq_len=32, pair_separator="\n")
    texts = ["A gripping, funny film.", "The Plot makes NO sense at all!"]

    assert raw.vocab_size == size
    assert raw.pad_id == saved.pad_id
    assert [row.tolist() for row in raw.encode(texts).ids] == [row.tolist() for row in saved.encode(texts).ids]


def test_wordpiece_casing_follows_the_vocabulary(tmp_path):
    uncased = tmp_path / "uncased"
    uncased.mkdir()
    (uncased / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film"]), encoding="utf-8")

    tokenizer = load_tokenizer(uncased)

    assert tokenizer.tokenize("The FILM") == ["the", "film"]


def test_folder_without_tokenizer_files_names_what_it_needs(tmp_path):
    empty = tmp_path / "empty-tokenizer"
    empty.mkdir()

    with pytest.raises(TeacherLoadError) as raised:
        StudentTokenizer(str(empty), max_seq_len=32, pair_separator="\n")

    assert str(empty) in str(raised.value)
    assert "vocab.json and merges.txt" in str(raised.value)


def test_model_config_alone_is_no_tokenizer(tmp_path):
    from engine.tokenization import StudentTokenizer

    # A model folder's config.json without vocabulary files: transformers builds a tokenizer of
    # special tokens only from it, which made augmentation fail inside the run.
    folder = tmp_path / "config-only"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert", "vocab_size": 30522}', encoding="utf-8")

    with pytest.raises(TeacherLoadError, match="contains no tokenizer files"):
        check_tokenizer_folder(str(folder))
    with pytest.raises(TeacherLoadError) as loaded:
        StudentTokenizer(str(folder), max_seq_len=48, pair_separator=" ")

    assert "has no vocabulary: its 5 tokens are all special tokens" in str(loaded.value)
    assert "vocab.txt (WordPiece)" in str(loaded.value)


def test_folder_check_before_the_run(tmp_path, tokenizer_files):
    only_merges = tmp_path / "only-merges"
    only_merges.mkdir()
    (only_merges / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    a_file = tokenizer_files / "bert-base-uncased" / "vocab.txt"

    with pytest.raises(TeacherLoadError) as empty:
        check_tokenizer_folder(str(only_merges))
    with pytest.raises(TeacherLoadError) as not_a_folder:
        check_tokenizer_folder(str(a_file))
    check_tokenizer_folder(str(tokenizer_files / "gpt2"))
    check_tokenizer_folder("minilm")
    check_tokenizer_folder("someone/hub-tokenizer")

    assert "contains no tokenizer files" in str(empty.value)
    assert "vocab.json and merges.txt" in str(empty.value)
    assert "is not a folder" in str(not_a_folder.value)
    assert "config.json" not in str(not_a_folder.value)


def test_offline_tokenizer_hint_names_a_tokenizer_folder():
    from engine.errors import HubUnreachableError
    from engine.model_sources import check_cached_when_offline

    # tests/conftest.py sets HF_HUB_OFFLINE and an empty Hugging Face cache.
    with pytest.raises(HubUnreachableError) as raised:
        check_cached_when_offline("example-org/uncached-tokenizer", what="student tokenizer", required=TOKENIZER_REQUIRED_FILES)

    assert "Otherwise use a local tokenizer folder or the offline alias 'minilm'." in str(raised.value)
