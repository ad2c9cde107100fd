"""Dropout of the student, with a faster mask on the CPU.

torch's CPU dropout draws its Bernoulli mask with a serial kernel, one random number per element
on one thread (torch 2.13). In the student's CPU training step at batch 32 × 128 that kernel took
about 8% of the time on one thread (torch profiler). Drawing one uniform float per element
instead (``rand >= p``) still took 13% of that step with two threads, most of it for the
attention masks of (B, H, T, T) elements. So the mask here compares 16-bit random integers with
a threshold, four of them cut from each 64-bit draw of torch's generator. The drop probability is
rounded to a multiple of 2/65536 (0.1 becomes 0.1000061) and the kept elements are scaled by
1 / (1 − that), so the expected value stays exact. The comparison writes the mask as zeros and
ones in the dtype of the tensor it masks, because a product with a boolean mask first converts
the mask, in one more pass (docs/benchmarks.md, section 9, has the effect). Other devices use
torch's fused kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _ScaleByMask(torch.autograd.Function):
    """y = x ⊙ keep · scale, saving only the 0/1 mask for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


# torch's CPU ``random_()`` on int64 draws 63-bit values (the sign bit is always 0). Shifted left
# by one bit, each draw contains four 16-bit lanes. Three are uniform over [-32768, 32767] and the
# lowest is uniform over its even values. One threshold gives all four the same drop probability when that
# probability is a multiple of 2/65536.
_LANES = 4
_LANE_VALUES = 1 << 16


def drop_threshold(p: float) -> tuple[int, float]:
    """Return (threshold on a signed 16-bit lane, the drop probability it gives) for probability ``p``.

    The probability is ``p`` rounded to a multiple of 2/65536 (see the lanes above).
    """
    # At most 65534 of 65536 values, so that the threshold fits a 16-bit lane.
    dropped = min(2 * round(p * _LANE_VALUES / 2), _LANE_VALUES - 2)
    return dropped - _LANE_VALUES // 2, dropped / _LANE_VALUES


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype = torch.bool) -> tuple[torch.Tensor, float]:
    """Return a CPU mask of ``shape`` that keeps each element with probability 1 − p', and p'.

    p' is ``p`` rounded to a multiple of 2/65536 (``drop_threshold``). The mask is True (or 1) on
    kept elements, in ``dtype``. The same seed gives the same mask in every dtype.
    """
    count = math.prod(shape)
    draws = torch.empty(-(-count // _LANES), dtype=torch.int64).random_()
    draws <<= 1
    threshold, dropped = drop_threshold(p)
    mask = torch.empty(count, dtype=dtype)
    torch.ge(draws.view(torch.int16)[:count], threshold, out=mask)
    return mask.view(shape), dropped


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 − p) while training."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    keep, dropped = keep_mask(x.shape, p, x.dtype)
    return _ScaleByMask.apply(x, keep, 1.0 / (1.0 - dropped))


class Dropout(nn.Module):
    """Drop-in replacement of ``nn.Dropout`` that uses ``dropout`` above."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
