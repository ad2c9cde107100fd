"""Tiny random teachers built from the real transformers config classes and real tokenizer files."""

from __future__ import annotations

from pathlib import Path

import torch

_TOKENIZER_FOLDERS = {"gpt2": "gpt2", "distilbert": "distilbert-base-uncased", "roberta": "roberta-base"}


def save_tokenizer(kind: str, tokenizer_files: Path, folder: Path):
    """Load the real vocabulary files of ``kind`` and save them as a complete tokenizer folder."""
    from transformers import DistilBertTokenizer, GPT2Tokenizer, RobertaTokenizer

    classes = {"gpt2": GPT2Tokenizer, "distilbert": DistilBertTokenizer, "roberta": RobertaTokenizer}
    tokenizer = classes[kind].from_pretrained(str(tokenizer_files / _TOKENIZER_FOLDERS[kind]))
    tokenizer.model_max_length = 512 if kind != "gpt2" else 1024
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def build_tiny_teacher(kind: str, tokenizer_files: Path, folder: Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Save a randomly initialised 2-layer model of ``kind`` with 2 heads and ``hidden_size`` into ``folder``.

    ``hidden_size`` must be even; the benchmarks use 768 so that the student's projection heads
    have the width of the real GPT-2, DistilBERT and RoBERTa teachers.
    """
    from transformers import DistilBertConfig, DistilBertModel, GPT2Config, GPT2Model, RobertaConfig, RobertaModel

    save_tokenizer(kind, tokenizer_files, folder)
    torch.manual_seed(seed)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=hidden_size, n_layer=2, n_head=2)
        model = GPT2Model(config)
    elif kind == "distilbert":
        config = DistilBertConfig(vocab_size=30522, max_position_embeddings=512, dim=hidden_size, n_layers=2, n_heads=2, hidden_dim=2 * hidden_size)
        model = DistilBertModel(config)
    else:
        config = RobertaConfig(
            vocab_size=50265, max_position_embeddings=514, hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=2 * hidden_size, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
        )
        model = RobertaModel(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder
