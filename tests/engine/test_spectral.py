"""Token mixers: the all-pass filter, padding invariance, mixing matrices, the quaternion rotation."""

import pytest
import torch
from torch import nn

from engine.config import StudentConfig
from engine.spectral import (
    LogPhaseMixer,
    QuaternionRotation,
    _filter_fft,
    _filter_toeplitz,
    filter_sequence,
    logphase_response,
)
from engine.student import Student


@pytest.mark.parametrize("n_fft", [64, 256])
@pytest.mark.parametrize("alpha", [0.1, 1.0, 3.0])
def test_logphase_filter_is_all_pass(n_fft, alpha):
    response = logphase_response(n_fft, torch.tensor(alpha))

    assert torch.allclose(response.abs(), torch.ones(n_fft // 2 + 1), atol=1e-6)
    assert response[0].imag == 0 and response[-1].imag == 0


def test_logphase_filter_preserves_energy():
    torch.manual_seed(0)
    n_fft = 128
    signal = torch.randn(5, n_fft, dtype=torch.float64)
    response = logphase_response(n_fft, torch.tensor(1.7)).to(torch.complex128)

    filtered = torch.fft.irfft(torch.fft.rfft(signal, n=n_fft, dim=-1) * response, n=n_fft, dim=-1)

    assert torch.allclose((filtered**2).sum(dim=-1), (signal**2).sum(dim=-1), rtol=1e-6)
    assert not torch.allclose(filtered, signal)


def test_toeplitz_and_fft_paths_agree():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 40, 8)
    shared = logphase_response(128, torch.tensor(1.3))[:, None]
    per_channel = torch.randn(65, 8, dtype=torch.complex64)
    per_channel[0] = per_channel[0].real
    per_channel[-1] = per_channel[-1].real

    assert torch.allclose(_filter_fft(x, shared, 128), _filter_toeplitz(x, shared, 128), atol=1e-5)
    assert torch.allclose(_filter_fft(x, per_channel, 128), _filter_toeplitz(x, per_channel, 128), atol=1e-5)


def _student(mixer: str, **overrides) -> Student:
    torch.manual_seed(0)
    config = StudentConfig(mixer=mixer, d_model=32, n_layers=2, n_heads=4, max_seq_len=48, dropout=0.0, **overrides)
    return Student(config, vocab_size=1000, num_labels=3, teacher_dims=[16]).eval()


MIXER_VARIANTS = [
    ("softmax", {}),
    ("logphase", {}),
    ("spectral", {}),
    ("spectral", {"spectral_filter": "learned"}),
    ("spectral", {"quaternion_rotation": False}),
]


@pytest.mark.parametrize("mixer,overrides", MIXER_VARIANTS)
def test_padding_does_not_change_real_tokens(mixer, overrides):
    model = _student(mixer, **overrides)
    with torch.no_grad():
        for block in model.blocks:
            if hasattr(block.mixer, "rotation") and block.mixer.rotation is not None:
                block.mixer.rotation.left_angles.copy_(torch.tensor([0.4, 1.1, 0.3]))
    ids = torch.randint(0, 1000, (1, 9))
    short_mask = torch.ones(1, 9, dtype=torch.long)
    padded_ids = torch.cat([ids, torch.randint(0, 1000, (1, 30))], dim=1)
    padded_mask = torch.cat([short_mask, torch.zeros(1, 30, dtype=torch.long)], dim=1)

    with torch.no_grad():
        hidden_short = model.hidden_states(ids, short_mask)
        hidden_padded = model.hidden_states(padded_ids, padded_mask)[:, :9]
        pooled_short = model.encode(ids, short_mask)
        pooled_padded = model.encode(padded_ids, padded_mask)

    assert torch.allclose(hidden_short, hidden_padded, atol=1e-5)
    assert torch.allclose(pooled_short, pooled_padded, atol=1e-5)


@pytest.mark.parametrize("mixer,overrides", MIXER_VARIANTS)
def test_batch_neighbours_do_not_change_output(mixer, overrides):
    # A sentence's output must not depend on how long the other sentences of its batch are.
    model = _student(mixer, **overrides)
    sentence = torch.randint(0, 1000, (1, 7))
    alone = model.encode(sentence, torch.ones(1, 7, dtype=torch.long))
    neighbour = torch.randint(0, 1000, (1, 40))
    batch = torch.zeros(2, 40, dtype=torch.long)
    mask = torch.zeros(2, 40, dtype=torch.long)
    batch[0, :7], mask[0, :7] = sentence, 1
    batch[1], mask[1] = neighbour, 1

    with torch.no_grad():
        together = model.encode(batch, mask)[:1]

    assert torch.allclose(alone, together, atol=1e-5)


@pytest.mark.parametrize("mixer", ["softmax", "logphase"])
def test_attention_mixing_matrices_are_row_stochastic(mixer):
    model = _student(mixer)
    ids = torch.randint(0, 1000, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 8:] = 0

    matrices = model.mixing_matrices(ids, mask)  # (B, L, H, T, T)

    assert matrices.shape == (2, 2, 4, 12, 12)
    assert torch.all(matrices >= 0)
    assert torch.allclose(matrices.sum(dim=-1), torch.ones(2, 2, 4, 12), atol=1e-5)
    assert torch.all(matrices[1, :, :, :, 8:] == 0)


@pytest.mark.parametrize("overrides", [{}, {"spectral_filter": "learned"}])
def test_spectral_mixing_matrix_reproduces_the_mixer(overrides):
    model = _student("spectral", quaternion_rotation=False, **overrides)
    mixer = model.blocks[0].mixer
    x = torch.randn(1, 10, 32)
    mask = torch.ones(1, 10, dtype=torch.bool)

    with torch.no_grad():
        values = mixer.value(x)
        matrices = mixer.mixing_matrix(x, mask)[0]  # (H, T, T)
        output = mixer.out.weight.new_zeros(1, 10, 32)
        head_dim = 32 // 4
        for head in range(4):
            channels = slice(head * head_dim, (head + 1) * head_dim)
            output[0, :, channels] = matrices[head] @ values[0, :, channels]

    if "spectral_filter" not in overrides:
        with torch.no_grad():
            expected = mixer(x, mask) - mixer.out.bias
            expected = expected @ torch.linalg.pinv(mixer.out.weight.T)
        assert torch.allclose(output, expected, atol=1e-4)
    assert matrices.shape == (4, 10, 10)


def test_quaternion_rotation_is_orthogonal():
    rotation = QuaternionRotation()
    with torch.no_grad():
        rotation.left_angles.copy_(torch.tensor([0.7, -1.2, 2.1]))
        rotation.right_angles.copy_(torch.tensor([-0.3, 0.5, 1.9]))
    matrix = rotation.matrix()
    x = torch.randn(6, 16)

    assert torch.allclose(matrix @ matrix.T, torch.eye(4), atol=1e-6)
    assert torch.allclose(rotation(x).norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_quaternion_rotation_starts_as_identity():
    x = torch.randn(3, 8)

    assert torch.allclose(QuaternionRotation()(x), x)


def test_logphase_alpha_is_clamped():
    model = _student("logphase")
    strength = model.blocks[0].mixer.alpha
    with torch.no_grad():
        strength.raw.fill_(10.0)

    assert float(strength().detach()) == 3.0


def test_logphase_heads_match_filtered_qk():
    # The mixer filters x (and the mask) before the Q/K projection. By linearity that equals the
    # definition, which projects the masked x to Q and K and then filters Q and K along T.
    torch.manual_seed(0)
    mixer = LogPhaseMixer(d_model=16, n_heads=4, dropout=0.0, n_fft=64, alpha_init=1.3).eval()
    nn.init.normal_(mixer.qkv.bias)
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    mask = torch.tensor([[True] * 9, [True] * 5 + [False] * 4])
    mixer.double()

    q, k, _ = mixer._heads(x, mask)

    real = mask[:, :, None].double()
    projected = mixer.qkv(x)[..., :32] * real
    response = logphase_response(64, mixer.alpha())[:, None]
    expected = filter_sequence(projected, response, 64).view(2, 9, 2, 4, 4).permute(2, 0, 3, 1, 4)
    assert torch.allclose(q, expected[0], atol=1e-10)
    assert torch.allclose(k, expected[1], atol=1e-10)


def test_filter_cache_after_inference_mode():
    # The first call of a shape may come from an attention snapshot under inference_mode. The
    # cached tensors must still be usable when training saves them for backward.
    mixer = LogPhaseMixer(d_model=8, n_heads=2, dropout=0.0, n_fft=1024, alpha_init=0.7)
    x = torch.randn(1, 13, 8)
    mask = torch.ones(1, 13, dtype=torch.bool)
    with torch.inference_mode():
        mixer(x, mask)

    mixer(x, mask).sum().backward()

    assert mixer.alpha.raw.grad is not None and torch.isfinite(mixer.alpha.raw.grad)
