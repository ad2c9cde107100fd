"""The student's CPU dropout: same distribution as torch's, correct gradients, off in eval mode."""

import torch
import torch.nn.functional as F

from engine.dropout import Dropout, drop_threshold, dropout, keep_mask
from engine.spectral import SoftmaxMixer


def test_dropout_keeps_one_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(2000, 500)

    y = dropout(x, 0.1, training=True)

    _, dropped = drop_threshold(0.1)
    assert abs(dropped - 0.1) < 1e-5
    assert abs((y > 0).float().mean().item() - 0.9) < 0.002
    assert torch.equal(y.unique(), torch.tensor([0.0, 1.0 / (1.0 - dropped)]))


def test_mask_lanes_are_uniform():
    # The mask shifts each int64 draw left by one bit and cuts four 16-bit lanes from it, so it
    # needs 63 random bits.
    # A torch that drew fewer bits would make a used lane non-uniform, which this checks.
    torch.manual_seed(0)
    draws = torch.empty(200_000, dtype=torch.int64).random_()
    bits = torch.stack([(draws >> shift) & 1 for shift in range(63)]).float().mean(dim=1)

    assert torch.all((bits - 0.5).abs() < 0.005)
    assert torch.all(draws >= 0)


def test_keep_mask_shape_and_rate():
    torch.manual_seed(0)
    mask, dropped = keep_mask((7, 11, 13), 0.25)

    assert mask.shape == (7, 11, 13)
    assert mask.dtype == torch.bool
    assert dropped == 0.25
    large, _ = keep_mask((1000, 999), 0.25)
    assert abs(large.float().mean().item() - 0.75) < 0.003
    # All four lanes of a draw are used, the lowest with even values only, so each lane position
    # must keep the same rate.
    lanes = large.view(-1)[: 249_750 * 4].view(-1, 4).float().mean(dim=0)
    assert torch.all((lanes - 0.75).abs() < 0.005)


def test_drop_probability_fits_the_lanes():
    _, almost_all = drop_threshold(0.9999999)
    _, none = drop_threshold(1e-7)

    assert almost_all == 65534 / 65536
    assert none == 0.0


def test_masks_follow_the_seed():
    torch.manual_seed(3)
    first, _ = keep_mask((64, 4096), 0.1)
    torch.manual_seed(3)
    again, _ = keep_mask((64, 4096), 0.1)
    other, _ = keep_mask((64, 4096), 0.1)

    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_mask_dtype_does_not_change_the_mask():
    torch.manual_seed(5)
    boolean, _ = keep_mask((33, 70), 0.1)
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(5)
        numeric, _ = keep_mask((33, 70), 0.1, dtype)

        assert numeric.dtype == dtype
        assert torch.equal(numeric, boolean.to(dtype))


def test_dropout_keeps_the_dtype_under_bf16():
    torch.manual_seed(0)
    x = torch.randn(64, 300, dtype=torch.bfloat16, requires_grad=True)

    y = dropout(x, 0.1, training=True)
    y.float().sum().backward()

    assert y.dtype == torch.bfloat16
    assert x.grad.dtype == torch.bfloat16
    assert torch.equal(x.grad != 0, y != 0)


def test_dropout_gradient_uses_the_same_mask():
    torch.manual_seed(0)
    x = torch.randn(50, 40, requires_grad=True)

    y = dropout(x, 0.3, training=True)
    y.sum().backward()

    _, dropped = drop_threshold(0.3)
    assert torch.allclose(x.grad, (y != 0).float() / (1.0 - dropped))


def test_dropout_module_is_identity_in_eval_mode():
    module = Dropout(0.5).eval()
    x = torch.randn(4, 7)

    assert module(x) is x


def test_attention_without_dropout_matches_sdpa():
    torch.manual_seed(0)
    mixer = SoftmaxMixer(32, 4, dropout=0.0).train()
    x = torch.randn(3, 10, 32)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    q, k, v = mixer._heads(x, mask)

    written_out = mixer._attention_with_dropout(q, k, v, mask[:, None, None, :])
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])

    assert torch.allclose(written_out, reference, atol=1e-6)


def test_attention_dropout_drops_probabilities():
    torch.manual_seed(0)
    mixer = SoftmaxMixer(32, 4, dropout=0.3).train()
    x = torch.randn(3, 10, 32)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[2, 4:] = False
    q, k, v = (tensor.detach().requires_grad_() for tensor in mixer._heads(x, mask))
    key_mask = mask[:, None, None, :]

    torch.manual_seed(7)
    written_out = mixer._attention_with_dropout(q, k, v, key_mask)
    torch.manual_seed(7)
    scores = (q @ k.transpose(-1, -2) / 8**0.5).masked_fill(~key_mask, float("-inf"))
    probabilities = scores.softmax(dim=-1)
    keep, dropped = keep_mask(probabilities.shape, 0.3)
    reference = (probabilities * keep / (1.0 - dropped)) @ v

    assert 0.6 < keep.float().mean() < 0.8
    assert torch.allclose(written_out, reference, atol=1e-6)
    gradients = torch.autograd.grad(written_out.square().sum(), (q, k, v))
    expected = torch.autograd.grad(reference.square().sum(), (q, k, v))
    for got, want in zip(gradients, expected):
        assert torch.allclose(got, want, atol=1e-5)
