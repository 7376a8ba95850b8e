"""Prometheus metrics: counts read from the store at scrape time, delivery results from the
worker, and handler latency measured where adapters hand events to the core.

Reading state at scrape time keeps the use cases free of metric calls and makes the numbers
agree with the database after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from bot.delivery import DeliveryWorker
from bot.model import Community, InboundEvent, OpenPost, Platform, Reply
from bot.ports import Clock, Inbox
from storage.base import DegradedChannel, Snapshot, Store, Transaction

STUCK_AFTER_SECONDS = 900.0  # /healthz fails when a due notice has waited this long


class Metrics:
    def __init__(self, *, store: Store, worker: DeliveryWorker, clock: Clock) -> None:
        self._store = store
        self._worker = worker
        self._clock = clock
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Gauge(
            "reviewrelay_requests",
            "Requests by requester platform and status",
            ["platform", "status"],
            registry=r,
        )
        self._active = Gauge(
            "reviewrelay_claims_active", "Requests claimed and not yet done", registry=r
        )
        self._pending = Gauge(
            "reviewrelay_outbox_pending", "Notices waiting to be delivered", registry=r
        )
        self._oldest = Gauge(
            "reviewrelay_outbox_oldest_seconds",
            "How long the oldest due notice has waited",
            registry=r,
        )
        self._dead = Gauge(
            "reviewrelay_outbox_dead", "Notices given up on (dead letters)", registry=r
        )
        self._deliveries = Gauge(
            "reviewrelay_deliveries",
            "Delivery attempts since start",
            ["platform", "result"],
            registry=r,
        )
        self._reminders = Gauge(
            "reviewrelay_reminder_runs",
            "Once-a-day runs recorded (digests, nudges and expiry, recognition, retention)",
            registry=r,
        )
        self._degraded = Gauge(
            "reviewrelay_degraded_channels",
            "Channels the platform said are gone or closed to the bot (their notices are held)",
            ["platform"],
            registry=r,
        )
        self._parked = Gauge(
            "reviewrelay_outbox_parked", "Notices held for degraded channels", registry=r
        )
        self.handler_seconds = Histogram(
            "reviewrelay_handler_seconds",
            "Time from an inbound event to its reply",
            ["platform", "event"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

    async def outbox_age(self) -> float:
        """How long the oldest due notice has waited; parked ones are held, not stuck."""
        return self._age(await self._store.run(lambda tx: tx.outbox_oldest_due()))

    def _age(self, due: datetime | None) -> float:
        return max(0.0, (self._clock.now() - due).total_seconds()) if due else 0.0

    async def render(self) -> bytes:
        async def read(
            tx: Transaction,
        ) -> tuple[Snapshot, datetime | None, list[DegradedChannel]]:
            return await tx.snapshot(), await tx.outbox_oldest_due(), await tx.degraded_channels()

        snapshot, oldest, degraded = await self._store.run(read)
        self._requests.clear()
        for (platform, status), count in snapshot.requests.items():
            self._requests.labels(platform, status).set(count)
        self._active.set(snapshot.active_claims)
        self._pending.set(snapshot.outbox_pending)
        self._oldest.set(self._age(oldest))
        self._dead.set(snapshot.outbox_dead)
        self._reminders.set(snapshot.reminder_runs)
        for platform in Platform:  # zero for every platform, so a cleared channel reads 0
            self._degraded.labels(str(platform)).set(
                sum(1 for d in degraded if d.platform is platform)
            )
        self._parked.set(sum(d.parked for d in degraded))
        for (platform, result), count in self._worker.stats.items():
            self._deliveries.labels(str(platform), result).set(count)
        return generate_latest(self.registry)


class TimedInbox:
    """The Inbox adapters see: the dispatcher, with each event's handling time observed."""

    def __init__(self, inbox: Inbox, observe: Callable[[str, str, float], None]) -> None:
        self._inbox = inbox
        self._observe = observe

    async def handle(self, event: InboundEvent) -> Reply:
        started = time.perf_counter()
        try:
            return await self._inbox.handle(event)
        finally:
            self._observe(
                str(event.member.platform), type(event).__name__, time.perf_counter() - started
            )

    async def connect_community(self, community: Community) -> None:
        await self._inbox.connect_community(community)

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int | None = None
    ) -> list[OpenPost]:
        """Pass-through for adapters that reconcile missed reactions (Discord)."""
        inner = getattr(self._inbox, "open_posts", None)
        return list(await inner(platform, before=before, limit=limit)) if inner else []

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool:
        """Pass-through, as `open_posts`."""
        inner = getattr(self._inbox, "relay_posts_due", None)
        return bool(await inner(platform, at)) if inner is not None else False
