"""The composition root: builds the store, dispatcher, delivery worker and adapters from Settings.

The only module of the core that knows concrete adapters and the SQLite store.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from adapters.console import console
from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher
from bot.model import Platform
from bot.ports import Clock, Sender, SystemClock
from bot.reminders import DigestResult, run_digests
from bot.settings import Settings
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Core:
    """The platform-independent part of a running bot."""

    store: SqliteStore
    clock: Clock
    dispatcher: Dispatcher
    worker: DeliveryWorker


def build_core(
    settings: Settings,
    store: SqliteStore,
    senders: Mapping[Platform, Sender],
    clock: Clock | None = None,
) -> Core:
    clock = clock or SystemClock()
    worker = DeliveryWorker(store=store, clock=clock, senders=senders)
    dispatcher = Dispatcher(
        store=store,
        clock=clock,
        rules=settings.rules(),
        platforms=senders.keys(),
        on_enqueue=worker.wake,
    )
    return Core(store=store, clock=clock, dispatcher=dispatcher, worker=worker)


def console_mode(settings: Settings) -> bool:
    return not (settings.slack_enabled or settings.discord_enabled)


async def run(
    settings: Settings, lines: AsyncIterator[str] | None = None, clock: Clock | None = None
) -> None:
    """`reviewrelay run`: the local console when no platform token is configured."""
    if not console_mode(settings):
        msg = "the Slack and Discord adapters are not part of this build yet"
        raise NotImplementedError(msg)
    async with await SqliteStore.open(settings.database_path) as store:
        core = build_core(settings, store, {Platform.CONSOLE: console.ConsoleSender()}, clock)
        await core.dispatcher.connect_community(console.COMMUNITY)
        await console.run_console(
            dispatcher=core.dispatcher,
            deliver=core.worker,
            clock=core.clock,
            lines=lines or console.stdin_lines(),
        )


async def remind(settings: Settings, clock: Clock | None = None) -> list[DigestResult]:
    """`reviewrelay remind`: one digest sweep for every community, delivered, then return."""
    async with await SqliteStore.open(settings.database_path) as store:
        senders: dict[Platform, Sender] = {}
        if console_mode(settings):
            senders[Platform.CONSOLE] = console.ConsoleSender()
        core = build_core(settings, store, senders, clock)
        if console_mode(settings):
            await core.dispatcher.connect_community(console.COMMUNITY)
        results = await run_digests(
            store=store,
            clock=core.clock,
            platforms=senders.keys(),
            stale_after=settings.stale_after,
            only_when_due=False,
        )
        await core.worker.drain()
        return results


async def upgrade(settings: Settings) -> int:
    """`reviewrelay db upgrade`: apply pending migrations; returns the schema version."""
    async with await SqliteStore.open(settings.database_path) as store:
        return await store.schema_version()
