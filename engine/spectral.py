"""Token mixers of the student: softmax attention, log-phase attention and FFT spectral mixing.

All mixers map (B, T, d_model) to (B, T, d_model) given a boolean ``mask`` (B, T) that is True on
real tokens, and can return their token-to-token mixing matrix (B, H, T, T) for inspection.

The log-phase filter is the all-pass filter
    F(k) = exp(i·α·arctan(ln(k + ε))),  k = m / n_fft for rFFT bins m = 1 … n_fft/2 − 1,
with phase 0 at DC and at the Nyquist bin so that the spectrum stays Hermitian (the inverse
transform is real) and |F| = 1 everywhere (energy is preserved over the n_fft-long transform).
The FFT-based mixers zero the padding positions and transform over the fixed length n_fft
≥ 2·max_seq_len, so the filtering is a linear (not circular) convolution of the real tokens and
a sentence's output does not depend on how far its batch was padded.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.dropout import keep_mask

EPSILON = 1e-10
ALPHA_RANGE = (0.1, 3.0)


def logphase_response(n_fft: int, alpha: torch.Tensor) -> torch.Tensor:
    """Return the complex filter F over the n_fft // 2 + 1 rFFT bins, as a 1-D tensor."""
    phase_shape, magnitude = _logphase_shape(n_fft, alpha.device)
    return torch.polar(magnitude, alpha.to(torch.float32) * phase_shape)


