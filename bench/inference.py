"""Inference throughput and peak memory of the paper-size student, beside the reference 890 tokens/s.

The student is the default config (d_model 256, 4 layers, 8 heads, FFN 1024, log-phase mixer,
prime-harmonic embedding of GPT-2's 50,257 tokens) in eval mode under ``torch.inference_mode``,
on batches of 32 × 128 random token ids with every token real, without projection heads (the
deployed model). Throughput is the median over repeated batches. Peak memory is the process's
peak resident set size on the CPU (Python, torch and the model included) and
``torch.cuda.max_memory_allocated`` on a GPU. The method's reference code reports 890 tokens/s
on a GPU (inputs padded to 128 tokens), so a CPU figure beside it compares machines as much as code.

    python bench/inference.py [--quick] [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
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
from engine.student import Student  # noqa: E402

# Inference throughput reported by the method's reference code, measured on a GPU.
REFERENCE_TOKENS_PER_SECOND = 890.0
GPT2_VOCAB = 50257


def measure(device: torch.device, batch: int, length: int, repeats: int, amp_dtype: torch.dtype | None) -> tuple[float, str]:
    """Return (tokens per second, peak memory text) of the student on ``device``."""
    torch.manual_seed(0)
    model = Student(StudentConfig(), GPT2_VOCAB, num_labels=2, teacher_dims=[]).to(device).eval()
    ids = torch.randint(0, GPT2_VOCAB, (batch, length), device=device)
    mask = torch.ones_like(ids)

    def forward() -> None:
        autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            model(ids, mask, with_projections=False)
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = median(interleaved_medians({"forward": forward}, repeats=repeats, warmup=2)["forward"])
    if device.type == "cuda":
        peak = f"peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    else:
        # ru_maxrss is in KiB on Linux.
        peak = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB"
    return batch * length / seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    apply_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was given, but torch sees no CUDA device.")
    detail(describe_environment())
    warn_if_busy()

    batch, length = (4, 32) if args.quick else (32, 128)
    repeats = args.repeats or (2 if args.quick else 10)
    tokens_per_second, peak = measure(device, batch, length, repeats, amp_dtype=None)
    where = "this GPU" if device.type == "cuda" else "this CPU"
    summary(
        f"inference ({device.type}, fp32, batch {batch}, length {length}): {tokens_per_second:,.0f} tokens/s, {peak}; "
        f"the method's reference code reports {REFERENCE_TOKENS_PER_SECOND:.0f} tokens/s on a GPU; {where}/reference = {tokens_per_second / REFERENCE_TOKENS_PER_SECOND:.1f}x"
    )

    amp_dtype = None
    if device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif not args.quick and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        amp_dtype = torch.bfloat16
    if amp_dtype is not None:
        amp_rate, _ = measure(device, batch, length, repeats, amp_dtype)
        name = str(amp_dtype).removeprefix("torch.")
        summary(f"inference ({device.type}, {name} autocast, batch {batch}, length {length}): {amp_rate:,.0f} tokens/s; {name}/fp32 = {amp_rate / tokens_per_second:.2f}x")


if __name__ == "__main__":
    main()
