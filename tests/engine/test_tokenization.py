"""The student tokenizer loads folders that hold only a vocabulary, as GPT-2, RoBERTa and BERT publish it."""

import pytest

from engine.errors import TeacherLoadError
from engine.tokenization import KNOWN_VOCAB_SIZES, StudentTokenizer, load_tokenizer
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
