"""Start-up and footprint: what importing costs, next to the platform SDKs' own cost.

Each case runs in a fresh interpreter (the venv's), several times; the child times its own
imports and reports its peak RSS, and which platform SDKs ended up loaded. Then `python -m bot
run` in console mode (no tokens, stdin closed at once) is timed from spawn to exit.

Process start to `/healthz` 200 with both adapters running against the fakes, and the idle RSS of
that process, are `bench.startup`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import INFO, Table, median, mib, ms, verdict

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
QUICK_RUNS = 2
SDKS = ("slack_bolt", "slack_sdk", "discord")
CASES: dict[str, tuple[str, ...]] = {
    "interpreter only": (),
    "SDKs alone: slack_bolt + discord": ("slack_bolt", "discord"),
    "core: bot.app + adapters.http": ("bot.app", "adapters.http"),
    "core + adapters: + adapters.slack + adapters.discord": (
        "bot.app",
        "adapters.http",
        "adapters.slack",
        "adapters.discord",
    ),
}
_CHILD = """
import json, resource, sys, time
start = time.perf_counter()
missing = []
for name in {modules!r}:
    try:
        __import__(name)
    except ImportError as exc:
        missing.append(f"{{name}} ({{exc}})")
seconds = time.perf_counter() - start
try:  # the high-water mark of this process's own memory (ru_maxrss can carry the parent's)
    with open("/proc/self/status") as status:
        rss = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) * 1024
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{
    "seconds": seconds,
    "rss": rss,
    "sdks": sorted(m for m in {sdks!r} if m in sys.modules),
    "missing": missing,
}}))
"""


@dataclass(slots=True)
class Imported:
    seconds: list[float]
    wall: list[float]
    rss: list[int]
    sdks: list[str]
    missing: list[str]


def _env(**extra: str) -> dict[str, str]:
    """The environment without any platform token or database setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_", "HTTP_"))
    }
    env.update(extra)
    return env


def measure_import(modules: tuple[str, ...], runs: int) -> Imported:
    found = Imported([], [], [], [], [])
    code = _CHILD.format(modules=modules, sdks=SDKS)
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=_env(),
        )
        found.wall.append(time.perf_counter() - start)
        data = json.loads(done.stdout.strip().splitlines()[-1])
        found.seconds.append(data["seconds"])
        found.rss.append(data["rss"])
        found.sdks, found.missing = data["sdks"], data["missing"]
    return found


def measure_console(runs: int) -> tuple[list[float], list[int], str]:
    """`python -m bot run` with no tokens (the console) and stdin closed: spawn to exit."""
    walls, codes, err = [], [], ""
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        env = _env(DATABASE_URL=f"sqlite:///{tmp}/console.db")
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "bot", "run"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                cwd=tmp,  # no .env from the checkout
                env=env,
                timeout=60,
            )
            walls.append(time.perf_counter() - start)
            codes.append(done.returncode)
            err = err or done.stderr.strip()[-300:]
    return walls, codes, err


def run(quick: bool = False) -> list[Table]:
    runs = QUICK_RUNS if quick else RUNS
    results = {name: measure_import(modules, runs) for name, modules in CASES.items()}
    walls, codes, err = measure_console(runs)
    return [_table(results, walls, codes, err)]


def _table(results: dict[str, Imported], walls: list[float], codes: list[int], err: str) -> Table:
    table = Table(
        "Start-up and footprint",
        (
            "what",
            "import time p50",
            "process wall p50",
            "peak RSS p50",
            "SDKs loaded",
            "target",
            "result",
        ),
    )
    sdk_floor = median(results["SDKs alone: slack_bolt + discord"].seconds)
    for name, r in results.items():
        core_only = name.startswith("core:")
        loaded = ", ".join(r.sdks) or "none"
        if r.missing:
            loaded += f"; not importable: {', '.join(r.missing)}"
        imported = ms(median(r.seconds)) + f" ({median(r.seconds) / sdk_floor:.2f}x SDKs)"
        table.add(
            name,
            imported if CASES[name] else "-",
            ms(median(r.wall)),
            mib(median(r.rss)),
            loaded,
            "no platform SDK imported" if core_only else "-",
            verdict(not r.sdks) if core_only else INFO,
        )
    clean = all(code == 0 for code in codes)
    table.add(
        "`python -m bot run` (console, stdin closed): spawn to exit",
        "",
        f"{ms(median(walls))} (first, new database: {ms(walls[0])})",
        "",
        "",
        "exits 0 on end of input",
        verdict(clean),
    )
    table.notes += [
        "import time: measured inside the child around the imports; process wall: spawn to "
        "exit as the parent sees it (interpreter start included); peak RSS: the child's "
        "high-water RSS (VmHWM). Medians of several fresh processes.",
    ]
    if not clean:
        table.notes.append(f"`python -m bot run` exit codes {codes}; stderr: {err!r}")
    return table
