"""Device choice, mixed precision and the software versions recorded with each run."""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata

import torch

from engine.errors import ConfigError


def select_device(requested: str) -> torch.device:
    """Map ``auto``/``cpu``/``cuda``/``cuda:N`` to a usable torch device."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ConfigError(
            "training.device",
            f"{requested!r} was requested, but torch {torch.__version__} ({build}) sees no CUDA GPU.",
            "Use auto or cpu, or install a CUDA build of torch on a machine with an NVIDIA GPU.",
        )
    device = torch.device(requested)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            "training.device",
            f"{requested!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s).",
            f"Use cuda:0 … cuda:{torch.cuda.device_count() - 1}.",
        )
    return device


def describe_device(device: torch.device, threads: int | None = None) -> str:
    """Name the device; for the CPU with the calling thread's torch thread count, unless ``threads`` gives another."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    threads = threads or torch.get_num_threads()
    return f"CPU: {platform.processor() or platform.machine()} ({threads} thread{'s' if threads != 1 else ''})"


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 matrix products natively on this CPU (AVX-512 BF16 or AMX)."""
    try:
        # NOTE: a private torch function (present in torch 2.4 to 2.13); without it, no CPU autocast.
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """Return the autocast dtype, or None for plain fp32.

    CUDA: bf16 where supported, else fp16 (which needs a gradient scaler). CPU: bf16 where the CPU
    has native bf16 instructions; bench/student_throughput.py measured training steps 1.7 to 2.2
    times faster there, and bench/padding.py the same dev accuracy.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def describe_precision(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[dtype]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("lampreia-workbench", "torch", "transformers", "numpy", "scikit-learn", "safetensors", "sqlalchemy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def available_memory(device: torch.device) -> int | None:
    """Return the bytes a run could still allocate on ``device``, or None where that cannot be read.

    On a CUDA device the free memory as the driver reports it; on the CPU the kernel's
    MemAvailable estimate (Linux only).
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
