"""`python -m bench`: run the benchmarks, print one markdown table each, keep the run in RESULTS.md.

    .venv/bin/python -m bench                        # everything (`make bench`), writes RESULTS.md
    .venv/bin/python -m bench --only matching,reminders
    .venv/bin/python -m bench --only community       # the simulated community (pure, ~30 s)
    .venv/bin/python -m bench --quick                # smaller sizes: a smoke test, not a result
    .venv/bin/python -m bench --list

RESULTS.md keeps the last full run (every benchmark, full sizes); a partial or quick run only
prints, unless `--output PATH` says where to write it. Progress goes to stderr, tables to stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    community,
    delivery,
    discord_interaction,
    footprint,
    matching,
    reminders,
    retention,
    slack_ack,
    startup,
)
from bench.report import MISS, PASS, Table, header, now_utc

Benchmark = Callable[[bool], list[Table]]

# The registry, in running order. "slack", "discord" and "startup" run the real adapters against
# tests/fakes (each module imports slack-bolt, discord.py and the adapters only when it runs).
BENCHMARKS: dict[str, Benchmark] = {
    "matching": matching.run,
    "reminders": reminders.run,
    "retention": retention.run,
    "community": community.run,
    "delivery": delivery.run,
    "footprint": footprint.run,
    "slack": slack_ack.run,
    "discord": discord_interaction.run,
    "startup": startup.run,
}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default="", help=f"comma-separated, from: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument("--output", type=Path, help="write the markdown here as well")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _selected(only: str) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        msg = f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        raise SystemExit(msg)
    return names


def _summary(outcomes: dict[str, tuple[float, list[Table]]]) -> Table:
    table = Table("Summary", ("benchmark", "time", "PASS", "MISS"))
    for name, (seconds, tables) in outcomes.items():
        verdicts = [v for t in tables for v in t.verdicts]
        table.add(name, f"{seconds:.0f} s", verdicts.count(PASS), verdicts.count(MISS))
    return table


def _failed(name: str, exc: BaseException) -> Table:
    table = Table(f"{name}: FAILED", ("error",))
    table.add(f"{type(exc).__name__}: {exc}")
    table.notes.append("traceback on stderr")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    names = _selected(args.only)
    logging.basicConfig(level=logging.ERROR)  # the worker's retry lines are expected here
    started, clock = now_utc(), time.perf_counter()
    outcomes: dict[str, tuple[float, list[Table]]] = {}
    failed = False
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        begin = time.perf_counter()
        try:
            tables = BENCHMARKS[name](args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            tables, failed = [_failed(name, exc)], True
        outcomes[name] = (time.perf_counter() - begin, tables)
        print(f"bench: {name} done in {outcomes[name][0]:.0f} s", file=sys.stderr, flush=True)
    partial = [] if names == list(BENCHMARKS) else names
    title = header(started, time.perf_counter() - clock, partial)
    if args.quick:
        title += "\n- QUICK run: reduced sizes, not comparable with the targets"
    parts = [title, _summary(outcomes).markdown()]
    parts += [t.markdown() for _, tables in outcomes.values() for t in tables]
    document = "\n\n".join(parts) + "\n"
    print(document)
    targets = [args.output] if args.output else []
    if not partial and not args.quick and not failed:
        targets.append(RESULTS)
    for target in targets:
        target.write_text(document, encoding="utf-8")
        print(f"bench: written to {target}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
