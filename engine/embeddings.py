"""Token embeddings of the student: fixed prime-harmonic features, a learned table, or both.

The prime-harmonic feature of token id t for the i-th prime p_i is
    ψ_i(t) = sin(π·p_i·φ·t/V) + cos(π·p_i·φ·t/V),   φ = (1 + √5)/2,  V = vocabulary size.
The features are fixed; only a Linear(n_primes → d_model) and a LayerNorm on top are learned,
which is why the default student has about 3.2M parameters instead of 16M with a token table.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0


def first_primes(count: int) -> np.ndarray:
    """Return the first ``count`` prime numbers (2, 3, 5, ...)."""
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    # Rosser's bound p_n < n (ln n + ln ln n) holds for n >= 6.
    limit = 15 if count < 6 else int(count * (math.log(count) + math.log(math.log(count)))) + 1
    sieve = np.ones(limit + 1, dtype=bool)
    sieve[:2] = False
    for number in range(2, int(limit**0.5) + 1):
        if sieve[number]:
            sieve[number * number :: number] = False
    return np.flatnonzero(sieve)[:count].astype(np.int64)


def prime_harmonic_table(vocab_size: int, n_primes: int) -> torch.Tensor:
    """Return the (vocab_size, n_primes) float32 table ψ_i(t) for every token id t.

    Computed in float64: the angle reaches π·p·φ ≈ 2,750 rad for the 100th prime, where float32
    would keep only about three correct decimals of the sine.
    """
    return _shared_table(vocab_size, n_primes).clone()


@functools.lru_cache(maxsize=4)
def _shared_table(vocab_size: int, n_primes: int) -> torch.Tensor:
    # Built once per vocabulary (about 0.1 s and 20 MB for GPT-2's 50,257 tokens) and shared by
    # every student on the CPU; callers must not modify it in place.
    token_ids = np.arange(vocab_size, dtype=np.float64)[:, None]
    primes = first_primes(n_primes).astype(np.float64)[None, :]
    angle = math.pi * primes * GOLDEN_RATIO * token_ids / vocab_size
    return torch.from_numpy(np.sin(angle) + np.cos(angle)).to(torch.float32)


class PrimeHarmonicEmbedding(nn.Module):
    """Fixed prime-harmonic features → learned Linear → LayerNorm."""

    def __init__(self, vocab_size: int, d_model: int, n_primes: int) -> None:
        super().__init__()
        # Not persistent: the table is a pure function of (vocab_size, n_primes), so checkpoints
        # need not carry 20 MB of it for a GPT-2 vocabulary. Students of one vocabulary share the
        # cached CPU tensor (nothing writes to it); moving a model to a GPU copies it.
        self.register_buffer("table", _shared_table(vocab_size, n_primes), persistent=False)
        self.projection = nn.Linear(n_primes, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        features = self.table[input_ids]  # (B, T, n_primes)
        return self.norm(self.projection(features))


class TokenEmbedding(nn.Module):
    """The student's token embedding for ``kind`` in prime-harmonic, learned, prime-harmonic+learned."""

    def __init__(self, kind: str, vocab_size: int, d_model: int, n_primes: int) -> None:
        super().__init__()
        self.kind = kind
        self.harmonic = PrimeHarmonicEmbedding(vocab_size, d_model, n_primes) if "prime-harmonic" in kind else None
        self.table = nn.Embedding(vocab_size, d_model) if "learned" in kind else None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        embedded = None
        if self.harmonic is not None:
            embedded = self.harmonic(input_ids)
        if self.table is not None:
            learned = self.table(input_ids)
            embedded = learned if embedded is None else embedded + learned
        return embedded
