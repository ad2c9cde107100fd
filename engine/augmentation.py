"""Token augmentation of the student's input; teachers always see the clean text.

Per row, ``mask_fraction`` of the real non-special tokens become the mask id (the unknown id for
tokenizers without a mask token, such as GPT-2) and ``replace_fraction`` become a random token
from the non-special vocabulary. The counts are fraction × length rounded stochastically, so the
expected rate is exact even for sentences of a few tokens.
"""

from __future__ import annotations

import torch


def augment_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_id: int,
    replacement_ids: torch.Tensor,
    mask_fraction: float,
    replace_fraction: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Return a copy of ``input_ids`` (B, T) with the masked and replaced tokens."""
    if mask_fraction <= 0 and replace_fraction <= 0:
        return input_ids

    device = input_ids.device
    eligible = attention_mask.bool() & ~special_mask.bool()
    eligible_count = eligible.sum(dim=1, keepdim=True).float()  # (B, 1)

    # Random rank of each eligible position within its row; ineligible positions rank last.
    scores = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    scores = scores.masked_fill(~eligible, 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)

    jitter = torch.rand((input_ids.shape[0], 2), generator=generator, device="cpu").to(device)
    n_mask = torch.floor(eligible_count * mask_fraction + jitter[:, :1])
    n_replace = torch.floor(eligible_count * replace_fraction + jitter[:, 1:])
    n_replace = torch.minimum(n_replace, eligible_count - n_mask).clamp(min=0)

    masked = (ranks < n_mask) & eligible
    replaced = (ranks >= n_mask) & (ranks < n_mask + n_replace) & eligible

    picks = torch.randint(len(replacement_ids), input_ids.shape, generator=generator, device="cpu").to(device)
    random_tokens = replacement_ids.to(device)[picks]

    augmented = input_ids.masked_fill(masked, mask_id)
    return torch.where(replaced, random_tokens, augmented)
