"""Data-parallel training across processes started by ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node N -m engine.cli run ...`` starts N copies of the trainer. Rank 0 owns
everything that is written: the run store, the events, the checkpoints and the teacher cache
(the other ranks read the cache after rank 0 has filled it). Each rank trains on its own share
of every epoch's batches; DDP averages the gradients. Without the torchrun environment
(``WORLD_SIZE`` unset or 1) nothing here is used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in a torchrun job."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_group_from_environment(use_cuda: bool) -> ProcessGroup | None:
    """Join the torchrun job described by the environment, or return None outside one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    if not dist.is_initialized():
        # NCCL needs one GPU per process; gloo runs the same job on CPUs (and in the tests).
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    group = ProcessGroup(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    log.info("Joined a torchrun job as rank %d of %d", group.rank, group.world_size)
    return group


def broadcast_from_main(value: Any) -> Any:
    """Return rank 0's ``value`` on every rank."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise OR of ``flags`` over all ranks (one small all-reduce)."""
    tensor = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(value) for value in tensor.tolist()]


def barrier() -> None:
    dist.barrier()


def shard_batches(batches: list[np.ndarray], group: ProcessGroup) -> list[np.ndarray]:
    """This rank's batches: every world_size-th one, cut so that all ranks take the same number of steps."""
    per_rank = len(batches) // group.world_size
    return batches[group.rank :: group.world_size][:per_rank]


def shutdown(synchronize: bool) -> None:
    """Destroy the process group; with ``synchronize``, first wait until every rank has got here.

    A rank that destroyed its gloo group while the other was still in its last collective aborted
    with "terminate called without an active exception" (seen once, in a CI run of the
    two-process test). Only ranks that all finished may wait: a rank that failed or was cancelled
    alone would leave the others waiting for the collective timeout, or match a barrier they wait
    in for another reason.
    """
    if not dist.is_initialized():
        return
    if synchronize:
        dist.barrier()
    dist.destroy_process_group()


class FollowerStore:
    """Stands in for the run store on ranks other than 0, which must not write to it."""

    def __init__(self, run_id: int | None) -> None:
        self.run_id = run_id

    def create_run(self, *args: Any, **kwargs: Any) -> int | None:
        return self.run_id

    def claim_run(self, *args: Any, **kwargs: Any) -> None:
        pass

    def get_run_name(self) -> str:
        return f"run {self.run_id}"

    def set_prepared(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        pass

    def finish_run(self, *args: Any, **kwargs: Any) -> None:
        pass

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_attention(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_artifact(self, *args: Any, **kwargs: Any) -> None:
        pass

    def discard_after_step(self, *args: Any, **kwargs: Any) -> None:
        pass

    def artifact_dir(self, run_id: int) -> Path:
        raise RuntimeError("only rank 0 writes checkpoints")
