"""Speed of the current student code against the code of an earlier git revision, in one process.

The student (engine/student.py with the token mixers of engine/spectral.py, the embedding of
engine/embeddings.py and, where it exists, engine/dropout.py) of the revision given by --revision
is loaded from git next to the current one. Both train with the loss and optimizer of
bench/student_throughput.py from the same initial weights, interleaved, on real SST-2 batches
(length-bucketed, batch 32) and on 32 × 128 batches, for the default log-phase mixer and for the
spectral mixer. Construction of the token embedding, where the earlier code rebuilt the
prime-harmonic table every time, is timed the same way.

    python bench/before_after.py [--revision REV] [--quick] [--data DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    REPOSITORY,
    add_common_arguments,
    add_data_argument,
    apply_threads,
    data_folder,
    describe_environment,
    detail,
    interleaved_medians,
    median,
    summary,
    warn_if_busy,
)
from bench.student_throughput import StudentTrainer, full_batches, passes, real_batches  # noqa: E402

from engine.config import StudentConfig  # noqa: E402

# The last revision before the speed work on the mixers, the embedding table and dropout.
DEFAULT_REVISION = "2bcefde~1"
# Modules that the earlier student imports, loaded from the same revision in dependency order.
EARLIER_MODULES = ("engine/dropout.py", "engine/spectral.py", "engine/embeddings.py", "engine/student.py")


def git(*arguments: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True)
    except OSError as error:
        raise SystemExit(f"Cannot run git in {REPOSITORY}: {error}.") from None


def read_at_revision(revision: str, path: str) -> str | None:
    """Return the text of ``path`` at ``revision``, or None when the file did not exist there."""
    if git("cat-file", "-e", f"{revision}^{{commit}}").returncode != 0:
        raise SystemExit(f"{revision!r} is not a commit of {REPOSITORY}; give an existing revision with --revision.")
    completed = git("show", f"{revision}:{path}")
    return completed.stdout if completed.returncode == 0 else None


@contextlib.contextmanager
def modules_replaced(replacements: dict[str, types.ModuleType]):
    """Make ``import`` return the given modules inside the block, and the originals afterwards."""
    saved = {name: sys.modules.get(name) for name in replacements}
    sys.modules.update(replacements)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def earlier_engine(revision: str) -> dict[str, types.ModuleType]:
    """Load the earlier revision's student modules, each importing its earlier neighbours."""
    loaded: dict[str, types.ModuleType] = {}
    for path in EARLIER_MODULES:
        source = read_at_revision(revision, path)
        if source is None:
            continue
        name = path.removesuffix(".py").replace("/", ".")
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(f"{name}_at_{revision}", loader=None))
        # dataclasses look up the defining module in sys.modules.
        sys.modules[module.__name__] = module
        with modules_replaced(loaded):
            exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)
        loaded[name] = module
    return loaded


def compare_steps(label: str, batches, vocab_size: int, mixer: str, earlier_student: type, repeats: int) -> None:
    trainers = {
        "earlier": StudentTrainer(vocab_size, mixer=mixer, model_class=earlier_student),
        "current": StudentTrainer(vocab_size, mixer=mixer),
    }
    seconds = interleaved_medians({name: passes(trainer, batches) for name, trainer in trainers.items()}, repeats=repeats)
    before, after = median(seconds["earlier"]), median(seconds["current"])
    summary(
        f"before/after, {mixer} student, {label}: training step {before / len(batches) * 1e3:.0f} ms before, "
        f"{after / len(batches) * 1e3:.0f} ms after; before/after = {before / after:.2f}x"
    )


def compare_construction(earlier_embeddings: types.ModuleType, vocab_size: int, repeats: int) -> None:
    import engine.embeddings as current_embeddings

    config = StudentConfig()

    def build(module: types.ModuleType):
        return lambda: module.TokenEmbedding(config.embedding, vocab_size, config.d_model, config.n_primes)

    seconds = interleaved_medians({"earlier": build(earlier_embeddings), "current": build(current_embeddings)}, repeats=repeats)
    before, after = median(seconds["earlier"]), median(seconds["current"])
    summary(
        f"before/after, token embedding construction (vocabulary {vocab_size}): {before * 1e3:.1f} ms before, "
        f"{after * 1e3:.1f} ms after; before/after = {before / after:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    add_data_argument(parser)
    parser.add_argument("--revision", default=DEFAULT_REVISION, help=f"git revision of the earlier code (default {DEFAULT_REVISION})")
    args = parser.parse_args()
    apply_threads(args.threads)
    data = data_folder(args.data)
    detail(describe_environment())
    warn_if_busy()

    earlier = earlier_engine(args.revision)
    repeats = args.repeats or (1 if args.quick else 5)
    batches, vocab_size = real_batches(data, 2 if args.quick else 24, rows=2000)
    full = full_batches(vocab_size, 1 if args.quick else 3, 32 if args.quick else 128)
    for mixer in ("logphase", "spectral"):
        compare_steps("SST-2 bucketed", batches, vocab_size, mixer, earlier["engine.student"].Student, repeats)
        compare_steps(f"32x{full[0].input_ids.shape[1]} full", full, vocab_size, mixer, earlier["engine.student"].Student, repeats)
    compare_construction(earlier["engine.embeddings"], vocab_size, repeats)


if __name__ == "__main__":
    main()
