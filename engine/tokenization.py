"""The student's tokenizer: encoding of single sentences and pairs, and batching with padding.

Pairs use the tokenizer's own pair encoding when it has one (BERT: [CLS] a [SEP] b [SEP]). GPT-2
has none, so a pair becomes ``a + separator + b`` with the configured separator text. Truncation
is longest-first to ``max_seq_len``. Every row keeps at least one real token, so that an empty
sentence still has a defined mean-pooled embedding.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.errors import TeacherLoadError
from engine.events import CancellationToken
from engine.model_sources import PACKAGED_ALIASES, check_local_folder, resolve_model_source
from engine.transformers_imports import transformers_names

log = logging.getLogger(__name__)

@dataclass
class EncodedRows:
    """Token ids of a split: ``ids[i]`` and ``special[i]`` (True on special tokens) per row."""

    ids: list[np.ndarray]
    special: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(row) for row in self.ids), dtype=np.int64, count=len(self.ids))


@dataclass
class TokenBatch:
    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64, 1 on real tokens
    special_mask: torch.Tensor  # (B, T) bool, True on special tokens

    def to(self, device: torch.device) -> "TokenBatch":
        return TokenBatch(
            self.input_ids.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            self.special_mask.to(device, non_blocking=True),
        )


ENCODE_CHUNK_ROWS = 256

# Vocabulary sizes of the alias tokenizers, so that the GUI can show a parameter count without
# loading (or downloading) the tokenizer.
KNOWN_VOCAB_SIZES = {"gpt2": 50257, "distilbert": 30522, "roberta": 50265, "minilm": 30522}


def tokenizer_vocab_size(spec: str, cancel: CancellationToken | None = None) -> int:
    """Vocabulary size of a tokenizer; loads it unless ``spec`` is an alias. ``cancel`` stops a Hub download."""
    key = spec.strip().lower()
    if key in KNOWN_VOCAB_SIZES:
        return KNOWN_VOCAB_SIZES[key]
    check_tokenizer_folder(spec)  # its message names the tokenizer files, not a model's config.json
    source = resolve_model_source(spec, what="student tokenizer", cancel=cancel)
    return len(load_tokenizer(source.folder))


TOKENIZER_FILES_HINT = (
    "Choose a folder or Hub id with tokenizer.json, or with vocab.json and merges.txt (byte-level BPE), or with vocab.txt (WordPiece)."
)
# Files that make a folder loadable as a tokenizer besides the vocab.json + merges.txt pair, as one
# group of patterns of which one must match (check_cached_when_offline takes such groups). A
# model's config.json contains no vocabulary, so it does not count.
TOKENIZER_REQUIRED_FILES = (("tokenizer.json", "tokenizer_config.json", "vocab.txt", "*.model", "*.spm", "*.tiktoken"),)


def check_tokenizer_folder(spec: str) -> None:
    """Raise TeacherLoadError when ``spec`` is written as a path and is not a folder with tokenizer files.

    The check is cheap enough to run before a run is recorded. Hub ids and aliases pass unchecked.
    """
    check_local_folder(spec, what="student tokenizer", hint=TOKENIZER_FILES_HINT)
    path = Path(spec.strip()).expanduser()
    # resolve_model_source takes a local folder before a Hub alias of the same name, but the
    # packaged alias before any folder.
    if spec.strip().lower() in PACKAGED_ALIASES or not path.is_dir():
        return
    byte_level_bpe = (path / "vocab.json").is_file() and (path / "merges.txt").is_file()
    if not byte_level_bpe and not any(any(path.glob(pattern)) for pattern in TOKENIZER_REQUIRED_FILES[0]):
        raise TeacherLoadError(f"The student tokenizer folder {str(path)!r} contains no tokenizer files.", TOKENIZER_FILES_HINT)


def load_tokenizer(folder: Path):
    """Load the Hugging Face tokenizer saved in ``folder``, also from its vocabulary files alone.

    GPT-2 and RoBERTa publish vocab.json and merges.txt (byte-level BPE), BERT publishes vocab.txt
    (WordPiece). A folder with only these files has no config that names its tokenizer class, so
    AutoTokenizer cannot load it. The class is then chosen from the files.
    """
    AutoTokenizer, BertTokenizer, GPT2Tokenizer, RobertaTokenizer = transformers_names(
        "AutoTokenizer", "BertTokenizer", "GPT2Tokenizer", "RobertaTokenizer"
    )

    described = any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "config.json"))
    if not described and (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        vocabulary = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        # RoBERTa's vocabulary contains its own special tokens; GPT-2's has only <|endoftext|>.
        kind = RobertaTokenizer if "<s>" in vocabulary and "<mask>" in vocabulary else GPT2Tokenizer
        log.info("Loading %s as a %s vocabulary", folder, kind.__name__.removesuffix("Tokenizer"))
        return kind.from_pretrained(str(folder))

    if not described and (folder / "vocab.txt").is_file():
        words = (folder / "vocab.txt").read_text(encoding="utf-8").split()
        # An uncased vocabulary has no capital letters outside its [CLS]-style special tokens.
        cased = any(word != word.lower() for word in words if not word.startswith("["))
        log.info("Loading %s as a WordPiece vocabulary (%s)", folder, "cased" if cased else "uncased")
        return BertTokenizer.from_pretrained(str(folder), do_lower_case=not cased)

    return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)


class StudentTokenizer:
    """Wraps a Hugging Face tokenizer with the student's pair, padding and truncation rules."""

    def __init__(self, spec: str, max_seq_len: int, pair_separator: str, cancel: CancellationToken | None = None) -> None:
        source = resolve_model_source(spec, what="student tokenizer", cancel=cancel)
        try:
            self.tokenizer = load_tokenizer(source.folder)
        except (OSError, ValueError) as error:
            raise TeacherLoadError(f"The student tokenizer {spec!r} could not be loaded from {source.folder}: {error}.", TOKENIZER_FILES_HINT) from None

        self.spec = spec
        self.source = source
        self.max_seq_len = max_seq_len
        self.pair_separator = pair_separator
        self.vocab_size = len(self.tokenizer)
        tok = self.tokenizer
        self.pad_id = _first_id(tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, 0)
        self.mask_id = _first_id(tok.mask_token_id, tok.unk_token_id, self.pad_id)
        self.special_ids = sorted(set(tok.all_special_ids))
        ordinary = self.vocab_size - sum(1 for i in self.special_ids if i < self.vocab_size)
        if ordinary <= 0:
            # A folder with a config but no vocabulary file loads as a tokenizer of special tokens only.
            raise TeacherLoadError(
                f"The student tokenizer {spec!r} from {source.folder} has no vocabulary: its {self.vocab_size} tokens are all special tokens, "
                "so every word would be unknown.",
                TOKENIZER_FILES_HINT,
            )
        self.native_pairs = tok.num_special_tokens_to_add(pair=True) > tok.num_special_tokens_to_add(pair=False)
        self._separator_ids = tok.encode(pair_separator, add_special_tokens=False) if pair_separator else []

    def replacement_ids(self) -> torch.Tensor:
        """Ids that augmentation may insert: the whole vocabulary except special tokens."""
        allowed = np.ones(self.vocab_size, dtype=bool)
        allowed[[i for i in self.special_ids if i < self.vocab_size]] = False
        return torch.from_numpy(np.flatnonzero(allowed))

    def encode(self, texts_a: tuple[str, ...] | list[str], texts_b: tuple[str, ...] | list[str] | None = None) -> EncodedRows:
        """Encode rows in chunks of ``ENCODE_CHUNK_ROWS``.

        One tokenizer call converts its whole batch to Python lists while holding the GIL; with
        chunks, a GUI thread gets the GIL between them instead of freezing for the whole split.
        """
        ids: list[np.ndarray] = []
        special: list[np.ndarray] = []
        for start in range(0, len(texts_a), ENCODE_CHUNK_ROWS):
            chunk_a = list(texts_a[start : start + ENCODE_CHUNK_ROWS])
            chunk_b = list(texts_b[start : start + ENCODE_CHUNK_ROWS]) if texts_b is not None else None
            if chunk_b is None or self.native_pairs:
                rows = self._encode_native(chunk_a, chunk_b)
            else:
                rows = self._encode_with_separator(chunk_a, chunk_b)
            ids.extend(rows.ids)
            special.extend(rows.special)
        return EncodedRows(ids, special)

    def _encode_native(self, texts_a: list[str], texts_b: list[str] | None) -> EncodedRows:
        encoded = self.tokenizer(
            texts_a,
            texts_b,
            truncation="longest_first" if texts_b is not None else True,
            max_length=self.max_seq_len,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        ids = [np.asarray(row, dtype=np.int64) for row in encoded["input_ids"]]
        special = [np.asarray(row, dtype=bool) for row in encoded["special_tokens_mask"]]
        return self._non_empty(EncodedRows(ids, special))

    def _encode_with_separator(self, texts_a: list[str], texts_b: list[str]) -> EncodedRows:
        first = self.tokenizer(texts_a, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        second = self.tokenizer(texts_b, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        budget = max(self.max_seq_len - len(self._separator_ids), 0)
        ids, special = [], []
        for a, b in zip(first, second):
            a, b = _truncate_longest_first(list(a), list(b), budget)
            row = a + self._separator_ids + b
            ids.append(np.asarray(row[: self.max_seq_len], dtype=np.int64))
            special.append(np.zeros(len(ids[-1]), dtype=bool))
        return self._non_empty(EncodedRows(ids, special))

    def _non_empty(self, rows: EncodedRows) -> EncodedRows:
        for index, row in enumerate(rows.ids):
            if len(row) == 0:
                rows.ids[index] = np.asarray([self.pad_id], dtype=np.int64)
                rows.special[index] = np.asarray([True])
        return rows

    def tokens(self, ids: np.ndarray) -> list[str]:
        """Readable token strings for axis labels (byte-level BPE markers removed)."""
        pieces = self.tokenizer.convert_ids_to_tokens([int(i) for i in ids])
        return [piece.replace("Ġ", "▁").replace("Ċ", "\\n") for piece in pieces]


def _first_id(*candidates: int | None) -> int:
    for candidate in candidates:
        if candidate is not None:
            return int(candidate)
    return 0


def _truncate_longest_first(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Remove tokens from the end of the longer sequence until both fit ``budget`` together."""
    excess = len(a) + len(b) - budget
    if excess <= 0:
        return a, b
    longer_is_a = len(a) >= len(b)
    longer, shorter = (a, b) if longer_is_a else (b, a)
    cut = min(excess, len(longer) - len(shorter))
    longer = longer[: len(longer) - cut]
    excess -= cut
    if excess > 0:
        # Both now have equal length; take the rest alternately, the first sequence first.
        from_first = (excess + 1) // 2
        from_second = excess // 2
        longer = longer[: len(longer) - from_first]
        shorter = shorter[: len(shorter) - from_second]
    return (longer, shorter) if longer_is_a else (shorter, longer)


def collate(rows: EncodedRows, indices: np.ndarray, pad_id: int, pad_to: int | None = None) -> TokenBatch:
    """Stack the rows at ``indices``, right-padded to their longest row (or to ``pad_to``)."""
    length = max(len(rows.ids[i]) for i in indices)
    if pad_to is not None:
        length = max(length, pad_to)
    input_ids = np.full((len(indices), length), pad_id, dtype=np.int64)
    attention = np.zeros((len(indices), length), dtype=np.int64)
    special = np.zeros((len(indices), length), dtype=bool)
    for row, index in enumerate(indices):
        ids = rows.ids[index]
        input_ids[row, : len(ids)] = ids
        attention[row, : len(ids)] = 1
        special[row, : len(ids)] = rows.special[index]
    return TokenBatch(torch.from_numpy(input_ids), torch.from_numpy(attention), torch.from_numpy(special))


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, padding: str, bucket_batches: int = 50) -> list[np.ndarray]:
    """Index batches of one epoch, reproducible from (seed, epoch) so that a resumed run replays them.

    ``bucketed``: shuffle, cut into chunks of ``bucket_batches`` batches, sort each chunk by length,
    batch it, and shuffle the batch order; training stays random while each batch holds rows of
    similar length. Other modes: plain shuffled batches. All modes give ceil(N / batch_size) batches.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if padding != "bucketed":
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    chunk = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    permutation = rng.permutation(len(batches))
    return [batches[i] for i in permutation]
