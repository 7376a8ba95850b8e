"""The outbox worker: sends queued notices through each platform's Sender, durably.

A notice leaves the outbox only after its platform accepted it (then it is marked sent, with the
message id recorded at once) or refused it for good (then it is dead-lettered and logged). Timeouts,
5xx and 429 are retried with exponential backoff and jitter, honouring the platform's own hint. The
store hands out only the oldest pending notice of each channel, so order holds per channel, and a
post edit renders the request as it is at send time, settling the edits queued before it. A
channel the platform says is lost (deleted, archived, bot removed) is marked degraded once: its
later notices are parked, not tried, until `/review setup` runs there again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta

from bot import logs, texts
from bot.errors import DeliveryError
from bot.inflight import InFlight
from bot.model import Notice, NoticeKind, Platform
from bot.ports import Clock, Sender
from storage.base import Store, Transaction

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
BASE_DELAY = 1.0
MAX_DELAY = 300.0
_EDITS = frozenset({NoticeKind.POST_UPDATE, NoticeKind.TEXT_UPDATE})
# Sent twice, these show twice; edits and ephemeral answers do not last or change nothing.
_NEW_MESSAGES = frozenset({NoticeKind.RELAY_POST, NoticeKind.CHANNEL_TEXT, NoticeKind.DIRECT})
# Seconds before the lookup that precedes a resend, after a call that may have got through late
# (a timeout, a connection dropped after sending): a relay post a little late beats one twice.
LATE_ANSWER_WAIT = 30.0
UNAUTHORIZED_LIMIT = 3  # after this many 401s a platform is not called again until restart
# Rounds that keep failing (a full disk) are logged at the first, then every this many (about a
# minute apart when idle), not each second into a log that may share the full disk.
FAILED_ROUNDS_LOGGED_EVERY = 60
STORE_RETRY = 5.0  # seconds a notice waits after the store failed on it (a full disk)


class DeliveryWorker:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        senders: Mapping[Platform, Sender],
        batch: int = 50,
        rng: random.Random | None = None,
        inflight: InFlight | None = None,
    ) -> None:
        self._store = store
        self._inflight = inflight or InFlight()  # inbound events: they go first
        self._clock = clock
        self._senders = dict(senders)
        self._batch = batch
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._wake = asyncio.Event()
        self._retries: list[datetime] = []  # due times of scheduled retries, earliest first
        # A platform-wide limit (Discord's global 429, an IP ban) pauses every channel of it, so
        # we do not collect one invalid answer per channel (Discord bans at 10,000 in 10 min).
        self._pauses: dict[Platform, datetime] = {}
        # After such a pause one notice goes first; the rest follow once it got through, so a
        # pause ending does not send every channel into the limit at once.
        self._probing: set[Platform] = set()
        self._busy: Counter[Platform] = Counter()  # sends in flight per platform
        self._unauthorized: Counter[Platform] = Counter()
        self._storms: Counter[Platform] = Counter()  # platform-wide limits in a row
        # Notices the store failed on (a full disk), and when to take them up again; those among
        # them that were sent, with their message id: they are recorded then, not sent again.
        self._cooling: dict[int, datetime] = {}
        self._unrecorded: dict[int, tuple[Notice, str | None]] = {}
        self.stats: Counter[tuple[Platform, str]] = Counter()  # (platform, result) -> count

    def wake(self) -> None:
        """Tell the worker new notices are waiting (called after each committed change)."""
        self._wake.set()

    def disabled(self, platform: Platform) -> bool:
        return self._unauthorized[platform] >= UNAUTHORIZED_LIMIT

    async def _due(
        self, limit: int, skip: Collection[int] = (), *, mark: bool = True
    ) -> list[Notice]:
        """The notices to send next, at most `limit`, without those in `skip`; with `mark`, the
        new messages among them are marked as being sent in the same unit (see `_found_or_sent`).
        """
        now = self._clock.now()
        skip = frozenset(skip)
        usable = self._usable()  # the worker's state, read on the loop, not in the unit
        sendable = self._sendable()

        async def take(tx: Transaction) -> list[Notice]:
            # Each platform's own oldest: a platform held back (a revoked token, a pause) with a
            # round's worth of channels waiting would otherwise fill every round with notices
            # that are then dropped, and the other platforms would get none. Not the notices of
            # degraded channels: they are parked until set up again.
            due: list[Notice] = []
            for platform in sorted(usable):
                due += [n for n in await tx.due_notices(now, limit, platform) if n.id not in skip]
            ready = sendable(sorted(due, key=lambda n: n.id))[:limit]
            if mark:  # here rather than in a unit of their own: one commit less per post (#7)
                for notice in ready:
                    if notice.kind in _NEW_MESSAGES and notice.sending_since is None:
                        await tx.mark_sending(notice, now)
            return ready

        # A send that failed meanwhile may have paused its platform: its notices wait (their
        # mark makes the platform be asked first, nothing more).
        return self._sendable()(await self._store.run(take))

    def _sendable(self) -> Callable[[list[Notice]], list[Notice]]:
        """A filter keeping the notices the worker may send, as the worker stands now: not to a
        platform that is paused or refuses our token, and one probe after a pause."""
        usable = self._usable()
        probes = {p: self._busy[p] > 0 for p in self._probing}  # platform -> probe out already
        return lambda notices: _one_probe_each([n for n in notices if n.platform in usable], probes)

    def _usable(self) -> set[Platform]:
        """The platforms the worker may call now: not paused, not refusing our token."""
        return {p for p in self._senders if not self.disabled(p) and not self._paused(p)}

    def paused_until(self, platform: Platform) -> datetime | None:
        """When a platform-wide wait for `platform` ends, if one is in force."""
        until = self._pauses.get(platform)
        return until if until is not None and until > self._clock.now() else None

    def _paused(self, platform: Platform) -> bool:
        return self.paused_until(platform) is not None

    async def due(self) -> list[Notice]:
        """What the next round would send (pauses and probes applied)."""
        return await self._due(self._batch, mark=False)

    async def run_once(self) -> int:
        """Send every notice due now, at most one per channel; returns how many were attempted."""
        ready = await self._due(self._batch)
        await asyncio.gather(*(self._deliver(n) for n in ready))
        return len(ready)

    async def drain(self, max_rounds: int = 1000) -> None:
        """Deliver until nothing is due now (the console, `remind` and tests use this)."""
        for _ in range(max_rounds):
            if not await self.run_once():
                return

    async def run(self, idle_poll: float = 1.0) -> None:
        """Deliver forever, each send in its own task.

        A slow send (a platform making us wait out its rate limit) holds up only its own
        channel: the next round starts whenever any send finishes or new notices are enqueued,
        and otherwise when the earliest retry comes due (or after `idle_poll` at the latest,
        for retries scheduled before a restart).
        """
        in_flight: dict[int, asyncio.Task[None]] = {}
        failures = logs.RepeatedFailure(log, "delivery round", every=FAILED_ROUNDS_LOGGED_EVERY)
        try:
            while True:
                self._wake.clear()
                await self._inflight.lull()
                try:
                    skip = in_flight.keys() | self._still_cooling()
                    ready = await self._due(self._batch + len(in_flight), skip=skip)
                except Exception as exc:  # the store failing (a full disk): tried again soon
                    failures.failed(exc)
                    ready = []
                else:
                    failures.worked()
                for notice in ready:
                    task = asyncio.create_task(self._deliver(notice), name=f"notice-{notice.id}")
                    in_flight[notice.id] = task
                    task.add_done_callback(functools.partial(self._finished, in_flight, notice.id))
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that arrives
                # as the wait ends, and the worker would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle(idle_poll)):
                        await self._wake.wait()
        finally:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)

    def _finished(
        self, in_flight: dict[int, asyncio.Task[None]], notice_id: int, task: asyncio.Task[None]
    ) -> None:
        in_flight.pop(notice_id, None)
        if not task.cancelled() and task.exception() is not None:
            # The store failed on it: it waits STORE_RETRY instead of going round at once, and
            # is logged when it starts failing, not at each try.
            if notice_id not in self._cooling:
                log.error("delivery of notice %s failed", notice_id, exc_info=task.exception())
            self._cooling[notice_id] = self._clock.now() + timedelta(seconds=STORE_RETRY)
            heapq.heappush(self._retries, self._cooling[notice_id])
            return  # its channel's next notice waits behind it
        self._cooling.pop(notice_id, None)
        self._wake.set()  # its channel's next notice may be due now

    def _still_cooling(self) -> set[int]:
        now = self._clock.now()
        return {notice for notice, until in self._cooling.items() if until > now}

    def _idle(self, idle_poll: float) -> float:
        """How long to wait when nothing wakes us: until the earliest retry we scheduled."""
        now = self._clock.now()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
        if not self._retries:
            return idle_poll
        return min(idle_poll, (self._retries[0] - now).total_seconds())

    async def _deliver(self, notice: Notice) -> None:
        self._busy[notice.platform] += 1
        try:
            await self._inflight.lull()  # an ack has a deadline, this send has none
            with logs.bind(platform=str(notice.platform), notice=notice.id):
                await self._send(notice)
        finally:
            self._busy[notice.platform] -= 1

    async def _send(self, notice: Notice) -> None:
        sender = self._senders[notice.platform]
        if notice.kind in _EDITS and not notice.message_id:
            await self._dead(notice, "the post to edit was never delivered")
            return
        if notice.id in self._unrecorded:  # sent; the store would not record it then
            # Recorded as it was sent: a post edit settles the edits queued before that send,
            # not those queued since, which the platform never got.
            notice, message_id = self._unrecorded[notice.id]
        else:
            try:
                message_id = await self._found_or_sent(sender, notice)
            except DeliveryError as exc:
                await self._failed(notice, exc)
                return
            except Exception as exc:
                log.exception("sender bug on notice %s (%s)", notice.id, notice.kind)
                # Whether the platform did it before the bug is unknown.
                error = DeliveryError(repr(exc), retryable=True, maybe_delivered=True)
                await self._failed(notice, error)
                return
            self._unauthorized[notice.platform] = 0
            self._storms[notice.platform] = 0
            self._probing.discard(notice.platform)  # it got through: the others may follow
            self.stats[notice.platform, "sent"] += 1
        now = self._clock.now()
        try:
            await self._store.run(lambda tx: tx.mark_sent(notice, message_id, now))
        except Exception:
            self._unrecorded[notice.id] = (notice, message_id)
            raise
        self._unrecorded.pop(notice.id, None)

    async def _found_or_sent(self, sender: Sender, notice: Notice) -> str | None:
        """Send `notice`. A new message was marked before its platform call (`_due`), so that
        after a crash or a timeout its resend first asks the platform whether it arrived after
        all: `sending_since` is that earlier mark, None on the first try."""
        if notice.kind in _NEW_MESSAGES and notice.sending_since is not None:
            found = await sender.find(notice)
            if found is not None:
                log.info(
                    "notice %s is on %s already (its answer was lost); not sending it again",
                    notice.id, notice.platform,
                )  # fmt: skip
                self.stats[notice.platform, "found"] += 1
                return found
        return await sender.send(notice)

    async def _failed(self, notice: Notice, exc: DeliveryError) -> None:
        if exc.unauthorized:
            self._unauthorized[notice.platform] += 1
            if self.disabled(notice.platform):
                log.critical(
                    "%s rejects our token; not calling it again until restart. "
                    "Check the token, then restart.",
                    notice.platform,
                )
        if not exc.retryable and not exc.unauthorized:
            await self._dead(notice, str(exc), channel_lost=exc.channel_lost)
            return
        # A platform that says when to come back has not refused: rate limits do not use up
        # the attempts, or a long storm would dead-letter notices it would accept afterwards.
        if notice.attempts + 1 >= MAX_ATTEMPTS and exc.retry_after is None:
            await self._dead(notice, f"gave up after {MAX_ATTEMPTS} attempts: {exc}")
            return
        delay = self._backoff(notice.attempts, exc.retry_after)
        if exc.platform_wide:
            # Limited again right after the wait it asked for (the probe was refused): wait
            # longer each time. An SDK that retries short waits itself (discord.py, 5 tries)
            # spends several invalid answers per probe, so probes must thin out in a storm.
            delay = min(MAX_DELAY, delay * 2 ** self._storms[notice.platform])
            self._storms[notice.platform] += 1
        # The resend of a message that may have arrived asks the platform first (`_found_or_sent`);
        # a sender that cannot ask says so when it resends.
        maybe_sent = notice.sending_since is not None or exc.maybe_delivered
        if exc.maybe_delivered and notice.kind in _NEW_MESSAGES | _EDITS:
            # A platform that was still working when we gave up may post it seconds later; a
            # lookup made before then finds nothing and the message would go out twice. An
            # edit made that late would land after its retry (or the next edit of the post),
            # and the older state would be what the post shows for good.
            delay = max(delay, LATE_ANSWER_WAIT)
        log.info(
            "notice %s to %s failed (%s); retrying in %.1fs%s",
            notice.id, notice.platform, exc, delay,
            ", after asking whether it arrived" if maybe_sent and notice.kind in _NEW_MESSAGES
            else "",
        )  # fmt: skip
        due = self._clock.now() + timedelta(seconds=delay)
        # Not counted either, or the first ordinary failure after a long storm would find the
        # attempts used up by the storm and give up on a notice the platform would now take.
        counted = exc.retry_after is None
        await self._store.run(
            lambda tx: tx.mark_retry(notice, due, str(exc), maybe_sent=maybe_sent, counted=counted)
        )
        heapq.heappush(self._retries, due)
        if exc.platform_wide:
            self._pauses[notice.platform] = max(due, self._pauses.get(notice.platform, due))
            self._probing.add(notice.platform)
            log.warning("%s asked us to wait %.1fs before any call", notice.platform, delay)
        self.stats[notice.platform, "retried"] += 1

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after + self._rng.uniform(0, 0.1 * retry_after + 0.05)
        ceiling = min(MAX_DELAY, BASE_DELAY * 2**attempts)
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter": spread, never zero

    async def _dead(self, notice: Notice, error: str, *, channel_lost: bool = False) -> None:
        log.warning(
            "notice %s (%s to %s %s) dead-lettered: %s",
            notice.id,
            notice.kind,
            notice.platform,
            notice.channel_id or notice.user_id,
            error,
        )
        now = self._clock.now()

        async def bury(tx: Transaction) -> bool:
            await tx.mark_dead(notice, error, now)
            if channel_lost and notice.channel_id:
                return await tx.degrade_channel(notice, error, now)
            return False

        degraded = await self._store.run(bury)
        self.stats[notice.platform, "dead"] += 1
        if degraded:
            # Once per loss: the notices after this one are parked, not tried and logged.
            log.error(
                "%s channel %s (community %s) is lost to the bot (%s); its notices are held "
                "until an admin fixes it: %s",
                notice.platform,
                notice.channel_id,
                notice.community_id,
                error,
                texts.DEGRADED_FIX,
            )


def _one_probe_each(ready: list[Notice], probes: Mapping[Platform, bool]) -> list[Notice]:
    """After a platform-wide pause, one notice of that platform (a key of `probes`) goes first,
    and none while one is out already (its value)."""
    allowed, probed = [], set()
    for notice in ready:
        if notice.platform in probes:
            if notice.platform in probed or probes[notice.platform]:
                continue
            probed.add(notice.platform)
        allowed.append(notice)
    return allowed
