"""Shared fixtures: a fake clock, a real SQLite store, a dispatcher and a recording sender."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings

from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher, Rules
from bot.errors import DeliveryError
from bot.model import Community, Notice, Platform
from storage.sqlite import SqliteStore
from tests.fakes.fake_clock import FakeClock

# The machines here are shared and noisy: a slow example is not a failure; a wrong one is.
settings.register_profile("reviewrelay", deadline=None)
settings.load_profile("reviewrelay")

COMMUNITY = Community(
    platform=Platform.CONSOLE, community_id="local", name="local", review_channel_id="reviews"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "test.db")
    try:
        yield opened
    finally:
        await opened.close()


class RecordingSender:
    """A Sender that keeps what it was asked to send, and can be told to fail: before doing it
    (`failures`), or after (`lost_answers`: the platform has the message, the answer is lost)."""

    def __init__(self, platform: Platform = Platform.CONSOLE) -> None:
        self.platform = platform
        self.sent: list[Notice] = []
        self.failures: list[DeliveryError] = []
        self.lost_answers: list[DeliveryError] = []
        self.looked_for: list[int] = []  # notice ids, one per `find`
        self._ids = itertools.count(1)
        self._messages: dict[int, str] = {}  # notice id -> message id, as the platform keeps them

    async def send(self, notice: Notice) -> str | None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(notice)
        self._messages[notice.id] = f"m{next(self._ids)}"
        if self.lost_answers:
            raise self.lost_answers.pop(0)
        return self._messages[notice.id]

    async def find(self, notice: Notice) -> str | None:
        self.looked_for.append(notice.id)
        return self._messages.get(notice.id)


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def worker(store: SqliteStore, clock: FakeClock, sender: RecordingSender) -> DeliveryWorker:
    return DeliveryWorker(store=store, clock=clock, senders={Platform.CONSOLE: sender})


@pytest.fixture
async def dispatcher(store: SqliteStore, clock: FakeClock) -> Dispatcher:
    built = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[Platform.CONSOLE])
    await built.connect_community(COMMUNITY)
    return built
