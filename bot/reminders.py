"""The daily reminders: a digest of stale requests per community (oldest first, givers' first
under soft reciprocity), claim nudges, expiry.

Timing rules are pure functions; `Reminders.run` is the orchestration. A row per (community, local
date), written in the transaction that enqueues the digest, makes each community's digest happen
once a day across restarts and across processes; nudges and expiry run once a day for the whole
store in the default time zone. A dry run does all the work in a transaction it rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import effects, reciprocity, texts
from bot.model import Community, NoticeKind, Outgoing, Platform, Request
from bot.ports import Clock
from bot.transitions import Action, Transition, decide
from storage.base import Store, Transaction

log = logging.getLogger(__name__)

GLOBAL = "*"  # the reminder-run scope of nudges and expiry, which belong to no one community
MAX_NUDGES = 2  # after this many ignored nudges the claim goes back to the queue
SWEEP_LIMIT = 500  # per run; the rest follows the next day, keeping one run's transaction short
WEEKEND = (5, 6)
# Local dates of one moment differ by 2 days at most (UTC-12 to UTC+14); 3 leaves a margin.
MAX_ZONE_GAP = timedelta(days=3)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminderRules:
    stale_after: timedelta
    nudge_after: timedelta
    expire_after: timedelta
    business_days: bool = False
    timezone: str = "UTC"
    reminder_time: str = "09:00"
    reciprocity: bool = True  # RECIPROCITY=soft: givers' requests lead the digest


@dataclass(slots=True)
class SweepReport:
    digests: list[tuple[Community, int]] = field(default_factory=list)  # community, stale count
    skipped: list[Community] = field(default_factory=list)  # already had today's digest
    nudged: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    notices: list[Outgoing] = field(default_factory=list)
    recognitions: list[Community] = field(default_factory=list)


def local_date(now: datetime, timezone: str) -> str:
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def is_due(timezone: str, reminder_time: str, now: datetime) -> bool:
    """Whether the reminder time has come today, in that time zone."""
    hour, minute = map(int, reminder_time.split(":"))
    return now.astimezone(ZoneInfo(timezone)).time() >= time(hour, minute)


def business_age(start: datetime, end: datetime, timezone: str) -> timedelta:
    """Time between two moments, not counting Saturdays and Sundays in that time zone."""
    zone = ZoneInfo(timezone)
    total = timedelta()
    # Instants in UTC, days in the zone: two datetimes sharing one tzinfo subtract and compare
    # as wall-clock times, an hour off across a DST change on a weekday (Cairo, Gaza).
    cursor = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while cursor < end:
        local = cursor.astimezone(zone)
        next_day = datetime.combine(local.date() + timedelta(days=1), time(), zone)
        segment_end = min(next_day.astimezone(UTC), end)
        if local.weekday() not in WEEKEND:
            total += segment_end - cursor
        cursor = segment_end
    return total


def day_start(day: date, rules: ReminderRules) -> datetime:
    """The first moment of a local day in the rules' time zone, in UTC."""
    return datetime.combine(day, time(), ZoneInfo(rules.timezone)).astimezone(UTC)


def nudge_cutoff(now: datetime, rules: ReminderRules) -> datetime:
    """Claims nudged, claimed or snoozed up to this moment are due for a nudge.

    `nudge_after` before now, kept within the local day that many days back when it is whole
    days: nudges are stamped with the start of their day, and 72 hours across a DST change end
    an hour into that day (one sweep early after midnight skipped a day) or an hour before it
    (one late in the evening came a day early).
    """
    cutoff = now - rules.nudge_after
    if rules.nudge_after % timedelta(days=1):
        return cutoff
    back = now.astimezone(ZoneInfo(rules.timezone)).date() - rules.nudge_after
    first = day_start(back, rules)
    last = day_start(back + timedelta(days=1), rules) - timedelta(microseconds=1)
    return min(max(cutoff, first), last)


