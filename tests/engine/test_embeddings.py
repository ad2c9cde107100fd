"""Prime-harmonic token embedding: exact feature values and the fixed table."""

import math

import numpy as np
import torch

from engine.embeddings import GOLDEN_RATIO, PrimeHarmonicEmbedding, first_primes, prime_harmonic_table


def test_first_primes_known_values():
    primes = first_primes(100)

    assert primes[:10].tolist() == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primes[99] == 541
    assert len(primes) == 100


def test_golden_ratio_is_exact():
    assert GOLDEN_RATIO == (1 + math.sqrt(5)) / 2


def test_table_matches_formula_for_known_ids():
    vocab = 50257
    table = prime_harmonic_table(vocab, 100)
    primes = first_primes(100)

    for token_id in (0, 1, 464, 50256):
        for column in (0, 1, 49, 99):
            angle = math.pi * int(primes[column]) * GOLDEN_RATIO * token_id / vocab
            expected = math.sin(angle) + math.cos(angle)
            assert abs(float(table[token_id, column]) - expected) < 1e-6, (token_id, column)


def test_table_row_zero_is_all_ones():
    # sin(0) + cos(0) = 1 for every prime.
    table = prime_harmonic_table(1000, 20)

    assert torch.equal(table[0], torch.ones(20))


def test_large_angles_keep_float64_precision():
    # At id 50256 with p = 541 the angle is about 2750 rad; float32 arithmetic would be off by ~1e-4.
    vocab = 50257
    angle = np.pi * 541 * GOLDEN_RATIO * 50256 / vocab
    expected = np.sin(angle) + np.cos(angle)
    table = prime_harmonic_table(vocab, 100)

    assert abs(float(table[50256, 99]) - expected) < 1e-6


def test_embedding_has_no_token_table_parameters():
    embedding = PrimeHarmonicEmbedding(vocab_size=50257, d_model=256, n_primes=100)
    names = {name for name, _ in embedding.named_parameters()}

    assert names == {"projection.weight", "projection.bias", "norm.weight", "norm.bias"}
    assert "table" not in embedding.state_dict()
