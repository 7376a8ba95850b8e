"""What every benchmark shares: result tables, the run header, percentiles and a stopwatch.

A benchmark returns `Table`s; `__main__` renders them as markdown. Every table carries a target
column and a PASS/MISS verdict so the printed run can be read without this code.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

PASS = "PASS"  # noqa: S105 - a verdict, not a password
MISS = "MISS"
INFO = "info"  # a measurement with no target of its own (a floor, or context for a ratio)
PENDING = "pending"


def verdict(ok: bool) -> str:
    return PASS if ok else MISS


@dataclass(slots=True)
class Table:
    """One markdown table, with notes printed under it."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            msg = f"{self.title}: {len(cells)} cells for {len(self.columns)} columns"
            raise ValueError(msg)
        self.rows.append(cells)

    @property
    def verdicts(self) -> list[str]:
        return [str(cell) for row in self.rows for cell in row if cell in (PASS, MISS)]

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def header(started: datetime, seconds: float, selected: Sequence[str]) -> str:
    """The run's provenance: when, on what, with which command."""
    cpus = os.cpu_count() or 0
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    command = ".venv/bin/python -m bench" + (f" --only {','.join(selected)}" if selected else "")
    return "\n".join(
        [
            "# reviewrelay benchmarks",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC",
            f"- machine: {platform.platform()}; {cpus} CPUs ({affinity} usable); "
            f"Python {platform.python_version()} ({sys.implementation.name})",
            f"- command: `{command}` (`make bench`); whole run {seconds:.0f} s",
            "- the machine is shared and noisy: compare ratios within one run, not absolute "
            "times across runs",
        ]
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; samples need not be sorted."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB"


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