class _Recording:
    """A Transaction that also keeps every notice enqueued, for reports and dry runs."""

    def __init__(self, tx: Transaction, into: list[Outgoing]) -> None:
        self._tx = tx
        self._into = into

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)

    async def enqueue(self, notices: list[Outgoing], at: datetime) -> None:
        self._into.extend(notices)
        await self._tx.enqueue(notices, at)


class _DryRun(Exception):  # noqa: N818 - control flow: roll the sweep back
    def __init__(self, report: SweepReport) -> None:
        super().__init__()
        self.report = report


class Reminders:
    def __init__(
        self, *, store: Store, clock: Clock, rules: ReminderRules, platforms: Collection[Platform]
    ) -> None:
        self._store = store
        self._clock = clock
        self._rules = rules
        self._platforms = frozenset(platforms)

    async def run(self, *, only_when_due: bool = True, dry_run: bool = False) -> SweepReport:
        """One sweep. `only_when_due` waits for each reminder time (cron passes False)."""

        async def sweep(raw: Transaction) -> SweepReport:
            # The report is made in the unit: a unit may run again (SqliteStore.run).
            report = SweepReport()
            tx: Transaction = _Recording(raw, report.notices)  # type: ignore[assignment]
            await self._sweep(tx, report, only_when_due=only_when_due)
            if dry_run:
                raise _DryRun(report)
            return report

        try:
            report = await self._store.run(sweep)
        except _DryRun as dry:
            return dry.report
        for community, stale in report.digests:  # once committed: a unit may run twice
            log.info(
                "digest for %s/%s: %d stale", community.platform, community.community_id, stale
            )
        return report

    async def _sweep(self, tx: Transaction, report: SweepReport, *, only_when_due: bool) -> None:
        now = self._clock.now()
        rules = self._rules
        if not only_when_due or is_due(rules.timezone, rules.reminder_time, now):
            day = local_date(now, rules.timezone)
            if await tx.record_reminder_run(GLOBAL, GLOBAL, day, now):
                await self._expire(tx, now, report)
                await self._nudge(tx, now, report)
        for community in await tx.communities():
            if not community.review_channel_id or community.platform not in self._platforms:
                continue
            if only_when_due and not is_due(community.timezone, community.reminder_time, now):
                continue
            await self._digest(tx, community, now, report)
            await self._recognition(tx, community, now, report)

    async def _stale(
        self, tx: Transaction, now: datetime, community: Community
    ) -> tuple[list[Request], int]:
        """A digest's worth of stale requests in `reciprocity.for_volunteers` order (oldest
        first, givers' first under soft reciprocity), and how many more there are."""
        cutoff = now - self._rules.stale_after
        soft = self._rules.reciprocity
        window = reciprocity.QUEUE_WINDOW if soft else effects.DIGEST_MAX_ITEMS
        home = (community.platform, community.community_id)
        fetched = await tx.stale_requests(cutoff, limit=window, seen_from=home)
        found = fetched
        if self._rules.business_days:
            # Business age grows with calendar age, so the survivors are a prefix of the list.
            found = [
                r
                for r in fetched
                if business_age(r.created_at, now, community.timezone) >= self._rules.stale_after
            ]
        if len(found) < len(fetched) or len(fetched) < window:
            total = len(found)  # every stale request is in hand
        else:
            total = await tx.count_stale(cutoff, seen_from=home)
        ordered = await reciprocity.for_volunteers(tx, found, now, soft=soft)
        shown = ordered[: effects.DIGEST_MAX_ITEMS]
        return shown, max(0, total - len(shown))

    async def _digest(
        self, tx: Transaction, community: Community, now: datetime, report: SweepReport
    ) -> None:
        day = local_date(now, community.timezone)
        # Gated on when the last digest went out, seen in today's zone, not on the date key: a
        # community that moves its zone west after today's digest is back on a date it has no
        # key for (a second digest), and then on one whose key its old zone used (a day skipped).
        recent = (date.fromisoformat(day) - MAX_ZONE_GAP).isoformat()
        last = await tx.last_daily_run(community.platform, community.community_id, recent)
        if last is not None and local_date(last, community.timezone) >= day:
            report.skipped.append(community)
            return
        await tx.record_daily_run(community.platform, community.community_id, day, now)
        stale, more = await self._stale(tx, now, community)
        report.digests.append((community, len(stale) + more))
        if not stale:
            return
        channel = community.review_channel_id or ""
        digest_id = await tx.save_digest(
            platform=community.platform,
            community_id=community.community_id,
            local_date=day,
            channel_id=channel,
            request_ids=[r.id for r in stale],
            at=now,
        )
        await tx.enqueue(
            [
                Outgoing(
                    kind=NoticeKind.CHANNEL_TEXT,
                    platform=community.platform,
                    community_id=community.community_id,
                    channel_id=channel,
                    text=effects.digest_text(
                        stale, now, more=more, viewer=(community.platform, community.community_id)
                    ),
                    digest_id=digest_id,
                )
            ],
            now,
        )

    async def _recognition(
        self, tx: Transaction, community: Community, now: datetime, report: SweepReport
    ) -> None:
        """On the first of the month, thank last month's reviewers (communities may opt out)."""
        zone = ZoneInfo(community.timezone)
        local = now.astimezone(zone)
        if local.day != 1 or not community.recognition:
            return
        key = f"recognition-{local:%Y-%m}"
        if not await tx.record_reminder_run(community.platform, community.community_id, key, now):
            return
        this_month = datetime(local.year, local.month, 1, tzinfo=zone)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        helpers = await tx.top_helpers(last_month, this_month)
        if not helpers:
            return
        viewer = (community.platform, community.community_id)
        text = texts.RECOGNITION.format(names=reciprocity.helped_list(helpers, viewer))
        await tx.enqueue(
            [
                Outgoing(
                    kind=NoticeKind.CHANNEL_TEXT,
                    platform=community.platform,
                    community_id=community.community_id,
                    channel_id=community.review_channel_id or "",
                    text=text,
                )
            ],
            now,
        )
        report.recognitions.append(community)

    async def _system(
        self, tx: Transaction, request: Request, action: Action, now: datetime, *, on: int = 0
    ) -> bool:
        """The bot acting as an admin; `on` names the claimer whose claim alone it ends."""
        decision = decide(request, action, actor_person_id=on, is_admin=True)
        if not isinstance(decision, Transition):
            return False
        updated = await effects.apply(
            tx, request, action, decision, actor=None, now=now, platforms=self._platforms
        )
        return updated is not None

    async def _expire(self, tx: Transaction, now: datetime, report: SweepReport) -> None:
        for request in await tx.stale_requests(now - self._rules.expire_after, SWEEP_LIMIT):
            if await self._system(tx, request, Action.EXPIRE, now):
                report.expired.append(request.id)

    async def _nudge(self, tx: Transaction, now: datetime, report: SweepReport) -> None:
        # A nudge counts from the start of its day: stamped with the sweep's own moment, the next
        # day's sweep, a few seconds earlier in its minute (or a catch-up's at noon), found it
        # short of `nudge_after` by those seconds and let the next nudge or release slip a day.
        today = day_start(now.astimezone(ZoneInfo(self._rules.timezone)).date(), self._rules)
        cutoff = nudge_cutoff(now, self._rules)
        for due in await tx.claims_to_nudge(cutoff, SWEEP_LIMIT):
            request, claimer = due.request, due.claimer
            if due.nudges >= MAX_NUDGES:
                # Read again: another claim on it may have been released a moment ago.
                current = await tx.request(request.id)
                on = claimer.person_id
                if current and await self._system(tx, current, Action.RELEASE, now, on=on):
                    report.released.append(request.id)
                continue
            await tx.record_nudge(request.id, claimer.person_id, today)
            report.nudged.append(request.id)
            if claimer.platform in self._platforms:
                days = max(1, (now - due.claimed_at).days)
                await tx.enqueue(
                    [
                        effects.direct(
                            claimer, texts.NUDGE.format(id=request.id, link=request.link, days=days)
                        )
                    ],
                    now,
                )
