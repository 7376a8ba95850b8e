"""Crash-loop backoff between Discord starts, remembered across process restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.discord.backoff import MAX_DELAY, StartBackoff, start_delay
from tests.fakes.fake_clock import FakeClock


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_delay_doubles_and_is_capped() -> None:
    """No wait after a clean run; then 5 s, 10 s, 20 s ... never more than 15 minutes."""
    assert [start_delay(n) for n in range(5)] == [0.0, 5.0, 10.0, 20.0, 40.0]
    assert start_delay(1000) == MAX_DELAY


async def test_failed_starts_are_remembered_across_restarts(tmp_path: Path) -> None:
    """Each start counts as failed until it proves fine; the next process waits accordingly."""
    clock, sleeps = FakeClock(), Sleeps()
    path = tmp_path / "starts.json"
    for _ in range(3):  # three processes that crashed after starting
        await StartBackoff(path, clock, sleep=sleeps).before_start()
    assert sleeps.slept == [5.0, 10.0]
    clock.advance(seconds=15)
    await StartBackoff(path, clock, sleep=sleeps).before_start()
    assert sleeps.slept == [5.0, 10.0, 5.0]  # 20 s earned, 15 s already passed


async def test_success_clears_the_count(tmp_path: Path) -> None:
    """A clean stop or a stable session forgets the failures."""
    clock, sleeps = FakeClock(), Sleeps()
    backoff = StartBackoff(tmp_path / "starts.json", clock, sleep=sleeps)
    await backoff.before_start()
    await backoff.before_start()
    backoff.succeeded()
    await backoff.before_start()
    assert sleeps.slept == [5.0]


@pytest.mark.parametrize("content", ["", "{", '{"failures": "x"}', "[]"])
async def test_unreadable_file_counts_as_no_failures(tmp_path: Path, content: str) -> None:
    """A damaged counter file never stops the bot from starting."""
    path = tmp_path / "starts.json"
    path.write_text(content)
    sleeps = Sleeps()
    await StartBackoff(path, FakeClock(), sleep=sleeps).before_start()
    assert sleeps.slept == []


async def test_in_memory_database_keeps_no_file(tmp_path: Path) -> None:
    """With `sqlite:///:memory:` there is no place for the file, and no waiting."""
    sleeps = Sleeps()
    backoff = StartBackoff.beside(":memory:", FakeClock())
    backoff._sleep = sleeps
    for _ in range(3):
        await backoff.before_start()
    assert sleeps.slept == []
    beside = StartBackoff.beside(tmp_path / "relay.db", FakeClock())
    await beside.before_start()
    assert (tmp_path / "relay.db.discord-starts.json").exists()
