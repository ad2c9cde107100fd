"""The ΨQRH student: token embedding + positions → pre-LayerNorm blocks → masked mean → heads.

The semantic embedding s is the masked mean of the final hidden states over real tokens. The
classifier head maps s to logits (one output for STS-B regression); one projection head per
teacher maps s to that teacher's width for the distillation loss and is not part of the
deployed student (``count_parameters`` leaves them out by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.config import StudentConfig
from engine.devices import available_memory, describe_device
from engine.dropout import Dropout
from engine.embeddings import TokenEmbedding
from engine.errors import ConfigError
from engine.spectral import LogPhaseMixer, SoftmaxMixer, SpectralMixer


@dataclass
class StudentOutput:
    logits: torch.Tensor  # (B, num_labels)
    semantic_embedding: torch.Tensor  # (B, d_model)
    projections: list[torch.Tensor]  # one (B, teacher_dim) per teacher


def build_mixer(config: StudentConfig) -> nn.Module:
    if config.mixer == "softmax":
        return SoftmaxMixer(config.d_model, config.n_heads, config.dropout)
    if config.mixer == "logphase":
        return LogPhaseMixer(config.d_model, config.n_heads, config.dropout, config.fft_length, config.phase_alpha_init)
    return SpectralMixer(
        config.d_model,
        config.n_heads,
        config.fft_length,
        config.phase_alpha_init,
        learned_filter=config.spectral_filter == "learned",
        quaternion_rotation=config.quaternion_rotation,
    )


class StudentBlock(nn.Module):
    """x + mixer(LN(x)), then x + FFN(LN(x)) with a GELU feed-forward layer."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.mixer_norm = nn.LayerNorm(config.d_model)
        self.mixer = build_mixer(config)
        self.ffn_norm = nn.LayerNorm(config.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(config.d_model, config.ffn_size),
            nn.GELU(),
            nn.Linear(config.ffn_size, config.d_model),
            Dropout(config.dropout),
        )
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.mixer_norm(x), mask))
        return x + self.ffn(self.ffn_norm(x))


class Student(nn.Module):
    """The compact student model; ``teacher_dims`` gives the width of each projection head."""

    def __init__(self, config: StudentConfig, vocab_size: int, num_labels: int, teacher_dims: list[int]) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.token_embedding = TokenEmbedding(config.embedding, vocab_size, config.d_model, config.n_primes)
        self.position_embedding = nn.Embedding(config.max_seq_len, config.d_model)
        self.embedding_dropout = Dropout(config.dropout)
        self.blocks = nn.ModuleList(StudentBlock(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model)
        self.classifier = nn.Linear(config.d_model, num_labels)
        self.projections = nn.ModuleList(nn.Linear(config.d_model, dim) for dim in teacher_dims)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final-layer hidden states (B, T, d_model); padding rows hold unspecified values."""
        mask = attention_mask.bool()
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.token_embedding(input_ids) + self.position_embedding(positions)[None]
        x = self.embedding_dropout(x)
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Semantic embedding s (B, d_model): the mean of the hidden states over real tokens."""
        hidden = self.hidden_states(input_ids, attention_mask)
        weights = attention_mask.to(hidden.dtype)[:, :, None]
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_projections: bool = True) -> StudentOutput:
        semantic = self.encode(input_ids, attention_mask)
        logits = self.classifier(semantic)
        projections = [head(semantic) for head in self.projections] if with_projections else []
        return StudentOutput(logits=logits, semantic_embedding=semantic, projections=projections)

    @torch.no_grad()
    def mixing_matrices(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token-mixing matrices of every layer for a batch: (B, layers, heads, T, T).

        Runs in eval mode (no dropout) and restores the previous mode afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            mask = attention_mask.bool()
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.token_embedding(input_ids) + self.position_embedding(positions)[None]
            matrices = []
            for block in self.blocks:
                matrices.append(block.mixer.mixing_matrix(block.mixer_norm(x), mask))
                x = block(x, mask)
            return torch.stack(matrices, dim=1)
        finally:
            self.train(was_training)

    def count_parameters(self, include_projections: bool = False) -> int:
        total = sum(p.numel() for p in self.parameters())
        if not include_projections:
            total -= sum(p.numel() for p in self.projections.parameters())
        return total


# fp32 weights, gradients and AdamW's two moment buffers.
TRAINING_BYTES_PER_PARAMETER = 16


def training_memory_lower_bound(config: StudentConfig, num_labels: int) -> int:
    """Return bytes that training the student needs at least: its weights, gradients and optimizer state.

    Activations, the token table of a learned embedding and the projection heads come on top, so a
    student that does not fit this bound cannot train at all.
    """
    return TRAINING_BYTES_PER_PARAMETER * count_student_parameters(config, vocab_size=0, num_labels=num_labels)


def count_student_parameters(config: StudentConfig, vocab_size: int, num_labels: int) -> int:
    """Return the parameter count of a student without projection heads, from the shapes alone.

    The GUI shows this count as the form changes. Building even a meta-device model there made the
    first count import torch's compiler stack (``normal_`` on meta tensors goes through torch._refs),
    which froze the window for about 2.5 s. A test checks the formula against real models.
    """
    d, ffn = config.d_model, config.ffn_size

    def linear(inputs: int, outputs: int) -> int:
        return inputs * outputs + outputs

    layer_norm = 2 * d

    embedding = 0
    if "prime-harmonic" in config.embedding:
        embedding += linear(config.n_primes, d) + layer_norm
    if "learned" in config.embedding:
        embedding += vocab_size * d

    if config.mixer == "spectral":
        mixer = 2 * linear(d, d) + 1  # value and output projections, the phase strength α
        if config.spectral_filter == "learned":
            mixer += (config.fft_length // 2 + 1) * d * 2  # one complex weight per rFFT bin and channel
        if config.quaternion_rotation:
            mixer += 6
    else:
        mixer = linear(d, 3 * d) + linear(d, d) + (1 if config.mixer == "logphase" else 0)
    block = 2 * layer_norm + mixer + linear(d, ffn) + linear(ffn, d)

    positions = config.max_seq_len * d
    return embedding + positions + config.n_layers * block + layer_norm + linear(d, num_labels)


def check_student_fits(config: StudentConfig, num_labels: int, device: torch.device) -> None:
    """Raise ConfigError when the student's weights and optimizer state alone exceed the device's free memory.

    Without this, a student near the size limits is killed by the kernel's out-of-memory killer
    on the CPU, with no message and its run left behind as interrupted.
    """
    available = available_memory(device)
    needed = training_memory_lower_bound(config, num_labels)
    if available is None or needed <= available:
        return
    gib = 1024**3
    # The CPU's usual description includes its thread count, which is unrelated to memory.
    where = f"on {describe_device(device)}" if device.type == "cuda" else "in RAM"
    raise ConfigError(
        "student.d_model",
        f"d_model {config.d_model} with {config.n_layers} layers has at least {needed // TRAINING_BYTES_PER_PARAMETER:,} parameters, "
        f"and training needs at least {needed / gib:,.1f} GiB for their weights, gradients and AdamW state, "
        f"more than the {available / gib:,.1f} GiB free {where}.",
        "Use a smaller d_model or fewer layers (CLI: --d-model, --layers); the paper size is d_model 256 with 4 layers.",
    )
