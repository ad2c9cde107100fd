"""GPU check: the CUDA paths of the engine in one prepared script that finishes in minutes.

Needs a CUDA device and the data folder (glue/ and tokenizers/, from --data or
$LAMPREIA_TEST_DATA); it builds its teachers from the tokenizer files and downloads nothing.

1. The ``paper`` preset (SST-2, first 2,000 training and 400 dev rows, the d_model 256 × 4-layer
   student, 5 epochs, confidence weighting) with three tiny random teachers (GPT-2, DistilBERT,
   RoBERTa, width 32) plus MiniLM, on CUDA with mixed precision (bf16 where the GPU supports it).
   Teachers run in fp16 on the GPU, one at a time. Reports extraction and epoch time, dev
   accuracy and peak CUDA memory.
2. The same run again: its teacher forward passes must be 0 (the embedding cache).
3. One short run with bf16 reported as unsupported, which takes the fp16 + GradScaler path.
4. The inference benchmark (batch 32 × 128) in fp32 and with autocast, with peak memory.
5. The mixer scaling benchmark and the Toeplitz/FFT rule check on the GPU.

    python bench/gpu_check.py [--data DIR] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_data_argument,
    data_folder,
    describe_environment,
    detail,
    gpt2_tokenizer_folder,
    isolated_user_folders,
    summary,
    timed_run,
    warn_if_busy,
)

import torch  # noqa: E402

KINDS = ("gpt2", "distilbert", "roberta")

# TODO: this script has not run on a GPU yet. Its flow was checked on the CPU with the CUDA calls
# stubbed out, so the CUDA paths themselves and the 5-minute budget are unverified.


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise SystemExit(
            f"bench/gpu_check.py needs a CUDA device, but torch {torch.__version__} ({build}) sees none. "
            "Run it on a machine with an NVIDIA GPU and a CUDA build of torch."
        )
    return torch.device("cuda")


def paper_config(data: Path, tokenizer: Path, teachers: list[str], **overrides):
    from engine.config import load_preset

    values = {
        "data.glue_dir": str(data / "glue"),
        "student.tokenizer": str(tokenizer),
        "distillation.teachers": teachers,
        "training.device": "cuda",
        "training.amp": True,
        **overrides,
    }
    return load_preset("paper").with_overrides(values)


def run_and_report(label: str, config, scratch: Path, device: torch.device):
    from engine.devices import autocast_dtype

    torch.cuda.reset_peak_memory_stats(device)
    timed = timed_run(config, scratch)
    result = timed.result
    peak = torch.cuda.max_memory_allocated(device) / 2**20
    amp = str(autocast_dtype(device, config.training.amp)).removeprefix("torch.")
    accuracy = result.final_metrics.get("dev/accuracy", float("nan"))
    summary(
        f"gpu check, {label}: status {result.status}, autocast {amp}, {len(config.distillation.teachers)} teachers, "
        f"{result.teacher_forward_passes} teacher forward passes, extraction {timed.phases.get('extracting', 0.0):.1f} s, "
        f"epoch {timed.epoch_seconds:.2f} s, dev accuracy {accuracy:.3f}, peak CUDA memory {peak:.0f} MiB"
    )
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--quick", action="store_true", help="one epoch on 400 rows instead of the preset's 5 epochs on 2,000")
    args = parser.parse_args()
    device = require_cuda()
    data = data_folder(args.data)
    detail(describe_environment())
    warn_if_busy()

    from tests.tiny_models import build_tiny_teacher

    quick = {"data.train_limit": 400, "training.epochs": 1} if args.quick else {}
    with isolated_user_folders() as scratch:
        teachers = [str(build_tiny_teacher(kind, data / "tokenizers", scratch / f"tiny-{kind}")) for kind in KINDS] + ["minilm"]
        tokenizer = gpt2_tokenizer_folder(data, scratch)

        first = run_and_report("paper preset, empty cache", paper_config(data, tokenizer, teachers, **quick), scratch, device)
        again = run_and_report("paper preset, re-run", paper_config(data, tokenizer, teachers, **quick), scratch, device)
        summary(
            f"gpu check, teacher cache: re-run {again.result.teacher_forward_passes} forward passes, "
            f"extraction again/first = {again.phases.get('extracting', 0.0) / max(first.phases.get('extracting', 0.0), 1e-9):.3f}x (goal ~0)"
        )
        if again.result.teacher_forward_passes:
            raise SystemExit(f"The re-run made {again.result.teacher_forward_passes} teacher forward passes instead of 0: the embedding cache missed.")

        # Reporting bf16 as unsupported makes the engine choose fp16 with a gradient scaler.
        short = paper_config(data, tokenizer, teachers[:1], **{"data.train_limit": 400, "training.epochs": 1})
        with mock.patch("torch.cuda.is_bf16_supported", return_value=False):
            run_and_report("fp16 + GradScaler path", short, scratch, device)

    from bench import inference, mixer_scaling

    rate, peak = inference.measure(device, 32, 128, repeats=20, amp_dtype=None)
    amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    amp_rate, amp_peak = inference.measure(device, 32, 128, repeats=20, amp_dtype=amp_dtype)
    summary(
        f"gpu check, inference (batch 32, length 128): fp32 {rate:,.0f} tokens/s ({peak}), "
        f"{str(amp_dtype).removeprefix('torch.')} autocast {amp_rate:,.0f} tokens/s ({amp_peak}); "
        f"fp32/reference 890 tokens/s = {rate / inference.REFERENCE_TOKENS_PER_SECOND:.1f}x"
    )

    mixer_scaling.compare_mixers([128, 512, 2048], tokens=4096, repeats=5, device=device)
    grid = [(256, 64), (256, 128), (1024, 256), (1024, 512), (4096, 512), (4096, 1024), (4096, 2048)]
    mixer_scaling.check_toeplitz_rule(grid, tokens=4096, repeats=5, device=device)


if __name__ == "__main__":
    main()