@functools.lru_cache(maxsize=None)
def _logphase_shape(n_fft: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return arctan(ln(k + ε)) per rFFT bin (0 at DC and Nyquist) and ones, cached per n_fft and device."""
    # Built outside inference mode, so that a run that first filters under inference_mode (an
    # attention snapshot) can still save these tensors for backward later.
    with torch.inference_mode(False), torch.no_grad():
        bins = torch.arange(n_fft // 2 + 1, device=device, dtype=torch.float32)
        shape = torch.atan(torch.log(bins / n_fft + EPSILON))
        # DC and (for even n_fft) Nyquist bins must be real for a real inverse transform.
        shape[0] = 0.0
        if n_fft % 2 == 0:
            shape[-1] = 0.0
        return shape, torch.ones_like(shape)


# Cost model of the two filter paths, per sequence and channel: the Toeplitz product costs T²
# multiply-adds, the FFT path about n_fft·log2(n_fft) operations plus copies of n_fft-long complex
# buffers, whatever T is. The Toeplitz product is used while T² <= factor · n_fft · log2(n_fft).
# NOTE: the factors were fitted to bench/mixer_scaling.py timings on one thread of a 2-core AMD EPYC
# (Zen 5, fp32, torch 2.13 CPU build). There, one shared filter costs the same on both paths at
# about T = 450 for n_fft 1024 and T = 1,024 for n_fft 4096. On an Intel Xeon with AMX the Toeplitz
# product stays faster to longer T, so there the rule picks the FFT too early in 4 of the bench's 20
# shapes (at most 1.4x slower). No GPU crossover has been measured yet, and the bench prints it for
# the device it runs on.
TOEPLITZ_FACTOR_SHARED = 20.0
# One (T, T) matrix per channel is a batch of narrow products, so the FFT wins earlier.
TOEPLITZ_FACTOR_PER_CHANNEL = 4.0
# Upper bound on the elements of the per-channel Toeplitz matrices (C·T²), so that a wide model
# cannot allocate gigabytes for them; 2**25 float32 values are 128 MiB.
TOEPLITZ_MAX_ELEMENTS = 2**25


def uses_toeplitz(length: int, n_fft: int, channels: int, per_channel: bool) -> bool:
    """Return whether ``filter_sequence`` takes the (T, T) matrix path for this shape (cost model above)."""
    factor = TOEPLITZ_FACTOR_PER_CHANNEL if per_channel else TOEPLITZ_FACTOR_SHARED
    if length * length > factor * n_fft * math.log2(n_fft):
        return False
    return not per_channel or channels * length * length <= TOEPLITZ_MAX_ELEMENTS


def filter_sequence(x: torch.Tensor, response: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Filter ``x`` (…, T, C) along T with the rFFT-domain ``response`` over a fixed FFT length.

    ``response`` is (bins, 1) for one filter shared by all channels or (bins, C) per channel.
    The output has the input's length: the first T samples of the linear convolution of the
    zero-padded input with the filter's n_fft-long impulse response. Both paths compute the same
    convolution; the cheaper one for the shape is chosen by ``uses_toeplitz``.
    """
    length, channels = x.shape[-2], x.shape[-1]
    if uses_toeplitz(length, n_fft, channels, per_channel=response.shape[1] > 1):
        return _filter_toeplitz(x, response, n_fft)
    return _filter_fft(x, response, n_fft)


def _filter_fft(x: torch.Tensor, response: torch.Tensor, n_fft: int) -> torch.Tensor:
    length = x.shape[-2]
    # torch.fft has no bfloat16 kernels, and half precision loses too much in long sums. The
    # transform runs along the last axis, where it is about a third faster than along a strided one.
    signal = x.float().transpose(-1, -2)  # (..., C, T)
    spectrum = torch.fft.rfft(signal, n=n_fft, dim=-1)
    filtered = torch.fft.irfft(spectrum * response.transpose(0, 1), n=n_fft, dim=-1)
    return filtered[..., :length].transpose(-1, -2).to(x.dtype)


def _filter_toeplitz(x: torch.Tensor, response: torch.Tensor, n_fft: int) -> torch.Tensor:
    length = x.shape[-2]
    h = impulse_response(response, n_fft)  # (n_fft, 1) or (n_fft, C)
    if h.shape[1] == 1:
        matrix = toeplitz_from_impulse(h[:, 0], length).to(x.dtype)  # (T, T)
        return torch.einsum("ts,...sc->...tc", matrix, x)
    matrices = toeplitz_from_impulse(h, length).to(x.dtype)  # (C, T, T)
    return torch.einsum("cts,...sc->...tc", matrices, x)


def impulse_response(response: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Return the real impulse response h (n_fft, ...) of an rFFT-domain response (bins, ...)."""
    return torch.fft.irfft(response, n=n_fft, dim=0)


def toeplitz_from_impulse(h: torch.Tensor, length: int) -> torch.Tensor:
    """Return M (…, T, T) with M[t, s] = h[(t − s) mod n_fft], i.e. y = M x for inputs of length T."""
    gathered = h[_toeplitz_offsets(length, h.shape[0], h.device)]  # (T, T, ...)
    return gathered.movedim((0, 1), (-2, -1))


@functools.lru_cache(maxsize=None)
def _toeplitz_offsets(length: int, n_fft: int, device: torch.device) -> torch.Tensor:
    """Return the (T, T) indices (t − s) mod n_fft, cached per length, n_fft and device."""
    with torch.inference_mode(False), torch.no_grad():
        positions = torch.arange(length, device=device)
        return (positions[:, None] - positions[None, :]) % n_fft


class _PhaseStrength(nn.Module):
    """Learnable α of the log-phase filter, clamped to [0.1, 3]."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.raw = nn.Parameter(torch.tensor(float(initial)))

    def forward(self) -> torch.Tensor:
        return self.raw.clamp(*ALPHA_RANGE)


class SoftmaxMixer(nn.Module):
    """Multi-head scaled dot-product attention with a key-padding mask. O(T²)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _heads(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, _ = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, dh)
        return q, k, v

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        q, k, v = self._heads(x, mask)
        key_mask = mask[:, None, None, :]  # (B, 1, 1, T), True = attend
        if self.training and self.dropout > 0 and x.device.type == "cpu":
            mixed = self._attention_with_dropout(q, k, v, key_mask)
        else:
            dropout = self.dropout if self.training else 0.0
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout)
        return self.out(mixed.transpose(1, 2).reshape(batch, length, d_model))

    def _attention_with_dropout(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """Attention with dropout on the probabilities, written out for the CPU.

        torch 2.13's CPU flash-attention kernel has no dropout, so scaled_dot_product_attention
        falls back to its generic path there; this is the same computation with the faster dropout
        mask of engine.dropout. Every row has at least one real key, so no softmax row is empty.
        """
        # The padding enters as an additive bias of 0 or -inf rather than through masked_fill,
        # whose backward copies the whole (B, H, T, T) gradient. Adding it in place saves a new
        # (B, H, T, T) tensor, and the product's backward does not need the product's output.
        key_bias = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~key_mask, float("-inf"))
        scores = torch.matmul(q * (1.0 / math.sqrt(self.head_dim)), k.transpose(-1, -2)).add_(key_bias)  # (B, H, T, T)
        probabilities = scores.softmax(dim=-1)
        # Dropout's 1 / (1 - p) scales the (B, H, T, dh) output instead of the (B, H, T, T)
        # probabilities: the same product, with the scaling on dh / T of the elements. The mask
        # contains zeros and ones in the probabilities' dtype: with it, the training step was faster
        # than with torch.where and a boolean mask (docs/benchmarks.md, section 9).
        keep, dropped = keep_mask(probabilities.shape, self.dropout, probabilities.dtype)
        return (probabilities * keep) @ v * (1.0 / (1.0 - dropped))

    def mixing_matrix(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention probabilities (B, H, T, T); every row sums to 1 over the real keys."""
        q, k, _ = self._heads(x, mask)
        scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        return scores.softmax(dim=-1)


class LogPhaseMixer(SoftmaxMixer):
    """Softmax attention whose Q and K are first passed through the log-phase all-pass filter."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, n_fft: int, alpha_init: float) -> None:
        super().__init__(d_model, n_heads, dropout)
        self.n_fft = n_fft
        self.alpha = _PhaseStrength(alpha_init)

    def _heads(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q and K filtered along T after zeroing the padding, V unfiltered; each (B, H, T, dh).

        The filter acts along T with one response for all channels, so it commutes with the Q/K
        projection: filter(m ⊙ (x W + b)) = filter(m ⊙ x) W + filter(m) b for the mask m. Filtering
        the d_model channels of x instead of the 2·d_model of Q and K halves the filter's cost.
        """
        batch, length, d_model = x.shape
        real = mask[:, :, None].to(x.dtype)  # (B, T, 1)
        # TODO: on short SST-2 batches (T ≈ 11, batch 32, 2 CPU threads) the student trains at about
        # 0.9 times the speed of a BERT of its shape with a frozen token table
        # (bench/student_throughput.py). Caching the filter's α-independent parts gained only 1%, so
        # the cause is not located yet.
        # The mask is filtered as one more channel of x. Its filtered copy then multiplies the Q/K
        # bias as one more input column of the Q/K weight. That is one filter product and one
        # matrix product instead of two of each.
        response = logphase_response(self.n_fft, self.alpha())[:, None]  # (bins, 1) for the T axis
        filtered = filter_sequence(torch.cat([x * real, real], dim=-1), response, self.n_fft)  # (B, T, d_model + 1)

        weight_qk, weight_v = self.qkv.weight.split([2 * d_model, d_model])
        bias_qk, bias_v = self.qkv.bias.split([2 * d_model, d_model])
        qk = F.linear(filtered, torch.cat([weight_qk, bias_qk[:, None]], dim=1))  # (B, T, 2·d_model)
        v = F.linear(x, weight_v, bias_v)

        q, k = qk.view(batch, length, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        v = v.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        return q, k, v


class QuaternionRotation(nn.Module):
    """Rotate each group of 4 channels ψ by q_L ⊗ ψ ⊗ q̄_R with learnable unit quaternions.

    Each quaternion is built from three angles (θ, ω, φ) as
    (cos θ, sin θ cos ω, sin θ sin ω cos φ, sin θ sin ω sin φ), which has norm 1 for any angles;
    six scalars per layer in all. At initialisation θ = 0, so the rotation is the identity.
    """

    def __init__(self) -> None:
        super().__init__()
        self.left_angles = nn.Parameter(torch.zeros(3))
        self.right_angles = nn.Parameter(torch.zeros(3))

    @staticmethod
    def _unit_quaternion(angles: torch.Tensor) -> torch.Tensor:
        theta, omega, phi = angles.unbind()
        return torch.stack(
            [
                torch.cos(theta),
                torch.sin(theta) * torch.cos(omega),
                torch.sin(theta) * torch.sin(omega) * torch.cos(phi),
                torch.sin(theta) * torch.sin(omega) * torch.sin(phi),
            ]
        )

    @staticmethod
    def _left_matrix(q: torch.Tensor) -> torch.Tensor:
        a, b, c, d = q.unbind()
        return torch.stack(
            [torch.stack([a, -b, -c, -d]), torch.stack([b, a, -d, c]), torch.stack([c, d, a, -b]), torch.stack([d, -c, b, a])]
        )

    @staticmethod
    def _right_matrix(q: torch.Tensor) -> torch.Tensor:
        a, b, c, d = q.unbind()
        return torch.stack(
            [torch.stack([a, -b, -c, -d]), torch.stack([b, a, d, -c]), torch.stack([c, -d, a, b]), torch.stack([d, c, -b, a])]
        )

    def matrix(self) -> torch.Tensor:
        """The 4×4 orthogonal matrix of ψ ↦ q_L ⊗ ψ ⊗ q̄_R."""
        left = self._unit_quaternion(self.left_angles)
        right = self._unit_quaternion(self.right_angles)
        right_conjugate = right * torch.tensor([1.0, -1.0, -1.0, -1.0], device=right.device)
        return self._left_matrix(left) @ self._right_matrix(right_conjugate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, channels = x.shape
        groups = x.reshape(*lead, channels // 4, 4)
        rotated = groups @ self.matrix().to(x.dtype).T
        return rotated.reshape(*lead, channels)


class SpectralMixer(nn.Module):
    """FFT token mixing: value projection → rFFT → filter → irFFT → quaternion rotation → output. O(T log T)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_fft: int,
        alpha_init: float,
        learned_filter: bool,
        quaternion_rotation: bool,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.n_fft = n_fft
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.alpha = _PhaseStrength(alpha_init)
        self.learned_filter: nn.Parameter | None = None
        if learned_filter:
            # Per-channel complex filter stored as (bins, d_model, 2) real parts, initialised to
            # the log-phase filter so that both options start from the same function.
            initial = logphase_response(n_fft, torch.tensor(alpha_init))[:, None].expand(-1, d_model)
            self.learned_filter = nn.Parameter(torch.view_as_real(initial.contiguous()).clone())
        self.rotation = QuaternionRotation() if quaternion_rotation else None

    def response(self) -> torch.Tensor:
        """The filter over rFFT bins: (bins, 1) shared, or (bins, d_model) when learned per channel."""
        if self.learned_filter is not None:
            return torch.view_as_complex(self.learned_filter)
        return logphase_response(self.n_fft, self.alpha())[:, None]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        values = self.value(x) * mask[:, :, None].to(x.dtype)
        mixed = filter_sequence(values, self.response(), self.n_fft)
        if self.rotation is not None:
            mixed = self.rotation(mixed)
        return self.out(mixed)

    def mixing_matrix(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The real Toeplitz matrix (B, H, T, T) of the filter, averaged over each head's channels.

        Rows and columns of padding positions are zero. The quaternion rotation mixes channels,
        not tokens, so it does not change this matrix.
        """
        batch, length, d_model = x.shape
        response = self.response().expand(-1, d_model)  # (bins, C)
        h = impulse_response(response, self.n_fft)  # (n_fft, C)
        h = h.reshape(self.n_fft, self.n_heads, d_model // self.n_heads).mean(dim=-1)  # (n_fft, H)
        matrices = toeplitz_from_impulse(h, length)  # (H, T, T)
        real = mask.float()
        return matrices[None] * real[:, None, :, None] * real[:, None, None, :]
