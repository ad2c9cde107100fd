"""Command-line interface: ``lampreia run | runs | show | compare | export | presets``.

Same trainer and run store as the GUI. Every invalid input ends with a one-line reason on stderr
and a non-zero exit status: 2 for invalid arguments or configuration, 1 for a failed run,
130 for a run cancelled with Ctrl-C.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import textwrap
import time
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence, TextIO

from engine.config import DISTILL_LOSSES, EMBEDDINGS, MIXERS, PADDING_MODES, WEIGHTINGS, DistillationConfig, RunConfig, StudentConfig, config_warnings, list_presets, load_preset, preset_description
from engine.errors import ConfigError, LampreiaError, StoreError
from engine.events import CancellationToken, Event, EvaluationLogged, PhaseChanged, Progress, RunPrepared, RunStarted
from engine.logs import configure_logging
from engine.model_sources import ALIASES, absolute_if_local, short_model_name
from engine.paths import default_database_path, replaced_text_file
from engine.run_comparison import (
    MISSING,
    REPEAT_KEYS,
    MetricRow,
    PooledMetricRow,
    PooledValue,
    comparison_csv,
    comparison_notes,
    config_diff,
    drop_seed_repeats,
    environment_diff,
    format_config_value,
    group_label,
    metric_rows,
    pooled_baselines,
    pooled_csv,
    pooled_metric_rows,
    repeats_note,
    rerun_name,
    rerun_origin,
    run_seed,
    seed_groups,
)
from engine.run_store import RunRecord, RunStore, open_store
from engine.significance import BOOTSTRAP_SEED, CONFIDENCE, DEFAULT_RESAMPLES, PairedSplit, paired_conclusion, paired_heading
from engine.tasks import TASKS, baseline_name, task_title

log = logging.getLogger(__name__)

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_CANCELLED = 130
# Width of the name column of `lampreia runs`. Longer names are cut by a "…" in the middle (`show` prints them whole).
NAME_WIDTH = 24
NOTHING_RECORDED = "stopped before the run was recorded; nothing was stored."

# Command-line option → config path. Options left unset keep the preset's (or default) value.
_OVERRIDES = {
    "task": "task",
    "name": "name",
    "train_limit": "data.train_limit",
    "dev_limit": "data.dev_limit",
    "heldout_fraction": "data.heldout_fraction",
    "epochs": "training.epochs",
    "batch_size": "training.batch_size",
    "lr": "training.learning_rate",
    "alpha": "distillation.alpha",
    "weighting": "distillation.weighting",
    "fixed_weights": "distillation.fixed_weights",
    "distill_loss": "distillation.distill_loss",
    "mask_fraction": "distillation.mask_fraction",
    "replace_fraction": "distillation.replace_fraction",
    "embedding": "student.embedding",
    "mixer": "student.mixer",
    "d_model": "student.d_model",
    "layers": "student.n_layers",
    "heads": "student.n_heads",
    "ffn": "student.d_ff",
    "dropout": "student.dropout",
    "max_seq_len": "student.max_seq_len",
    "tokenizer": "student.tokenizer",
    "device": "training.device",
    "seed": "training.seed",
    "padding": "training.padding",
    "evals_per_epoch": "training.evals_per_epoch",
    "amp": "training.amp",
    "skip_malformed_rows": "data.skip_malformed_rows",
}


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _float_list(text: str) -> list[float]:
    try:
        return [float(item) for item in _comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"{text!r} is not 'on' or 'off'")
    return value == "on"


class _OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error of the CLI."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The subcommands' parsers by name; build_parser fills it on the top-level parser.
        self.command_parsers: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}. See `{self.prog} --help` for the options.\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None) -> argparse.Namespace:  # type: ignore[override]
        # argparse reports arguments that no parser took from the top-level parser, whose help
        # does not list the subcommand's options. The subcommand's parser reports them here.
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            owner = self.command_parsers.get(getattr(parsed, "command", None) or "", self)
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(prog="lampreia", description="Multi-teacher distillation into ΨQRH students.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Log progress details (INFO) to stderr.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("gui", help="Open the workbench window (the default without a command).")

    run = commands.add_parser("run", help="Run one distillation and record it in the run database.")
    source = run.add_argument_group("starting point (default: the built-in defaults)")
    source.add_argument("--preset", help=f"Start from a preset: {', '.join(list_presets())}.")
    source.add_argument("--config", type=Path, help="Start from a config JSON file (as written by `lampreia show --json`).")
    source.add_argument("--from-run", type=int, metavar="RUN_ID", help="Start from the config of a stored run (a re-run).")
    source.add_argument("--resume", type=int, metavar="RUN_ID", help="Continue an interrupted, cancelled or failed run from its last checkpoint.")

    fields = run.add_argument_group("overrides")
    fields.add_argument("--task", help=f"GLUE task: {', '.join(TASKS)}.")
    fields.add_argument("--name", help="Run name shown in the history.")
    fields.add_argument("--teachers", type=_comma_list, help="Comma-separated teachers: aliases (gpt2, distilbert, roberta, minilm), Hub ids or folders.")
    fields.add_argument("--data-dir", help="glue_data folder (SST-2/train.tsv, ...). Default: the Hugging Face Hub.")
    fields.add_argument("--train-limit", type=int, help="Use only the first N training rows.")
    fields.add_argument("--dev-limit", type=int, help="Evaluate on only the first N validation rows.")
    fields.add_argument(
        "--heldout-fraction", type=float, help="Fraction of the training rows held out to select the best checkpoint (default 0.05; at most 0.5)."
    )
    fields.add_argument(
        "--skip-malformed-rows",
        action="store_const",
        const=True,
        help="Skip TSV rows that do not parse (each one is logged with its file and line) instead of stopping.",
    )
    fields.add_argument("--epochs", type=int, help="Passes over the training rows.")
    fields.add_argument("--batch-size", type=int, help="Examples per optimiser step.")
    fields.add_argument("--lr", type=float, help="Peak learning rate.")
    fields.add_argument("--alpha", type=float, help="Task-loss weight α in [0, 1]; 1 − α goes to distillation.")
    fields.add_argument("--weighting", choices=WEIGHTINGS, help="Teacher weighting.")
    fields.add_argument("--fixed-weights", type=_float_list, help="Comma-separated weights, one per teacher (with --weighting fixed).")
    fields.add_argument("--distill-loss", choices=DISTILL_LOSSES, help="Distance to the teacher embeddings.")
    distillation = DistillationConfig()
    fields.add_argument(
        "--mask-fraction", type=float,
        help=f"Augmentation: fraction of the student's real tokens replaced by the mask token (default {distillation.mask_fraction}; 0: none).",
    )
    fields.add_argument(
        "--replace-fraction", type=float,
        help=f"Augmentation: fraction of the student's real tokens replaced by a random token (default {distillation.replace_fraction}; 0: none).",
    )
    fields.add_argument("--embedding", choices=EMBEDDINGS, help="Student token embedding.")
    fields.add_argument("--mixer", choices=MIXERS, help="Student token mixer.")
    student = StudentConfig()
    fields.add_argument("--d-model", type=int, help=f"Student width (default {student.d_model}).")
    fields.add_argument("--layers", type=int, help=f"Student blocks (default {student.n_layers}).")
    fields.add_argument("--heads", type=int, help=f"Heads per mixer; must divide d_model (default {student.n_heads}).")
    fields.add_argument("--ffn", type=int, help="Feed-forward width (default 4 × d_model).")
    fields.add_argument("--dropout", type=float, help=f"Student dropout probability (default {student.dropout}).")
    fields.add_argument("--max-seq-len", type=int, help="Tokens per input after truncation.")
    fields.add_argument(
        "--tokenizer",
        help=f"Student tokenizer: an alias ({', '.join(ALIASES)}; minilm works offline), a Hub id or a folder (default {student.tokenizer}).",
    )
    fields.add_argument("--padding", choices=PADDING_MODES, help="Batch padding mode.")
    fields.add_argument("--evals-per-epoch", type=int, help="Evaluations per epoch.")
    fields.add_argument("--device", help="auto, cpu, cuda or cuda:N.")
    fields.add_argument(
        "--amp",
        type=_on_off,
        metavar="{on,off}",
        help="Mixed precision: bf16 (or fp16) autocast on CUDA and on CPUs with native bf16; off trains in fp32.",
    )
    fields.add_argument("--seed", type=int, help="Random seed.")
    fields.add_argument("--trust-remote-code", action="store_true", help="Allow teachers that ship their own Python code (it runs on this computer).")
    run.add_argument("--db", type=Path, help=f"Run database (default: {default_database_path()}).")
    run.add_argument("--quiet", action="store_true", help="No progress bar.")

    runs = commands.add_parser("runs", help="List the recorded runs.")
    runs.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    runs.add_argument("--db", type=Path, help="Run database.")

    show = commands.add_parser("show", help="Show one run: status, config, metrics, error.")
    show.add_argument("run_id", type=int, metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="Print the run as JSON (its config can be passed to --config).")
    show.add_argument("--db", type=Path, help="Run database.")

    compare = commands.add_parser("compare", help="Compare runs side by side: the settings that differ, and best and last metrics.")
    compare.add_argument("run_ids", type=int, nargs="+", metavar="RUN_ID", help="Two or more run ids.")
    compare.add_argument(
        "--pool-seeds",
        action="store_true",
        help="Pool runs whose settings differ only in the seed into one column: each metric's mean and sample standard deviation.",
    )
    compare_output = compare.add_mutually_exclusive_group()
    compare_output.add_argument("--json", action="store_true", help="Print the comparison as JSON.")
    compare_output.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="Write the comparison as CSV to FILE (- for standard output): one row per run (per group with --pool-seeds), "
        "with the settings that differ and the best, last and baseline metrics as columns.",
    )
    compare.add_argument("--force", action="store_true", help="Replace the --csv FILE if it exists.")
    compare.add_argument(
        "--paired",
        action="store_true",
        help="For two runs of one task: predict the dev rows both were scored on and test each metric's difference with a paired "
        "bootstrap over the rows (95%% interval), and accuracy with McNemar's exact test.",
    )
    compare.add_argument("--resamples", type=int, metavar="N", help=f"Bootstrap resamples of --paired (default {DEFAULT_RESAMPLES:,}).")
    compare.add_argument("--data-dir", type=Path, metavar="DIR", help="With --paired: the glue_data folder to read the dev rows from, when the runs' own has moved.")
    compare.add_argument("--db", type=Path, help="Run database.")

    export = commands.add_parser("export", help="Export a run's metrics as CSV.")
    export.add_argument("run_id", type=int, metavar="RUN_ID")
    export.add_argument(
        "--csv",
        type=Path,
        required=True,
        metavar="FILE",
        help="CSV file to write, or - for standard output; columns run_id, step, epoch, name, value, wall_time (Unix seconds).",
    )
    export.add_argument("--force", action="store_true", help="Replace FILE if it exists.")
    export.add_argument("--db", type=Path, help="Run database.")

    predict = commands.add_parser(
        "predict",
        help="Predict labels with a run's trained student: a GLUE submission file, or every row with its probabilities for error analysis.",
    )
    predict.add_argument("run_id", type=int, metavar="RUN_ID", help="The run whose trained student predicts (`lampreia runs` lists them).")
    rows = predict.add_mutually_exclusive_group()
    rows.add_argument(
        "--split",
        help="A split of the run's data source: dev (MNLI: dev_matched, dev_mismatched), train or test. Default: the first dev split.",
    )
    rows.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="A TSV file in the task's glue_data layout: test.tsv, dev.tsv, or your own rows under the same header. Rows with a label are scored.",
    )
    predict.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="The glue_data folder to read --split from, when it is not the run's own (moved, or on another computer).",
    )
    predict.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        default=Path("-"),
        help="TSV file to write, with the columns index and prediction of a GLUE submission (default: standard output). "
        "Like GLUE's files it is tab-separated without quoting (pandas: sep='\\t', quoting=3).",
    )
    predict.add_argument("--details", action="store_true", help="Add the gold label, one probability column per class and the text of each row.")
    predict.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="best: the weights selected on the held-out rows (default); last: those of the last checkpoint.",
    )
    predict.add_argument("--limit", type=int, metavar="N", help="Predict only the first N rows.")
    predict.add_argument(
        "--skip-malformed-rows", action="store_true", help="Skip TSV rows that do not parse (each one is logged with its line) instead of stopping."
    )
    predict.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N.")
    predict.add_argument("--force", action="store_true", help="Replace the --output FILE if it exists.")
    predict.add_argument("--db", type=Path, help="Run database.")

    commands.add_parser("presets", help="List the presets with what each one is for.")
    for command in commands.choices.values():
        # Also after the command (`lampreia run … -v`); SUPPRESS keeps a -v given before it.
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="Log progress details (INFO) to stderr.")
    parser.command_parsers = dict(commands.choices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Only a run writes into the user's data folder; the reading commands must not create it.
    log_file = configure_logging(verbose=args.verbose, create_folder=args.command == "run")
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "runs":
            return _runs(args)
        if args.command == "show":
            return _show(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "export":
            return _export(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "presets":
            for name in list_presets():
                print(f"{name:<14} {preset_description(name)}")
            return 0
        parser.print_help()
        return EXIT_INVALID
    except LampreiaError as error:
        # At INFO, so that the log file has it beside the runs' own lines and stderr shows it once, below.
        log.info("lampreia %s stopped: %s", args.command, error)
        print(f"lampreia: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("lampreia: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader of our output went away (`lampreia runs | head`); like other Unix tools, stop
        # quietly. Point stdout at /dev/null so that the interpreter's final flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # last resort: one line for the user, the traceback in the log
        log.exception("Unexpected error")
        where = f"traceback in {log_file}" if log_file else "traceback above"
        print(f"lampreia: unexpected error: {type(error).__name__}: {error} ({where})", file=sys.stderr)
        return EXIT_FAILED


def _open_store(path: Path | None) -> RunStore:
    return RunStore(path)


def _open_existing_store(path: Path | None) -> RunStore | None:
    """Open the database for a command that only reads it; None when the default one does not exist yet.

    Opening creates a database, which a mistyped --db path must not do silently.
    """
    if path is not None and not path.exists():
        raise LampreiaError(f"There is no run database at {path}.", "Check the --db path; `lampreia run --db PATH` creates a database there.")
    if path is None and not default_database_path().exists():
        return None
    # Opening for writing would fail on a database this user cannot write (a copy from a cluster,
    # a read-only share), which the reading commands never need.
    return open_store(path)


def _no_runs_yet() -> LampreiaError:
    return LampreiaError(
        f"No runs are recorded yet: there is no run database at {default_database_path()}.",
        "Start one with `lampreia run` or in the workbench window, or pass --db.",
    )


def _config_from_file(path: Path) -> RunConfig:
    """Read a config JSON file, or the output of `lampreia show --json`, which contains it under "config"."""
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise LampreiaError(f"The config file {path} is not valid JSON ({error}).", "Check it for a syntax error.") from None
    if isinstance(document, dict) and isinstance(document.get("config"), dict) and "status" in document:
        return RunConfig.from_dict(document["config"])
    return RunConfig.from_dict(document)


def _option_of(field: str) -> str | None:
    """Return the `lampreia run` option that sets the config key ``field``, or None where no option does."""
    options = {path: f"--{option.replace('_', '-')}" for option, path in _OVERRIDES.items()}
    options.update({"distillation.teachers": "--teachers", "data.glue_dir": "--data-dir", "distillation.trust_remote_code": "--trust-remote-code"})
    return options.get(field)


def build_config(args: argparse.Namespace, store: RunStore | None) -> RunConfig:
    """Combine the starting point (preset, file, stored run or defaults) with the overrides."""
    starts = [name for name in ("preset", "config", "from_run") if getattr(args, name) is not None]
    if len(starts) > 1:
        raise LampreiaError(f"--{starts[0].replace('_', '-')} and --{starts[1].replace('_', '-')} cannot be combined.", "Give one starting point.")

    if args.preset is not None:
        config = load_preset(args.preset)
    elif args.config is not None:
        try:
            config = _config_from_file(args.config)
        except OSError as error:
            raise LampreiaError(f"Cannot read the config file {args.config}: {error.strerror}.", "Check the path.") from None
    elif args.from_run is not None:
        source = store.get_run(args.from_run)
        config = RunConfig.from_dict(source.config)
    else:
        config = RunConfig()

    overrides: dict[str, Any] = {}
    for option, path in _OVERRIDES.items():
        value = getattr(args, option, None)
        if value is not None:
            overrides[path] = value
    # Folders are stored absolute, so that a resume or a re-run from another folder finds the same files.
    if args.teachers is not None:
        overrides["distillation.teachers"] = [absolute_if_local(spec) for spec in args.teachers]
    if args.tokenizer is not None:
        overrides["student.tokenizer"] = absolute_if_local(args.tokenizer)
    if args.trust_remote_code:
        overrides["distillation.trust_remote_code"] = True
    if args.data_dir is not None:
        overrides["data.glue_dir"] = str(Path(args.data_dir).expanduser().absolute())
    try:
        config = config.with_overrides(overrides) if overrides else config
    except ConfigError as error:
        option = _option_of(error.field)
        if option is None:
            raise
        if error.field in overrides:
            # Name the option the user typed, then the config key that stores its value.
            raise LampreiaError(f"{option} (config key {error.field}): {error.reason}", error.hint) from None
        # Another option made this key's value invalid (--weighting fixed without --fixed-weights).
        raise LampreiaError(f"{error.field} (option {option}): {error.reason}", error.hint) from None
    if args.from_run is not None and args.name is None:
        # The source's own name would describe settings that the overrides may have changed.
        config = config.with_overrides({"name": rerun_name(source, config.to_dict(), rerun_origin(store, source))})
    if args.fixed_weights is not None and config.distillation.weighting != "fixed":
        raise LampreiaError(
            f"--fixed-weights is only used with --weighting fixed, and this run weights its teachers by {config.distillation.weighting!r}.",
            "Add --weighting fixed, or drop --fixed-weights.",
        )
    return config


def _run(args: argparse.Namespace) -> int:
    from engine.trainer import resume_distillation, run_distillation

    store = _open_store(args.db)
    cancel = CancellationToken()
    # In a torchrun job only rank 0 reports; the other ranks would repeat every line.
    follower = int(os.environ.get("RANK", "0")) > 0
    bar = ProgressBar(sys.stderr, enabled=not (args.quiet or follower))

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        # Only training has steps. The other phases stop between teacher, probe or evaluation batches.
        when = " after the current step" if bar.phase_name == "training" else ""
        bar.notice(f"Cancelling{when} (press Ctrl-C again to abort at once)...")
        cancel.cancel()

    started: list[int] = []

    def sink(event: Event) -> None:
        if isinstance(event, RunStarted):
            started.append(event.run_id)
        bar.handle(event)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        if args.resume is not None:
            extra_options = [f"--{option.replace('_', '-')}" for option in _OVERRIDES if getattr(args, option, None) is not None]
            other_settings = (
                ("--teachers", args.teachers),
                ("--data-dir", args.data_dir),
                ("--trust-remote-code", args.trust_remote_code or None),
                ("--preset", args.preset),
                ("--config", args.config),
                ("--from-run", args.from_run),
            )
            extra_options += [flag for flag, value in other_settings if value is not None]
            if extra_options:
                raise LampreiaError(
                    "--resume continues a run with its stored config and takes no other settings.",
                    f"Drop {', '.join(extra_options)}; to train with other settings, use --from-run {args.resume} instead.",
                )
            result = resume_distillation(args.resume, store, sink, cancel)
        else:
            config = build_config(args, store)
            if not follower:
                for warning in config_warnings(config):
                    print(f"lampreia: note: {warning}", file=sys.stderr)
            result = run_distillation(config, store, sink, cancel)
    except KeyboardInterrupt:
        if started:
            _record_abort(store, started[-1])
            raise
        print(f"lampreia: {NOTHING_RECORDED}", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()

    if result.status == "cancelled" and result.run_id is None:
        print(f"lampreia: {NOTHING_RECORDED}", file=sys.stderr)
        return EXIT_CANCELLED

    if result.status == "failed" and result.run_id is None:
        # Nothing was recorded: the settings or the database were unusable before the run began.
        print(f"lampreia: {result.error}", file=sys.stderr)
        return EXIT_INVALID
    if result.status == "failed":
        print(f"lampreia: run {result.run_id} failed: {result.error}", file=sys.stderr)
        try:
            hint = _failed_hint(store, result.run_id)
        except StoreError:
            hint = None  # the failure may be the database's own, and the message above reports it
        if hint and not follower:
            print(hint, file=sys.stderr)
        return EXIT_FAILED

    if follower:
        return EXIT_CANCELLED if result.status == "cancelled" else 0
    record = store.get_run(result.run_id)
    print(f"Run {record.id} ({record.name}) {record.status}.")
    print(format_metrics_summary(record))
    if result.status == "cancelled":
        print(_cancelled_hint(store, record.id))
    return EXIT_CANCELLED if result.status == "cancelled" else 0


def _db_option(store: RunStore) -> str:
    """Return " --db PATH" for a database other than the default one, for commands printed as hints."""
    if store.path.resolve() == default_database_path().resolve():
        return ""
    return f" --db {shlex.quote(str(store.path))}"


def _cancelled_hint(store: RunStore, run_id: int) -> str:
    db = _db_option(store)
    if "last" in store.artifacts(run_id):
        return (
            f"Resume it with `lampreia run --resume {run_id}{db}`, or train it anew with `lampreia run --from-run {run_id}{db}`. "
            "A resumed run continues with the stopped run's batch order and random state, so on a CPU with the same thread count it reaches "
            "the losses and metrics of a run that was never stopped."
        )
    return f"It stopped before its first checkpoint; train it anew with `lampreia run --from-run {run_id}{db}`."


def _failed_hint(store: RunStore, run_id: int) -> str | None:
    """Return how to resume a failed run from its last checkpoint, or None when it has none."""
    checkpoint = store.artifacts(run_id).get("last")
    if checkpoint is None:
        return None
    db = _db_option(store)
    return (
        f"Once the cause is fixed, resume it from its checkpoint at step {checkpoint[1]} with "
        f"`lampreia run --resume {run_id}{db}`, or train it anew with `lampreia run --from-run {run_id}{db}`."
    )


def _record_abort(store: RunStore, run_id: int) -> None:
    """Mark a run aborted by a second Ctrl-C, so that the next start does not blame a crash."""
    db = _db_option(store)
    try:
        store.finish_run(
            run_id,
            "interrupted",
            error=(
                "Aborted with a second Ctrl-C before the run reached a step boundary. "
                f"Resume it with `lampreia run --resume {run_id}{db}` if it has a checkpoint, or train it anew "
                f"with `lampreia run --from-run {run_id}{db}`."
            ),
        )
    except StoreError:
        log.warning("Could not record that run %d was aborted", run_id, exc_info=True)


def format_metrics_summary(record: RunRecord) -> str:
    lines = []
    if record.best_step is not None:
        lines.append(f"Best checkpoint: step {record.best_step} (selected on the held-out slice).")
    task = TASKS.get(record.task)
    # A constant prediction has no correlation with the labels, hence STS-B's 0.
    regression = task is not None and task.is_regression
    kind = "baseline predicting the training mean:" if regression else "majority baseline"
    shown_baseline = False
    for name, value in sorted(record.best_metrics.items()):
        if name.startswith("heldout/") or name.endswith("/loss_task"):
            continue
        baseline = record.baseline.get(name)
        shown_baseline = shown_baseline or baseline is not None
        extra = f"   ({kind} {baseline:.4f})" if baseline is not None else ""
        lines.append(f"  {name:<28} {value:.4f}{extra}")
    if shown_baseline:
        # The dev split's own majority can differ (WNLI: 0.437 against 0.563 on the dev rows).
        lines.append(
            "  A constant prediction has no correlation with the scores, so the baseline's correlations are 0 by convention."
            if regression
            else "  The majority baseline predicts the most frequent training label for every row."
        )
    if record.final_metrics and record.final_metrics != record.best_metrics:
        finals = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record.final_metrics.items()) if not k.startswith("heldout/") and not k.endswith("/loss_task"))
        lines.append(f"Last evaluation: {finals}")
    return "\n".join(lines)


def _runs(args: argparse.Namespace) -> int:
    store = _open_existing_store(args.db)
    if store is None and not args.json:
        print(f"No runs are recorded yet (no run database at {default_database_path()}).")
        return 0
    records = store.list_runs() if store is not None else []
    if args.json:
        print(json.dumps([_record_json(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    if not records:
        # A run rejected before it started still creates the database.
        print(f"No runs are recorded yet in {store.path}.")
        return 0
    terminal_width = _terminal_width()
    columns = _runs_columns(terminal_width)
    if terminal_width is None:
        # A file or a pipe has no width to fit: every cell is whole, and each column as wide as its widest.
        widths = {column.title: max([_columns(column.title)] + [_columns(column.text(record)) for record in records]) for column in columns}
    else:
        beside_name = sum(column.width for column in columns if column.title != "name") + len(columns) - 1
        widths = {column.title: column.width for column in columns}
        widths["name"] = _name_width(records, terminal_width - beside_name)
    print(" ".join(column.header(widths[column.title]) for column in columns).rstrip())
    for record in records:
        print(" ".join(column.cell(record, widths[column.title]) for column in columns).rstrip())
    left_out = [column.title for column in RUNS_COLUMNS if column not in columns]
    if left_out:
        note = f"Columns left out at this width: {', '.join(left_out)}. A wider terminal or `lampreia runs --json` shows them."
        print(textwrap.fill(note, width=max(terminal_width or 0, 20)))
    return 0


@dataclass(frozen=True)
class _RunsColumn:
    """One column of `lampreia runs`: its title, width in terminal columns, alignment and cell text."""

    title: str
    width: int
    text: Callable[[RunRecord], str]
    right: bool = False
    # Cut in the middle instead of at the end, so that both ends of a run name stay readable.
    clip_middle: bool = False

    def header(self, width: int) -> str:
        return f"{self.title:>{width}}" if self.right else _pad(self.title, width)

    def cell(self, record: RunRecord, width: int) -> str:
        text = _clip_middle(self.text(record), width) if self.clip_middle else _clip(self.text(record), width)
        return " " * max(0, width - _columns(text)) + text if self.right else _pad(text, width)


def _best_dev(record: RunRecord) -> str:
    primary, value = _primary(record)
    return f"{primary.split('/')[-1]} {value:.4f}" if value is not None else "-"


def _baseline(record: RunRecord) -> str:
    primary, _value = _primary(record)
    baseline = record.baseline.get(primary) if primary else None
    return f"{baseline:.4f}" if baseline is not None else "-"


RUNS_COLUMNS = (
    _RunsColumn("id", 4, lambda record: str(record.id), right=True),
    _RunsColumn("name", NAME_WIDTH, lambda record: record.name, clip_middle=True),
    _RunsColumn("status", 11, lambda record: record.status),
    _RunsColumn("task", 5, lambda record: record.task),
    _RunsColumn("teachers", 28, lambda record: ",".join(short_model_name(spec) for spec in record.teachers)),
    _RunsColumn("student", 13, lambda record: record.student_size),
    _RunsColumn("params", 9, lambda record: _count(record.parameter_count), right=True),
    _RunsColumn("best dev", 15, _best_dev),  # "accuracy 0.5200", the longest primary metric
    _RunsColumn("baseline", 8, _baseline, right=True),
    _RunsColumn("time", 8, lambda record: _duration(record.duration_seconds), right=True),
    _RunsColumn("created", 16, lambda record: time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))),
)
# The order in which columns are kept when the terminal is too narrow for all of them.
RUNS_COLUMN_PRIORITY = ("id", "name", "status", "task", "best dev", "student", "time", "teachers", "created", "baseline", "params")


def _terminal_width() -> int | None:
    """Return the terminal's width in columns, or None when the output is not a terminal and COLUMNS is unset.

    Output to a file or a pipe keeps every column: shutil's fallback of 80 columns describes no screen.
    """
    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def _runs_columns(width: int | None) -> list[_RunsColumn]:
    """Return the columns of `lampreia runs` that fit ``width`` (all for None), kept by RUNS_COLUMN_PRIORITY, in table order."""
    if width is None:
        return list(RUNS_COLUMNS)
    by_title = {column.title: column for column in RUNS_COLUMNS}
    kept_titles: set[str] = set()
    used = -1  # n columns need n - 1 separating spaces
    for title in RUNS_COLUMN_PRIORITY:
        needed = by_title[title].width + 1
        if title in ("id", "name") or used + needed <= width:
            kept_titles.add(title)
            used += needed
    return [column for column in RUNS_COLUMNS if column.title in kept_titles]


def _name_width(records: list[RunRecord], free: int) -> int:
    """Columns for run names on a terminal: NAME_WIDTH, or as many as the longest name needs of the ``free`` columns.

    Re-run names end with what changed ("baseline (from #3: alpha 0.7)"), the part that clipping hides.
    """
    longest = max((_columns(record.name) for record in records), default=0)
    return max(NAME_WIDTH, min(longest, free))


def _char_columns(char: str) -> int:
    """Terminal columns of one character: 2 for East Asian wide characters, 0 for combining marks, else 1."""
    if unicodedata.combining(char):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def _columns(text: str) -> int:
    """Terminal columns that ``text`` takes."""
    return sum(_char_columns(char) for char in text)


def _pad(text: str, width: int) -> str:
    """Return ``text`` followed by spaces up to ``width`` terminal columns."""
    return text + " " * max(0, width - _columns(text))


def _clip(text: str, width: int) -> str:
    """Return ``text`` cut to at most ``width`` terminal columns, ending in "…" where it was cut."""
    if _columns(text) <= width:
        return text
    used = 0
    for index, char in enumerate(text):
        used += _char_columns(char)
        if used > width - 1:  # one column stays for the "…"
            return text[:index] + "…"
    return text


def _clip_middle(text: str, width: int) -> str:
    """Return ``text`` cut to at most ``width`` terminal columns by a "…" in its middle.

    Run names end with what a re-run changed ("… (from #4: alpha 0.5)"), which distinguishes runs
    that start alike, so the end is kept as well as the start.
    """
    if _columns(text) <= width:
        return text
    head = _clip(text, (width - 1) * 2 // 5 + 1)  # ends in "…"
    room = width - _columns(head)
    start = len(text)
    while start > 0 and _char_columns(text[start - 1]) <= room:
        room -= _char_columns(text[start - 1])
        start -= 1
    return head + text[start:]


def _primary(record: RunRecord) -> tuple[str, float | None]:
    task = TASKS.get(record.task)
    if task is None:
        return "", None
    name = task.primary_dev_metric
    return name, record.best_metrics.get(name)


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    # Rounded like the workbench's history table, so that both show the same duration.
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _record_json(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "task": record.task,
        "teachers": list(record.teachers),
        "student": record.student_size,
        "parameter_count": record.parameter_count,
        "device": record.device,
        "created_at": record.created_at,
        "duration_seconds": record.duration_seconds,
        "best_step": record.best_step,
        "best_metrics": record.best_metrics,
        "final_metrics": record.final_metrics,
        "baseline": record.baseline,
        "error": record.error,
        "notes": record.notes,
        "tags": list(record.tags),
        "versions": record.versions,
        "config": record.config,
    }


def _show(args: argparse.Namespace) -> int:
    store = _open_existing_store(args.db)
    if store is None:
        raise _no_runs_yet()
    record = store.get_run(args.run_id)
    if args.json:
        print(json.dumps(_record_json(record), indent=2, ensure_ascii=False))
        return 0
    print(f"Run {record.id}: {record.name}")
    print(f"  status      {record.status}")
    print(f"  task        {record.task}")
    print(f"  device      {record.device}")
    print(f"  parameters  {format(record.parameter_count, ',') if record.parameter_count is not None else '-'}")
    print(f"  created     {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.created_at))}")
    print(f"  duration    {_duration(record.duration_seconds)}")
    if record.error:
        print(f"  error       {record.error}")
    if record.tags:
        print(f"  tags        {', '.join(record.tags)}")
    if record.notes:
        # Later lines of the notes line up with the first, inside the indented block.
        print("  notes       " + record.notes.replace("\n", "\n" + " " * 14))
    print("Dev metrics:")
    print(format_metrics_summary(record) or ("  (no evaluation yet)" if record.status in ("queued", "running") else "  (no evaluation)"))
    print(f"Logged metric rows (losses, teacher weights, evaluations): {store.count_metrics(record.id)}")
    for kind, (path, step) in sorted(store.artifacts(record.id).items()):
        print(f"Checkpoint {kind}: {path} (step {step})")
    if record.status in ("cancelled", "interrupted"):
        print(_cancelled_hint(store, record.id))
    elif record.status == "failed" and (hint := _failed_hint(store, record.id)):
        print(hint)
    print("Config:")
    print(json.dumps(record.config, indent=2, ensure_ascii=False))
    return 0


def _compare(args: argparse.Namespace) -> int:
    repeated = sorted({run_id for run_id in args.run_ids if args.run_ids.count(run_id) > 1})
    if repeated:
        raise LampreiaError(f"Run {repeated[0]} is given more than once.", "Give each run id once.")
    if args.force and args.csv is None:
        raise LampreiaError("--force only replaces the file of --csv, and no --csv FILE is given.", "Add --csv FILE, or drop --force.")
    if len(args.run_ids) < 2:
        raise LampreiaError(
            f"compare needs two or more run ids, and got one ({args.run_ids[0]}).", "List the runs with `lampreia runs`, then pass two or more ids."
        )
    _check_paired_options(args)
    store = _open_existing_store(args.db)
    if store is None:
        raise _no_runs_yet()
    records = [store.get_run(run_id) for run_id in args.run_ids]
    paired = _paired_tests(store, args) if args.paired else None

    # A run whose process was killed stored no final metrics, but its evaluations are in the store.
    lasts = [record.final_metrics or store.last_evaluation(record.id) for record in records]
    if args.pool_seeds:
        return _compare_pooled(records, lasts, args)

    # The name has its own row, so the config rows list only settings.
    differences = [(key, values) for key, values in config_diff([record.config for record in records]) if key != "name"]
    metrics = metric_rows(records, lasts)

    if args.csv is not None:
        header, rows = comparison_csv(records, lasts)
        return _write_table(args.csv, args.force, header, rows, f"{len(rows)} runs")
    if args.json:
        # Per key, the value of each run by id; a run whose stored config lacks the key is left out.
        document = {
            "runs": [_record_json(record) for record in records],
            "config_differences": {
                key: {str(record.id): value for record, value in zip(records, values) if value is not MISSING} for key, values in differences
            },
            "environment_differences": {key: {str(record.id): value for record, value in zip(records, values)} for key, values in environment_diff(records)},
            "metrics": {row.name: {str(record.id): {"best": best, "last": last} for record, (best, last) in zip(records, row.values)} for row in metrics},
        }
        if paired is not None:
            # a and b are the runs in the order given; each difference is b − a.
            first, second = args.run_ids
            document["paired"] = [
                {
                    "split": result.split,
                    "source": result.source,
                    "run_a": first,
                    "run_b": second,
                    "checkpoint": "best",
                    "confidence": CONFIDENCE,
                    "bootstrap_seed": BOOTSTRAP_SEED,
                    "note": result.note,
                    "tests": [{**asdict(test), "difference": test.difference} for test in result.tests],
                }
                for result in paired
            ]
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0

    terminal_width = _terminal_width()
    _note_different_tasks(records, terminal_width)
    for note in comparison_notes(records, {key for key, _values in differences}):
        _print_note(f"Note: {note}", terminal_width)
    table = _comparison_table(records, differences, metrics)
    _print_columns([f"#{record.id}" for record in records], table, terminal_width, clipped_rows=("name",))
    if paired is not None:
        _print_paired(records, paired, terminal_width)
    return 0


def _check_paired_options(args: argparse.Namespace) -> None:
    if not args.paired:
        if args.data_dir is not None or args.resamples is not None:
            option = "--data-dir" if args.data_dir is not None else "--resamples"
            raise LampreiaError(f"{option} is only used with --paired.", f"Add --paired, or drop {option}.")
        return
    if len(args.run_ids) != 2:
        raise LampreiaError(f"--paired tests two runs against each other, and got {len(args.run_ids)}.", "Give two run ids.")
    if args.pool_seeds or args.csv is not None:
        other = "--pool-seeds" if args.pool_seeds else "--csv"
        raise LampreiaError(f"--paired cannot be combined with {other}.", f"Run compare once with --paired and once with {other}.")
    if args.resamples is not None and args.resamples < 100:
        raise LampreiaError(f"--resamples {args.resamples}: a 95% interval needs at least 100 resamples.", f"Use 100 or more (default {DEFAULT_RESAMPLES:,}).")


def _paired_tests(store: RunStore, args: argparse.Namespace) -> list[PairedSplit]:
    from engine.significance import paired_dev_tests

    first, second = args.run_ids
    glue_dir = str(args.data_dir.expanduser().absolute()) if args.data_dir is not None else None
    return paired_dev_tests(store, first, second, glue_dir=glue_dir, resamples=args.resamples or DEFAULT_RESAMPLES)


def _print_paired(records: list[RunRecord], paired: list[PairedSplit], terminal_width: int | None) -> None:
    """Print the paired tests below the comparison table."""
    first, second = (f"#{record.id}" for record in records)
    for result in paired:
        tests = result.tests
        print()
        _print_note(paired_heading(result, task_title(records[0].task), first, second), terminal_width)
        table = [(test.metric, [f"{test.value_a:.4f}", f"{test.value_b:.4f}", f"{test.difference:+.4f}", f"{test.low:+.4f} to {test.high:+.4f}"]) for test in tests]
        _print_columns([first, second, f"{second} − {first}", "95% interval"], table, terminal_width)
        for line in paired_conclusion(result, first, second):
            _print_note(line, terminal_width)


def _note_different_tasks(records: list[RunRecord], terminal_width: int | None) -> None:
    tasks = sorted({record.task for record in records})
    if len(tasks) > 1:
        titles = ", ".join(task_title(task) for task in tasks)
        _print_note(f"Note: these runs are of different tasks ({titles}), so their metrics do not compare.", terminal_width)


def _print_note(note: str, terminal_width: int | None) -> None:
    print(textwrap.fill(note, width=terminal_width) if terminal_width else note)


def _compare_pooled(records: list[RunRecord], lasts: list[dict[str, float]], args: argparse.Namespace) -> int:
    """Print `lampreia compare --pool-seeds`: one column per group of runs that differ only in the seed."""
    last_by_id = {record.id: last for record, last in zip(records, lasts)}
    groups, repeats = drop_seed_repeats(seed_groups(records))
    group_lasts = [[last_by_id[record.id] for record in group] for group in groups]
    if args.csv is not None:
        header, rows = pooled_csv(groups, group_lasts)
        return _write_table(args.csv, args.force, header, rows, f"{len(rows)} groups of runs")

    differences = [(key, values) for key, values in config_diff([group[0].config for group in groups]) if key not in REPEAT_KEYS]
    metrics = pooled_metric_rows(groups, group_lasts)
    labels = [",".join(str(record.id) for record in group) for group in groups]
    if args.json:
        # Groups are keyed by their run ids joined with commas, e.g. "1,4,7", as in the CSV's run_ids.
        document = {
            "groups": [
                {"label": label, "runs": [record.id for record in group], "seeds": [run_seed(record) for record in group]}
                for label, group in zip(labels, groups)
            ],
            "left_out_repeats": [record.id for record in repeats],
            "config_differences": {key: dict(zip(labels, values)) for key, values in differences},
            "metrics": {
                row.name: {label: {"best": _pooled_json(best), "last": _pooled_json(last)} for label, (best, last) in zip(labels, row.values)}
                for row in metrics
            },
            "baseline": {name: {label: _pooled_json(value) for label, value in zip(labels, values)} for name, values in pooled_baselines(groups).items()},
        }
        print(json.dumps(document, indent=2, ensure_ascii=False, default=repr))
        return 0

    terminal_width = _terminal_width()
    _note_different_tasks(records, terminal_width)
    if len(groups) == len(records) - len(repeats):
        _print_note("Note: no two of these runs differ only in their seed, so each column is one run.", terminal_width)
    note = repeats_note(repeats)
    if note:
        _print_note(f"Note: {note}", terminal_width)
    for note in comparison_notes(records, {key for key, _values in differences}):
        _print_note(f"Note: {note}", terminal_width)
    table = _pooled_table(groups, differences, metrics)
    _print_columns([group_label(group) for group in groups], table, terminal_width, clipped_rows=("runs",))
    return 0


def _pooled_json(value: PooledValue | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"mean": value.mean, "std": value.std, "count": value.count}


def _pooled_table(groups: list[list[RunRecord]], differences: list[tuple[str, list[Any]]], metrics: list[PooledMetricRow]) -> list[tuple[str, list[str]]]:
    """Return the rows of `lampreia compare --pool-seeds`: (label, one cell per group), or (heading, []) for a heading."""
    def statuses(group: list[RunRecord]) -> str:
        counts = Counter(record.status for record in group)
        return ", ".join(f"{count} {status}" for status, count in counts.items()) if len(group) > 1 else group[0].status

    table: list[tuple[str, list[str]]] = [
        ("runs", [", ".join(f"#{record.id}" for record in group) for group in groups]),
        ("seeds", [", ".join(format_config_value(run_seed(record)) for record in group) for group in groups]),
        ("status", [statuses(group) for group in groups]),
        ("task", [group[0].task for group in groups]),
        ("student", [group[0].student_size for group in groups]),
        ("parameters", [_count(group[0].parameter_count) for group in groups]),
        ("devices", [", ".join(dict.fromkeys(record.device for record in group)) for group in groups]),
    ]

    table.append(("", []))
    if differences:
        table.append((f"config: {len(differences)} {'setting differs' if len(differences) == 1 else 'settings differ'} (besides the seed)", []))
        table += [(f"  {key}", [format_config_value(value, key) for value in values]) for key, values in differences]
    else:
        table.append(("config: the same settings (besides the seed)", []))

    def cell(value: PooledValue | None) -> str:
        return "-" if value is None else value.format()

    for heading, index in (("best checkpoint (selected on the held-out slice)", 0), ("last evaluation", 1)):
        table.append(("", []))
        table.append((f"metrics, {heading}: mean ± sample standard deviation over the column's runs", []))
        table += [(f"  {row.name}", [cell(row.values[column][index]) for column in range(len(groups))]) for row in metrics]

    baselines = pooled_baselines(groups)
    if baselines:
        table.append(("", []))
        table.append(("majority baseline: always the most frequent training label (STS-B: the training mean)", []))
        for name, pooled in baselines.items():
            table.append((f"  {name}", [cell(value) if value is None else value.format_mean_if_equal() for value in pooled]))
    return table


def _check_output_file(target: Path, force: bool, example_name: str) -> None:
    """Reject an output file that cannot be written before the work that fills it; "-" is standard output."""
    if str(target) == "-":
        return
    if target.is_dir():
        raise LampreiaError(f"{target} is a folder.", f"Give a file name, such as {target / example_name}.")
    if not target.parent.is_dir():
        raise LampreiaError(f"The folder {target.parent} does not exist.", "Create it, or choose a file in an existing folder.")
    if target.exists() and not force:
        raise LampreiaError(f"{target} already exists.", "Pass --force to replace it, or choose another file name.")


def _write_table(
    target: Path, force: bool, header: list[str], rows: list[list[Any]], description: str, example_name: str = "comparison.csv", tsv: bool = False
) -> int:
    """Write a header and rows as CSV (or, with ``tsv``, GLUE's unquoted TSV) to ``target``.

    "-" is standard output; a file is replaced only with ``force``. ``description`` names what was
    written in the closing line ("12 runs"), ``example_name`` the file that the message for a
    folder suggests.
    """

    def write(handle: TextIO, line_ending: str) -> None:
        if tsv:
            from engine.prediction import tsv_line

            handle.writelines(tsv_line(cells) for cells in [header, *rows])
            return
        writer = csv.writer(handle, lineterminator=line_ending)
        writer.writerow(header)
        writer.writerows(rows)

    if str(target) == "-":
        # The text stream turns "\n" into the platform's line ending. CSV's usual "\r\n" would
        # come out as "\r\r\n" on Windows and as "\r\n" in a Unix pipe.
        write(sys.stdout, "\n")
        return 0
    _check_output_file(target, force, example_name)
    existed = target.exists()
    try:
        with replaced_text_file(target) as handle:
            write(handle, "\r\n")
    except OSError as error:
        unchanged_note = " The existing file was left as it was." if existed else ""
        raise LampreiaError(f"Cannot write {target}: {error.strerror}.", f"Choose a writable folder with free space.{unchanged_note}") from None
    print(f"Wrote {description} to {target}.")
    return 0


def _comparison_table(records: list[RunRecord], differences: list[tuple[str, list[Any]]], metrics: list[MetricRow]) -> list[tuple[str, list[str]]]:
    """Return the rows of `lampreia compare`: (label, one cell per run), or (heading, []) for a heading."""
    table: list[tuple[str, list[str]]] = [
        ("name", [record.name for record in records]),
        ("status", [record.status for record in records]),
        ("task", [record.task for record in records]),
        ("student", [record.student_size for record in records]),
        ("parameters", [_count(record.parameter_count) for record in records]),
        ("duration", [_duration(record.duration_seconds) for record in records]),
        ("best step", ["-" if record.best_step is None else str(record.best_step) for record in records]),
    ]

    table.append(("", []))
    if differences:
        table.append((f"config: {len(differences)} {'setting differs' if len(differences) == 1 else 'settings differ'}", []))
        table += [(f"  {key}", [format_config_value(value, key) for value in values]) for key, values in differences]
    else:
        table.append(("config: the same settings", []))
    table += _environment_rows(environment_diff(records))

    table.append(("", []))
    table.append(("metrics: best checkpoint (selected on the held-out slice) / last evaluation", []))
    table += [(f"  {row.name}", [f"{_metric(best)} / {_metric(last)}" for best, last in row.values]) for row in metrics]

    baseline_names = sorted({name for record in records for name in record.baseline})
    if baseline_names:
        table.append(("majority baseline: always the most frequent training label (STS-B: the training mean)", []))
        table += [(f"  {name}", [_metric(record.baseline.get(name)) for record in records]) for name in baseline_names]
    return table


def _environment_rows(differences: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """Return the heading and rows of the environment differences (device, library versions), or nothing."""
    if not differences:
        return []
    count = f"{len(differences)} {'difference' if len(differences) == 1 else 'differences'}"
    heading = f"environment: {count}, which can change the numbers of the same settings and seed"
    return [("", []), (heading, []), *((f"  {key}", values) for key, values in differences)]


def _metric(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _print_columns(
    headers: list[str], table: list[tuple[str, list[str]]], terminal_width: int | None, clipped_rows: tuple[str, ...] = ()
) -> None:
    """Print rows of (label, one cell per run) as aligned columns; a row without cells is a heading.

    Config values are never shortened, because two of them may differ only at their end. On a
    terminal too narrow for all runs, the runs are printed in blocks that fit, one after another,
    each with the labels again. There, cells of ``clipped_rows`` (run names) are cut in the middle
    to fit beside the labels, and headings are wrapped. ``terminal_width`` None (a file or a
    pipe) prints one block with every cell and heading whole.
    """
    label_width = max(len(label) for label, cells in table if cells)
    if terminal_width is not None:
        room = max(terminal_width - label_width - 2, 8)
        table = [(label, [_clip_middle(cell, room) for cell in cells]) if label in clipped_rows else (label, cells) for label, cells in table]
    widths = [_columns(header) for header in headers]
    for _, cells in table:
        for column, cell in enumerate(cells):
            widths[column] = max(widths[column], _columns(cell))

    blocks = _column_blocks(widths, label_width, terminal_width)
    for number, block in enumerate(blocks):
        if number:
            print()

        def line(label: str, cells: list[str]) -> str:
            return (f"{label:<{label_width}}  " + "  ".join(_pad(cells[column], widths[column]) for column in block)).rstrip()

        print(line("", headers))
        for label, cells in table:
            if cells:
                print(line(label, cells))
            else:
                print(textwrap.fill(label, width=terminal_width, subsequent_indent="  ") if terminal_width and label else label)


def _column_blocks(widths: list[int], label_width: int, terminal_width: int | None) -> list[list[int]]:
    """Split column indices into consecutive blocks that fit ``terminal_width`` beside the labels (one block for None).

    A column wider than the terminal gets a block of its own.
    """
    if terminal_width is None:
        return [list(range(len(widths)))]
    blocks: list[list[int]] = [[]]
    used = label_width
    for column, width in enumerate(widths):
        if blocks[-1] and used + 2 + width > terminal_width:
            blocks.append([])
            used = label_width
        blocks[-1].append(column)
        used += 2 + width
    return blocks


def _export(args: argparse.Namespace) -> int:
    store = _open_existing_store(args.db)
    if store is None:
        raise _no_runs_yet()
    record = store.get_run(args.run_id)
    points = store.metric_points(record.id)
    header = ["run_id", "step", "epoch", "name", "value", "wall_time"]
    rows = [[record.id, point.step, f"{point.epoch:.6f}", point.name, repr(point.value), f"{point.wall_time:.3f}"] for point in points]
    return _write_table(args.csv, args.force, header, rows, f"{len(points)} metric rows of run {record.id}", f"run-{record.id}-metrics.csv")


def _predict(args: argparse.Namespace) -> int:
    from engine.prediction import count, load_prediction_rows, load_trained_student, predict_rows, reject_output_over_input, report_lines, submission_table

    store = _open_existing_store(args.db)
    if store is None:
        raise _no_runs_yet()
    if args.limit is not None and args.limit < 1:
        raise LampreiaError(f"--limit {args.limit}: the number of rows must be at least 1.", "Give a positive number, or leave --limit out for all rows.")
    record = store.get_run(args.run_id)
    task = TASKS[record.task]
    example_name = f"{task.folder}.tsv"
    # Before the model runs, which can take minutes on a large file.
    reject_output_over_input(args.input, args.output)
    _check_output_file(args.output, args.force, example_name)
    if args.data_dir is not None and args.input is not None:
        raise LampreiaError("--data-dir and --input cannot be combined.", "Give the folder whose split to predict, or one file.")

    trained = load_trained_student(store, record.id, args.checkpoint, args.device)
    glue_dir = str(args.data_dir.expanduser().absolute()) if args.data_dir is not None else trained.config.data.glue_dir
    rows = load_prediction_rows(
        trained.task, glue_dir, split=args.split, input_file=args.input, limit=args.limit, skip_malformed_rows=args.skip_malformed_rows
    )
    predictions = predict_rows(trained, rows)

    for line in report_lines(trained, predictions):
        print(line, file=sys.stderr)
    header, table = submission_table(predictions, args.details)
    return _write_table(args.output, args.force, header, table, f"{count(len(table), 'prediction')} of run {record.id}", example_name, tsv=True)


class ProgressBar:
    """Event sink that draws one progress line on a terminal, or a line every few seconds in a log."""

    # Characters of the bar itself, at most and at least (narrower terminals get no bar).
    WIDTH = 24
    MIN_WIDTH = 6

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interactive = enabled and stream.isatty()
        self.phase = ""
        self.phase_name = ""  # the PhaseChanged phase alone, e.g. "training"
        self._task = ""  # from RunStarted, to name the baseline
        self._train_limit: int | None = None  # from RunStarted, to advise on few held-out rows
        self._training_phase = ""
        self._last_print = 0.0
        self._line_open = False

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._task = event.config.get("task", "")
            self._train_limit = event.config.get("data", {}).get("train_limit")
            resumed = f", resumed at step {event.resumed_from_step}" if event.resumed_from_step is not None else ""
            self.message(f"Run {event.run_id} ({event.name}) on {event.device}{resumed}")
        elif isinstance(event, RunPrepared):
            self.message(
                f"Student: {event.parameter_count:,} parameters; {event.train_rows} training rows, {event.heldout_rows} held out; "
                f"{event.total_steps} steps. {baseline_name(self._task).capitalize()}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in event.baseline.items())
            )
            if event.few_heldout_rows:
                if self._train_limit is not None:
                    advice = "Raise --train-limit or --heldout-fraction for a steadier one."
                else:
                    advice = "The training split has no more rows, so raise --heldout-fraction for a steadier one."
                self.message(f"Note: the best checkpoint is chosen on {event.heldout_rows} held-out rows, so that choice is noisy. {advice}")
        elif isinstance(event, PhaseChanged):
            # The detail of "training" contains "epoch 2 of 3" already.
            counted = event.total and f"{event.index} of {event.total}" not in event.detail
            counter = f" {event.index}/{event.total}" if counted else ""
            phase = f"{event.phase}{counter} {event.detail}".strip()
            # In a log, the return to the same epoch after each evaluation would repeat its line.
            repeated = not self.interactive and event.phase == "training" and phase == self._training_phase
            if event.phase == "training":
                self._training_phase = phase
            self.phase = phase
            self.phase_name = event.phase
            if not repeated:
                self._draw(None, force=True)
        elif isinstance(event, Progress):
            self._draw(event)
        elif isinstance(event, EvaluationLogged):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in event.metrics.items() if not k.endswith("loss_task"))
            self.message(f"step {event.step}: {shown}{'  (best so far)' if event.is_best else ''}")

    def message(self, text: str) -> None:
        if self.enabled:
            self.notice(text)

    def notice(self, text: str) -> None:
        """Print ``text`` on its own line even with --quiet, because it responds to a user action."""
        self._end_line()
        print(text, file=self.stream, flush=True)

    def _draw(self, progress: Progress | None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not self.interactive and not force and now - self._last_print < 5.0:
            return
        self._last_print = now
        if self.interactive:
            # A line wider than the terminal wraps, and the next "\r" redraw leaves the wrapped part behind.
            text = self._line(progress, shutil.get_terminal_size().columns - 1)
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self._line_open = True
        else:
            print(self._line(progress, None), file=self.stream, flush=True)

    def _line(self, progress: Progress | None, columns: int | None) -> str:
        """Return the progress line, fitted to ``columns`` terminal columns (None: no limit)."""
        phase = f"[{self.phase}]"
        if progress is None or not progress.total:
            return phase if columns is None else _clip(phase, columns)

        fraction = min(progress.done / progress.total, 1.0)
        eta = _duration(progress.eta_seconds) if progress.eta_seconds is not None and math.isfinite(progress.eta_seconds) else "?"
        counts = f" {fraction * 100:5.1f}% {progress.done}/{progress.total} ETA {eta}"
        width = self.WIDTH
        if columns is not None:
            # The bar gives way first, down to MIN_WIDTH, and below that it is left out.
            width = min(self.WIDTH, columns - _columns(phase) - _columns(counts) - 1)
            width = width if width >= self.MIN_WIDTH else 0
        filled = int(fraction * width)
        bar = f" {'█' * filled}{'░' * (width - filled)}" if width else ""
        text = phase + bar + counts
        return text if columns is None else _clip(text, columns)

    def _end_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False

    def close(self) -> None:
        if self.enabled:
            self._end_line()
            self.stream.flush()


if __name__ == "__main__":
    sys.exit(main())
