"""The composition root: builds the store, dispatcher, delivery worker and adapters from Settings.

The only module of the core that knows concrete adapters and the SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.checks import CheckRow, check_discord, check_slack
from adapters.console import console
from adapters.http import Check, HttpServer, ServesHttp
from bot import instance, privacy, retention, texts
from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher
from bot.errors import AmbiguousUserError, ConfigError, StoreError
from bot.inflight import InFlight
from bot.metrics import STUCK_AFTER_SECONDS, Metrics, TimedInbox
from bot.model import Platform
from bot.ports import Adapter, Clock, Inbox, Sender, SystemClock
from bot.reminders import Reminders, SweepReport
from bot.settings import Settings
from storage.base import DegradedChannel, Transaction
from storage.migrate import MigrationProgress
from storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

START_RETRY_FIRST = 5.0  # seconds before starting a platform again that was down at start
START_RETRY_MAX = 300.0


@dataclass(frozen=True, slots=True)
class Core:
    """The platform-independent part of a running bot."""

    store: SqliteStore
    clock: Clock
    dispatcher: Dispatcher
    worker: DeliveryWorker
    reminders: Reminders


def build_core(
    settings: Settings,
    store: SqliteStore,
    senders: Mapping[Platform, Sender],
    clock: Clock | None = None,
) -> Core:
    clock = clock or SystemClock()
    inflight = InFlight()
    worker = DeliveryWorker(store=store, clock=clock, senders=senders, inflight=inflight)
    dispatcher = Dispatcher(
        store=store,
        clock=clock,
        rules=settings.rules(),
        platforms=senders.keys(),
        on_enqueue=worker.wake,
        inflight=inflight,
    )
    reminders = Reminders(
        store=store, clock=clock, rules=settings.reminder_rules(), platforms=senders.keys()
    )
    return Core(store=store, clock=clock, dispatcher=dispatcher, worker=worker, reminders=reminders)


def console_mode(settings: Settings) -> bool:
    return not (settings.slack_enabled or settings.discord_enabled)


async def run(
    settings: Settings, lines: AsyncIterator[str] | None = None, clock: Clock | None = None
) -> None:
    """`reviewrelay run`: the local console without platform tokens, else serve the platforms."""
    with instance.serving(settings.database_path):
        if console_mode(settings):
            await run_console(settings, lines, clock)
        else:
            await serve(settings, platform_adapters(settings, clock or SystemClock()), clock)


async def run_console(
    settings: Settings, lines: AsyncIterator[str] | None = None, clock: Clock | None = None
) -> None:
    async with await SqliteStore.open(settings.database_path) as store:
        core = build_core(settings, store, {Platform.CONSOLE: console.ConsoleSender()}, clock)
        await core.dispatcher.connect_community(console.COMMUNITY)
        await console.run_console(
            dispatcher=core.dispatcher,
            deliver=core.worker,
            clock=core.clock,
            lines=lines or console.stdin_lines(),
        )


def platform_adapters(settings: Settings, clock: Clock) -> list[Adapter]:
    """The Slack and Discord adapters the settings enable (imported only when enabled)."""
    found: list[Adapter] = []
    if settings.slack_enabled:
        from adapters.slack import build_slack  # noqa: PLC0415 - load slack-bolt only when used

        found.append(build_slack(settings, clock))
    if settings.discord_enabled:
        from adapters.discord import build_discord  # noqa: PLC0415 - load discord.py when used

        found.append(build_discord(settings, clock))
    return found


async def serve(
    settings: Settings,
    adapters: Sequence[Adapter],
    clock: Clock | None = None,
    *,
    started: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the platforms, the HTTP server, the delivery worker and the daily schedule until `stop`.

    `started` is set once everything is up (tests and the benchmark wait on it).
    """
    async with await SqliteStore.open(settings.database_path) as store:
        core = build_core(settings, store, {a.platform: a.sender for a in adapters}, clock)
        metrics = Metrics(store=store, worker=core.worker, clock=core.clock)
        checks: dict[str, Check] = {
            "store": lambda: _store_ok(store),
            "outbox": lambda: _outbox_moving(metrics),
        }
        checks.update({str(a.platform): _connected(a) for a in adapters})
        routes = [r for a in adapters if isinstance(a, ServesHttp) for r in a.routes()]
        http = HttpServer(
            host=settings.http_host,
            port=settings.http_port,
            checks=checks,
            routes=routes,
            metrics=metrics.render,
            details=lambda: _health_details(store),
        )
        inbox = TimedInbox(
            core.dispatcher, lambda p, e, s: metrics.handler_seconds.labels(p, e).observe(s)
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            # A platform that is down now (not misconfigured) keeps trying while the rest serves.
            down = [a for a in adapters if not await _start(a, inbox)]
            tasks += [asyncio.create_task(_keep_starting(a, inbox)) for a in down]
            await http.start()
            tasks += [
                asyncio.create_task(core.worker.run(), name="delivery"),
                asyncio.create_task(_daily(core), name="reminders"),
            ]
            if started is not None:
                started.set()
            with _startup_frozen():
                await (stop or asyncio.Event()).wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.stop()
            for adapter in reversed(adapters):
                await adapter.stop()


@contextlib.contextmanager
def _startup_frozen() -> Iterator[None]:
    """Leave the objects start-up made out of the garbage collector's full collections.

    Start-up leaves some 75,000 objects that live as long as the process (the SDKs' modules,
    classes and functions). A full collection walked them all: 60-80 ms during which no request
    moved, every few seconds under load, which was most of the Slack benchmark's p99 at
    concurrency 50. Frozen, a full collection takes 2-4 ms.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # a test process serves many times: what outlives this is collectable again


async def _start(adapter: Adapter, inbox: Inbox) -> bool:
    """Start one platform; False if it failed for a reason that may pass (an outage).

    A ConfigError (a wrong token) is raised: retrying cannot fix it, and the operator must know.
    """
    try:
        await adapter.start(inbox)
    except ConfigError:
        raise
    except Exception:
        log.exception("%s did not start; the other platforms go on without it", adapter.platform)
        return False
    return True


async def _keep_starting(adapter: Adapter, inbox: Inbox) -> None:
    delay = START_RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if await _start(adapter, inbox):
            log.info("%s started after all", adapter.platform)
            return
        delay = min(delay * 2, START_RETRY_MAX)


async def _outbox_moving(metrics: Metrics) -> bool:
    return await metrics.outbox_age() < STUCK_AFTER_SECONDS


async def _store_ok(store: SqliteStore) -> bool:
    """It answers, and has not failed a write lately (a full disk: `store_failing` says why)."""
    await store.schema_version()
    return store.failing is None


async def _health_details(store: SqliteStore) -> dict[str, object]:
    details = await _degraded_details(store)
    if (failing := store.failing) is not None:  # read once: it can lapse between two reads
        details["store_failing"] = failing
    return details


async def _degraded_details(store: SqliteStore) -> dict[str, object]:
    """The channels the bot lost, for /healthz: an admin's fix, not a reason to restart."""
    degraded = await store.run(lambda tx: tx.degraded_channels())
    return {
        "degraded_channels": [
            {
                "platform": str(d.platform),
                "community": d.community_id,
                "channel": d.channel_id,
                "since": d.since.isoformat(),
                "reason": d.reason,
                "parked": d.parked,
            }
            for d in degraded
        ]
    }


def _degraded_rows(degraded: Sequence[DegradedChannel]) -> list[CheckRow]:
    """One failing `check` row per channel the bot lost, with what fixes it."""
    return [
        CheckRow(
            texts.DEGRADED_CHECK.format(
                channel=d.channel_id, platform=d.platform, community=d.community_id
            ),
            False,
            texts.DEGRADED_DETAIL.format(
                since=d.since, reason=d.reason, parked=d.parked, s=texts.plural(d.parked)
            ),
            texts.DEGRADED_FIX,
        )
        for d in degraded
    ]


def _connected(adapter: Adapter) -> Check:
    async def check() -> bool:
        return adapter.connected

    return check


async def _daily(
    core: Core,
    interval: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Once a minute, at its start: the reminders whose time has come (each runs once a day),
    and today's retention pass. A job that fails is tried again at the next check; the other
    still runs."""

    async def reminders() -> None:
        await core.reminders.run()
        core.worker.wake()

    async def retention_pass() -> None:
        await retention.prune(core.store, core.clock.now())

    while True:
        for job in (reminders, retention_pass):
            try:
                await job()
            except Exception:
                log.exception("%s failed; trying again in %.0fs", job.__name__, interval)
        # To the start of the next minute, not a minute on: the jobs' own time made each round
        # a little over a minute, and now and then a round stepped over a whole minute (a
        # reminder time of 23:59 then had no tick before midnight: that day had no digest).
        await sleep(interval - core.clock.now().timestamp() % interval)


async def remind(
    settings: Settings, clock: Clock | None = None, *, dry_run: bool = False
) -> SweepReport:
    """`reviewrelay remind`: one sweep for every community, delivered (unless a dry run).

    While the bot runs on the same database, the sweep only queues: the running bot delivers.
    """
    try:
        with instance.serving(settings.database_path):
            return await _remind_and_deliver(settings, clock, dry_run=dry_run)
    except instance.AlreadyRunningError as running:
        log.info("the running bot (pid %s) delivers this sweep", running.pid or "?")
        async with await SqliteStore.open(settings.database_path) as store:
            reminders = Reminders(
                store=store,
                clock=clock or SystemClock(),
                rules=settings.reminder_rules(),
                platforms=configured_platforms(settings),
            )
            return await reminders.run(only_when_due=False, dry_run=dry_run)


def configured_platforms(settings: Settings) -> set[Platform]:
    """The platforms a bot on these settings serves (console when it has no token)."""
    if console_mode(settings):
        return {Platform.CONSOLE}
    return {
        p
        for p, on in (
            (Platform.SLACK, settings.slack_enabled),
            (Platform.DISCORD, settings.discord_enabled),
        )
        if on
    }


async def _remind_and_deliver(
    settings: Settings, clock: Clock | None, *, dry_run: bool
) -> SweepReport:
    async with await SqliteStore.open(settings.database_path) as store:
        adapters = (
            [] if console_mode(settings) else platform_adapters(settings, clock or SystemClock())
        )
        senders: dict[Platform, Sender] = {a.platform: a.sender for a in adapters}
        if console_mode(settings):
            senders[Platform.CONSOLE] = console.ConsoleSender()
        core = build_core(settings, store, senders, clock)
        try:
            if console_mode(settings):
                await core.dispatcher.connect_community(console.COMMUNITY)
            for adapter in adapters:
                await adapter.start(core.dispatcher)
            report = await core.reminders.run(only_when_due=False, dry_run=dry_run)
            if not dry_run:
                await core.worker.drain()
            return report
        finally:
            for adapter in adapters:
                await adapter.stop()


async def check(settings: Settings, *, offline: bool) -> list[CheckRow]:
    """`reviewrelay check`: the store, and unless offline each configured platform's token."""
    rows = [CheckRow("settings", True, "valid")]
    try:
        async with await SqliteStore.open(settings.database_path) as store:
            version = await store.schema_version()
            degraded = await store.run(lambda tx: tx.degraded_channels())
        rows.append(CheckRow("store", True, f"{settings.database_url} at schema {version}"))
        rows += _degraded_rows(degraded)
    except StoreError as exc:
        rows.append(CheckRow("store", False, str(exc), "check DATABASE_URL and its folder"))
    if offline:
        return rows
    return [*rows, await check_slack(settings), await check_discord(settings)]


async def backup(settings: Settings, target: Path, progress: Callable[[int, int], None]) -> None:
    """`reviewrelay backup PATH`: a consistent copy, safe while the bot runs."""
    await SqliteStore.backup_file(settings.database_path, target, progress)


async def person_data(
    settings: Settings, platform: str, user_id: str, community_id: str | None, *, forget: bool
) -> str | None:
    """`reviewrelay export|forget`: a person's data as JSON, then (for forget) removed."""

    async def export(tx: Transaction) -> str | None:
        people = await tx.find_people(platform, community_id, user_id)
        if not people:
            return None
        if len(set(people.values())) > 1:
            # Exporting or forgetting one of them at random would answer for the wrong person.
            places = ", ".join(people)
            msg = (
                f"{platform} user {user_id} is a different person in each of the communities "
                f"{places}: say which with --community"
            )
            raise AmbiguousUserError(msg)
        person = next(iter(people.values()))
        data = await privacy.export(tx, person)
        if forget:
            # Notices about ended requests go out the next time the bot runs.
            await privacy.forget(tx, person, SystemClock().now(), frozenset(Platform))
        return data

    async with await SqliteStore.open(settings.database_path) as store:
        return await store.run(export)


async def upgrade(settings: Settings, progress: MigrationProgress | None = None) -> int:
    """`reviewrelay db upgrade`: apply pending migrations; returns the schema version."""
    async with await SqliteStore.open(settings.database_path, progress=progress) as store:
        return await store.schema_version()
