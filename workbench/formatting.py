"""Text shown for numbers, durations and dates in tables and labels."""

from __future__ import annotations

import math
import time


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``m:ss`` or ``h:mm:ss``; empty for unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_timestamp(epoch_seconds: float | None) -> str:
    if epoch_seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch_seconds))


def format_metric(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.4f}"


def format_count(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value:,}"


def clip_middle(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters in its middle, so that both ends stay readable.

    Run names of a sweep often differ only at their end ("… seed 3").
    """
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return text[:head] + "…" + text[-tail:]
