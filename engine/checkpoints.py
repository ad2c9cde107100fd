"""Checkpoints as safetensors files: no pickle is written or read.

``best.safetensors`` contains the student weights of the best evaluation, with ``best.json`` beside it
(the run config and the metrics), enough to rebuild the model. ``last.safetensors`` is the resume
state: weights, AdamW moments, RNG states and the trainer's counters (JSON in the safetensors
metadata). Each file carries a SHA-256 of its tensor bytes, so a truncated or corrupted file is
rejected with a ``CheckpointError`` instead of silently resuming from garbage. Files are written
to a temporary name and renamed, so a crash mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from engine.errors import CheckpointError, LampreiaError

FORMAT_VERSION = "1"


@dataclass
class LoadedCheckpoint:
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> int:
    """Write ``tensors`` and the JSON-able ``state`` atomically; return the file size in bytes."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    metadata = {
        "format": FORMAT_VERSION,
        "state": json.dumps(state),
        "sha256": _checksum(tensors),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(temporary), metadata=metadata)
        os.replace(temporary, path)
    except (OSError, SafetensorError) as error:
        temporary.unlink(missing_ok=True)
        # safetensors reports I/O failures as SafetensorError with the OS message inside.
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            raise LampreiaError(
                f"The disk is full: the checkpoint {path} could not be written.",
                "Free disk space on that drive (or move the run database with --db) and resume the run.",
            ) from error
        raise LampreiaError(
            f"The checkpoint {path} could not be written: {getattr(error, 'strerror', None) or error}.",
            "Check that the folder is writable and the disk has space, then resume the run.",
        ) from error
    return path.stat().st_size


def read_checkpoint(path: Path, run_id: int | None = None) -> LoadedCheckpoint:
    """Read and verify a checkpoint written by ``write_checkpoint``; ``run_id`` names the run in the hints."""
    start_again = f"Start the run again with 'Run again' (CLI: lampreia run --from-run {run_id if run_id is not None else 'RUN_ID'})"
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {path} does not exist.", "The run can only be started again, not resumed.")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            for name in handle.keys():
                tensors[name] = handle.get_tensor(name)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"The checkpoint {path} is truncated or corrupted ({error}).",
            f"{start_again}; it cannot be resumed from this file.",
        ) from None

    if metadata.get("format") != FORMAT_VERSION or "state" not in metadata:
        raise CheckpointError(f"The checkpoint {path} is not a Lampreia checkpoint of format {FORMAT_VERSION}.", "Start the run again.")
    if metadata.get("sha256") != _checksum(tensors):
        raise CheckpointError(
            f"The checkpoint {path} is corrupted: its contents do not match the checksum written with it.",
            f"{start_again}.",
        )
    try:
        state = json.loads(metadata["state"])
    except ValueError:
        raise CheckpointError(f"The checkpoint {path} has unreadable state metadata.", "Start the run again.") from None
    return LoadedCheckpoint(tensors=tensors, state=state)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into flat tensors and a JSON-able remainder."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        if not name.startswith("optimizer."):
            continue
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    for index, entries in saved.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
