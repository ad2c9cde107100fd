"""Student size and heads."""

import logging

import pytest
import torch

from engine.config import StudentConfig
from engine.student import Student, count_student_parameters

log = logging.getLogger(__name__)

GPT2_VOCAB = 50257


def test_default_student_has_about_3_2m_parameters():
    count = count_student_parameters(StudentConfig(), vocab_size=GPT2_VOCAB, num_labels=2)
    log.info("Default student (d256, 4 layers, 8 heads, log-phase mixer): %d parameters", count)
    print(f"default student parameters: {count:,}")

    assert abs(count - 3.2e6) / 3.2e6 < 0.05


def test_learned_embedding_adds_a_token_table():
    harmonic = count_student_parameters(StudentConfig(), vocab_size=GPT2_VOCAB, num_labels=2)
    learned = count_student_parameters(StudentConfig(embedding="learned"), vocab_size=GPT2_VOCAB, num_labels=2)
    both = count_student_parameters(StudentConfig(embedding="prime-harmonic+learned"), vocab_size=GPT2_VOCAB, num_labels=2)
    projection_and_norm = 100 * 256 + 256 + 2 * 256

    assert learned - harmonic == GPT2_VOCAB * 256 - projection_and_norm
    assert both - harmonic == GPT2_VOCAB * 256


def test_projection_heads_are_not_counted():
    model = Student(StudentConfig(d_model=32, n_layers=1, n_heads=4), vocab_size=500, num_labels=2, teacher_dims=[768, 384])

    assert model.count_parameters(include_projections=True) - model.count_parameters() == 32 * 768 + 768 + 32 * 384 + 384


@pytest.mark.parametrize("num_labels", [1, 2, 3])
def test_output_shapes(num_labels):
    model = Student(StudentConfig(d_model=32, n_layers=2, n_heads=4), vocab_size=500, num_labels=num_labels, teacher_dims=[16, 24])
    ids = torch.randint(0, 500, (5, 11))
    mask = torch.ones(5, 11, dtype=torch.long)

    output = model(ids, mask)

    assert output.logits.shape == (5, num_labels)
    assert output.semantic_embedding.shape == (5, 32)
    assert [p.shape for p in output.projections] == [(5, 16), (5, 24)]


def test_mixing_matrices_restore_training_mode():
    model = Student(StudentConfig(d_model=32, n_layers=1, n_heads=4), vocab_size=500, num_labels=2, teacher_dims=[])
    model.train()

    model.mixing_matrices(torch.randint(0, 500, (1, 5)), torch.ones(1, 5, dtype=torch.long))

    assert model.training


STUDENT_VARIANTS = [
    {},
    {"mixer": "softmax"},
    {"mixer": "spectral"},
    {"mixer": "spectral", "spectral_filter": "learned"},
    {"mixer": "spectral", "quaternion_rotation": False},
    {"embedding": "learned"},
    {"embedding": "prime-harmonic+learned", "n_primes": 37},
    {"d_model": 96, "n_heads": 3, "d_ff": 200, "n_layers": 3, "max_seq_len": 40, "n_fft": 100},
]


@pytest.mark.parametrize("overrides", STUDENT_VARIANTS)
@pytest.mark.parametrize("num_labels", [1, 3])
def test_parameter_formula_matches_the_model(overrides, num_labels):
    config = StudentConfig(**overrides)
    model = Student(config, vocab_size=1000, num_labels=num_labels, teacher_dims=[64])

    assert count_student_parameters(config, vocab_size=1000, num_labels=num_labels) == model.count_parameters()
