"""Time and memory of the spectral mixer against softmax attention as the sequence grows.

Both mixers (d_model 256, 8 heads, training mode, so softmax attention applies its dropout) run
forward and backward on batches of a fixed number of tokens (4,096 by default: batch 32 at T 128,
8 at 512, 2 at 2,048), with the FFT length the student config derives from T (the next power of
two >= 2·T). Memory is the bytes of the tensors autograd saves for the backward pass, each storage
counted once. On CUDA the peak allocated memory of the step is printed as well.

The second part checks the rule that picks the Toeplitz-matrix or the FFT path of
``engine.spectral.filter_sequence``: it times both paths on a grid of (n_fft, T) shapes and
reports how much slower the path the rule picks is than the faster one.

    python bench/mixer_scaling.py [--quick] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_common_arguments,
    apply_threads,
    describe_environment,
    detail,
    interleaved_medians,
    median,
    summary,
    warn_if_busy,
)

import torch  # noqa: E402

from engine.config import StudentConfig  # noqa: E402
from engine.spectral import SoftmaxMixer, SpectralMixer, _filter_fft, _filter_toeplitz, logphase_response, uses_toeplitz  # noqa: E402

D_MODEL = 256
HEADS = 8
GOAL_LENGTH = 2048
GOAL_SPEEDUP = 3.0


def saved_tensor_bytes(run) -> int:
    """Bytes of the distinct storages autograd saves for backward while ``run()`` builds the graph."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(storages.values())


def mixer_step(mixer: torch.nn.Module, batch: int, length: int, device: torch.device):
    """Return (forward call, forward+backward call) on a random batch with every token real."""
    x = torch.randn(batch, length, D_MODEL, device=device, requires_grad=True)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)
    grad = torch.randn(batch, length, D_MODEL, device=device)

    def forward() -> torch.Tensor:
        return mixer(x, mask)

    def forward_backward() -> None:
        forward().backward(grad)
        x.grad = None
        mixer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return forward, forward_backward


def peak_cuda_bytes(call, device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call()
    return torch.cuda.max_memory_allocated(device) - before


def compare_mixers(lengths: list[int], tokens: int, repeats: int, device: torch.device) -> None:
    for length in lengths:
        batch = max(1, tokens // length)
        n_fft = StudentConfig(max_seq_len=length, d_model=D_MODEL, n_heads=HEADS).fft_length
        torch.manual_seed(0)
        mixers = {
            "softmax": SoftmaxMixer(D_MODEL, HEADS, dropout=0.1).to(device).train(),
            "spectral": SpectralMixer(D_MODEL, HEADS, n_fft, 1.0, learned_filter=False, quaternion_rotation=True).to(device).train(),
        }
        steps = {name: mixer_step(mixer, batch, length, device) for name, mixer in mixers.items()}
        memory = {name: saved_tensor_bytes(forward) for name, (forward, _) in steps.items()}
        peaks = {name: peak_cuda_bytes(step, device) for name, (_, step) in steps.items()}
        seconds = interleaved_medians({name: step for name, (_, step) in steps.items()}, repeats=repeats)

        softmax, spectral = median(seconds["softmax"]), median(seconds["spectral"])
        peak_text = ""
        if peaks["softmax"] is not None:
            peak_text = f"; CUDA peak {mib(peaks['softmax'])} vs {mib(peaks['spectral'])}"
        goal = f" (goal >= {GOAL_SPEEDUP:g}x)" if length == GOAL_LENGTH else ""
        summary(
            f"mixer scaling T={length} (batch {batch}, n_fft {n_fft}, {device.type}): fwd+bwd softmax {softmax * 1e3:.1f} ms, "
            f"spectral {spectral * 1e3:.1f} ms; saved activations softmax {mib(memory['softmax'])}, spectral {mib(memory['spectral'])}"
            f"{peak_text}; time softmax/spectral = {softmax / spectral:.2f}x{goal}"
        )


def mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB"


# The per-channel Toeplitz path allocates C·T² matrix elements, so larger shapes are not timed.
PER_CHANNEL_MAX_ELEMENTS = 2**26


def filter_call(path, x: torch.Tensor, n_fft: int, per_channel: bool, alpha: torch.Tensor):
    """Return a forward+backward call of one filter path on ``x``."""
    learned = None
    if per_channel:
        learned = torch.randn(n_fft // 2 + 1, x.shape[-1], dtype=torch.complex64, device=x.device, requires_grad=True)

    def call() -> None:
        response = learned if per_channel else logphase_response(n_fft, alpha)[:, None]
        path(x, response, n_fft).sum().backward()
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    return call


def check_toeplitz_rule(grid: list[tuple[int, int]], tokens: int, repeats: int, device: torch.device) -> None:
    """Time both filter paths per shape and report the cost of the path ``uses_toeplitz`` picks."""
    alpha = torch.tensor(1.0, device=device, requires_grad=True)
    worst_ratio, worst_shape, agreements, checks = 1.0, None, 0, 0
    for per_channel in (False, True):
        kind = "per-channel" if per_channel else "shared"
        for n_fft, length in grid:
            if per_channel and D_MODEL * length * length > PER_CHANNEL_MAX_ELEMENTS:
                continue
            x = torch.randn(max(1, tokens // length), length, D_MODEL, device=device, requires_grad=True)
            calls = {name: filter_call(path, x, n_fft, per_channel, alpha) for name, path in (("fft", _filter_fft), ("toeplitz", _filter_toeplitz))}
            seconds = interleaved_medians(calls, repeats=repeats)
            fft, toeplitz = median(seconds["fft"]), median(seconds["toeplitz"])

            picks_toeplitz = uses_toeplitz(length, n_fft, D_MODEL, per_channel)
            ratio = (toeplitz if picks_toeplitz else fft) / min(fft, toeplitz)
            checks += 1
            agreements += (toeplitz <= fft) == picks_toeplitz
            if ratio > worst_ratio:
                worst_ratio, worst_shape = ratio, f"{kind} n_fft {n_fft}, T {length}"
            detail(
                f"  filter {kind:11s} n_fft {n_fft:5d} T {length:5d} batch {x.shape[0]:4d}: fft {fft * 1e3:8.2f} ms, "
                f"toeplitz {toeplitz * 1e3:8.2f} ms; rule picks {'toeplitz' if picks_toeplitz else 'fft'} ({ratio:.2f}x the faster)"
            )
    where = f" at {worst_shape}" if worst_shape else ""
    summary(
        f"toeplitz/fft rule ({device.type}): picks the faster filter path in {agreements} of {checks} shapes; "
        f"worst pick{where}: picked/faster = {worst_ratio:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--tokens", type=int, default=None, help="tokens per batch (default 4096; quick: 256)")
    args = parser.parse_args()
    apply_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was given, but torch sees no CUDA device.")
    detail(describe_environment())
    warn_if_busy()

    if args.quick:
        lengths, tokens, repeats = [32, 64], args.tokens or 256, args.repeats or 1
        grid = [(64, 16), (64, 32)]
    else:
        lengths, tokens, repeats = [128, 512, GOAL_LENGTH], args.tokens or 4096, args.repeats or 5
        grid = [(256, 32), (256, 64), (256, 128), (1024, 128), (1024, 256), (1024, 384), (1024, 512),
                (4096, 256), (4096, 512), (4096, 1024), (4096, 2048)]
    compare_mixers(lengths, tokens, repeats, device)
    check_toeplitz_rule(grid, tokens, repeats, device)


if __name__ == "__main__":
    main()
