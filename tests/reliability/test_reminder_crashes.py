"""The daily reminders under kill -9: today's digest, nudges and expiry go out once, crash or not.

The database is seeded through the real Slack app, core and store in this process, on a FakeClock
set weeks back: requests old enough to expire today, claims nudged twice already (released
today), claims due their first nudge, a few dozen stale open requests, and fresh ones; two past
days' reminders ran on it. Everything the seeding owed is delivered to the FakeSlack before the
crashes, so what follows is today's alone.

Then `python -m bot run` (forked by test_crashes.py's zygote, with the settings of a Slack bot) is
SIGKILLed again and again: while it starts, around the sweep (the catch-up at start runs today's
reminders at once), just as Slack takes the digest, and while it delivers what the sweep queued.
Each Slack call is answered LATENCY late and Slack finishes a call whose caller died, so a kill
often lands between Slack doing the work and the bot marking it. After every kill the store is
checked as it lies on disk: whole, today's sweep in it entirely or not at all, nothing marked sent
that Slack lacks, nothing in Slack twice. After a last plain `python -m bot run` and a drain: one
digest, every nudge, release and expiry DM once, every notice sent, today's runs recorded once.

That run meets the sweep once (the first bot to get that far commits it, and later ones find the
day done), so a second test starts the same seeded morning a dozen times, the store restored each
time, and kills the bot at moments spread over the sweep: all of it in the store, or none.

The bot runs with TIMEZONE and REMINDER_TIME, which a workspace never set up takes as its own:
the zone is the Etc/GMT one where it is about noon when the test starts, so the local day cannot
end during a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.model import Platform
from tests.adapters.slack.conftest import REVIEW_CHANNEL
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import ApiCall, FakeSlack
from tests.reliability.conftest import Figures, Harness, db_path, query, slack_bot
from tests.reliability.test_crashes import Bot, Zygote, _final_run, _logs, _slack_env

DEFAULT_CRASHES = 20  # ~0.4 s each: what the default part of the suite can afford
CRASHES = int(os.environ.get("RELIABILITY_CRASHES", str(DEFAULT_CRASHES)))
# s before FakeSlack does a call's work, which it does even if the caller died meanwhile: a kill
# then leaves a message in Slack that the outbox still has as pending.
LATENCY = 0.04
SWEEP_WINDOW = 0.04  # s after auth.test: the sweep commits ~20 ms in, /healthz answers ~45 ms in
MAX_SWEEP_TRIES = 3  # kills aimed at the sweep before the test lets it commit
DIGEST_TRIES = 2  # kills aimed at the moment Slack takes the digest
DIGEST_AHEAD = 2  # ...once at most this many edits wait before it (else the wait is long)
STARTUP_EVERY = 5  # once the sweep is in, every fifth kill still lands during start-up
WAIT = 2.0  # s at most for what a kill is aimed at (a bot that has nothing more to send)
RULES: dict[str, Any] = {
    "stale_after_hours": 24,
    "claim_nudge_after_days": 3,
    "expire_after_days": 14,
    "reminder_time": "06:00",  # hours before the local noon of the run: due at once at start
    "requests_per_hour": 1_000,  # the seeding asks much per person; not what this is about
}
EXPIRING, RELEASED, NUDGED, STALE, RECENT, FRESH = 12, 4, 12, 30, 2, 3
# Few people, so that their DMs queue one after another (a person's DMs go out in order) and
# the delivery spans many kills.
ASKER = "U0ASKER"  # asked the expiring and the released requests
SLOW = ("U0SLOW1", "U0SLOW2")  # hold the released requests: nudged twice already
BUSY = ("U0BUSY1", "U0BUSY2")  # hold the requests nudged for the first time today
_STEP = timedelta(minutes=1)  # between one seeded ask and the next
_OPEN = re.compile(r"Request #(\d+) is open")
_CREATES = frozenset({"direct", "channel_text", "relay_post"})  # new messages, with metadata
_SENDS = frozenset({"chat.postMessage", "chat.update"})


def noon_zone(now: datetime) -> str:
    """The Etc/GMT zone where it is 12:xx at `now`, so a run has 11 hours before local midnight.

    The names have POSIX signs: Etc/GMT-5 is five hours ahead of UTC.
    """
    ahead = 12 - now.hour  # -11..12: Etc/GMT has them all
    return f"Etc/GMT{-ahead:+d}" if ahead else "Etc/GMT"


@dataclass
class Seeded:
    """What the seeding built, and so what today's sweep owes."""

    zone: str
    today: str  # the community's local date
    last_notice: int = 0  # the seeding's last outbox id: the rows after it are today's
    calls: int = 0  # FakeSlack calls the seeding made: those after it are today's
    requesters: dict[int, str] = field(default_factory=dict)  # request id -> user id
    expiring: list[int] = field(default_factory=list)
    released: dict[int, str] = field(default_factory=dict)  # request id -> claimer
    nudged: dict[int, str] = field(default_factory=dict)  # request id -> claimer
    stale: list[int] = field(default_factory=list)
    nudges: dict[int, int] = field(default_factory=dict)  # active claims' nudges, by request

    def owed(self) -> Counter[str]:
        """Today's outbox rows by kind: a post edit per ended state, the DMs, one digest."""
        edits = len(self.expiring) + len(self.released)
        dms = len(self.expiring) + 2 * len(self.released) + len(self.nudged)
        return Counter({"post_update": edits, "direct": dms, "channel_text": 1})


@dataclass
class Stage:
    """How far today's reminders got, as a kill left the store."""

    swept: bool = False
    pending: int = 0
    unsent: int = 0  # pending, and not in Slack either (what a restart still has to send)
    digest_next: bool = False  # the digest is not in Slack, and near the review queue's head


@dataclass
class Tally:
    """Where the kills landed: how each was aimed, and what it left behind."""

    aimed: Counter[str] = field(default_factory=Counter)
    before_healthy: int = 0
    before_sweep_committed: int = 0
    inside_the_sweep: int = 0  # killed after the server started, before the sweep committed
    with_notices_pending: int = 0
    accepted_while_pending: set[int] = field(default_factory=set)  # outbox ids
    waits_ran_out: int = 0
    # From the fork to Slack's answer to auth.test, as last seen; before any is seen, short
    # enough that the first kill lands before it on any machine (opening the store takes longer).
    start_s: float = 0.05


# --- seeding ------------------------------------------------------------------------------------


async def _ask(bot: Harness, who: str, n: int) -> int:
    link = f"https://example.com/{who.lower()}-{n} #python"
    answer = (await bot.command(link, (who, who.lower()))).json()
    found = _OPEN.match(answer["text"])
    assert found, answer
    return int(found.group(1))


async def _claim(bot: Harness, request_id: int, who: str) -> None:
    answer = (await bot.command(f"claim {request_id}", (who, who.lower()))).json()
    assert answer["text"].startswith("You claimed"), answer


async def _sweep(bot: Harness, clock: FakeClock, at: datetime) -> None:
    """A past day's reminders, delivered: its digest and nudges are history by today."""
    clock.set(at)
    report = await bot.core.reminders.run()
    assert report.digests, "the past day's sweep ran"
    await bot.deliver()


async def _seed(tmp_path: Path, slack: FakeSlack, now: datetime) -> Seeded:
    """Three weeks of history up to `now`, through the Slack app on a FakeClock, all delivered."""
    zone = noon_zone(now)
    seeded = Seeded(zone=zone, today=now.astimezone(ZoneInfo(zone)).date().isoformat())
    clock = FakeClock(now - timedelta(days=20))
    async with slack_bot(tmp_path, slack, clock, timezone=zone, **RULES) as bot:

        async def asks(who: Callable[[int], str], count: int, at: datetime) -> list[int]:
            ids = []
            for i in range(count):
                clock.set(at + i * _STEP)
                ids.append(await _ask(bot, who(i), i))
                seeded.requesters[ids[-1]] = who(i)
            return ids

        def asker(_: int) -> str:
            return ASKER

        # Past EXPIRE_AFTER_DAYS today, and not yet at the two earlier sweeps.
        seeded.expiring = await asks(asker, EXPIRING, now - timedelta(days=14, hours=2))
        for i, rid in enumerate(await asks(asker, RELEASED, now - timedelta(days=11))):
            seeded.released[rid] = SLOW[i % len(SLOW)]
            await _claim(bot, rid, seeded.released[rid])
        await _sweep(bot, clock, now - timedelta(days=7))  # the released ones' first nudge
        for i, rid in enumerate(
            await asks(lambda i: f"U0NUDGED{i}", NUDGED, now - timedelta(days=4))
        ):
            seeded.nudged[rid] = BUSY[i % len(BUSY)]
            await _claim(bot, rid, seeded.nudged[rid])
        await _sweep(bot, clock, now - timedelta(days=3, hours=1))  # and their second
        for i in range(STALE):
            clock.set(now - timedelta(days=2) + i * timedelta(minutes=30))
            seeded.stale.append(await _ask(bot, f"U0STALE{i}", i))
        for i, rid in enumerate(
            await asks(lambda i: f"U0RECENT{i}", RECENT, now - timedelta(days=1))
        ):
            await _claim(bot, rid, f"U0FAST{i}")  # a day old: not nudged yet
        await asks(lambda i: f"U0FRESH{i}", FRESH, now - timedelta(hours=2))  # not stale yet
        await bot.deliver()
    path = db_path(tmp_path)
    assert query(path, "SELECT DISTINCT status FROM outbox") == [("sent",)]
    [(seeded.last_notice,)] = query(path, "SELECT MAX(id) FROM outbox")
    seeded.nudges = dict(
        query(path, "SELECT request_id, nudges FROM claims WHERE status = 'active'")
    )
    assert {seeded.nudges[r] for r in seeded.released} == {2}
    assert {seeded.nudges[r] for r in seeded.nudged} == {0}
    seeded.calls = len(slack.calls())
    return seeded


# --- what Slack has -----------------------------------------------------------------------------


def _notice_id(call: ApiCall) -> int | None:
    """The outbox id a new message carries in its metadata (None for other calls)."""
    metadata = call.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if not isinstance(metadata, dict):
        return None
    return int(metadata["event_payload"]["notice_id"])


def _posted(slack: FakeSlack, since: int) -> list[ApiCall]:
    """Messages Slack took after call `since`."""
    return [c for c in slack.calls()[since:] if c.method == "chat.postMessage" and c.status == 200]


def _accepted(slack: FakeSlack, since: int) -> Counter[int]:
    """Messages Slack took after call `since`, by outbox id."""
    return Counter(n for c in _posted(slack, since) if (n := _notice_id(c)) is not None)


# --- the store after each kill ------------------------------------------------------------------


def _check_sweep(path: Path, seeded: Seeded, tally: Tally) -> list[tuple[Any, ...]] | None:
    """The store as a kill left it: whole, and today's sweep in it entirely or not at all.
    Returns today's outbox rows (id, kind, status, channel), None if the sweep is not in."""
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "PRAGMA foreign_key_check") == []
    runs = query(
        path,
        "SELECT platform, community_id FROM reminder_runs WHERE local_date = ?",
        [seeded.today],
    )
    today = query(
        path,
        "SELECT id, kind, status, channel_id FROM outbox WHERE id > ? ORDER BY id",
        [seeded.last_notice],
    )
    status = dict(query(path, "SELECT id, status FROM requests"))
    nudges = dict(query(path, "SELECT request_id, nudges FROM claims WHERE status = 'active'"))
    digests = query(path, "SELECT id FROM digests WHERE local_date = ?", [seeded.today])
    if not runs:
        tally.before_sweep_committed += 1
        assert today == []
        assert digests == []
        assert {status[r] for r in seeded.expiring} == {"open"}
        assert nudges == seeded.nudges
        return None
    # Nudges and expiry (the whole store's run) and the community's digest are one unit.
    assert sorted(runs) == [("*", "*"), (str(Platform.SLACK), p.TEAM_ID)]
    assert Counter(kind for _, kind, *_ in today) == seeded.owed()  # one digest, each DM once
    assert len(digests) == 1
    assert {status[r] for r in seeded.expiring} == {"expired"}
    assert {status[r] for r in seeded.released} == {"open"}
    assert not set(seeded.released) & set(nudges)  # their claims ended
    assert {nudges[r] for r in seeded.nudged} == {1}
    return today


def _check_after_kill(path: Path, seeded: Seeded, slack: FakeSlack, tally: Tally) -> Stage:
    """`_check_sweep`, and Slack against the outbox: nothing marked sent that Slack lacks,
    nothing in Slack twice. Returns how far the day got."""
    today = _check_sweep(path, seeded, tally)
    if today is None:
        return Stage()
    accepted = _accepted(slack, seeded.calls)
    assert set(accepted.values()) <= {1}, "Slack took a message twice"
    stage = Stage(swept=True)
    ahead = 0  # edits waiting before the digest in the review channel
    for notice, kind, state, channel in today:
        if state == "sent":
            assert kind not in _CREATES or accepted[notice] == 1, notice  # sent once Slack had it
            continue
        assert state == "pending", (notice, state)
        stage.pending += 1
        if accepted[notice]:
            tally.accepted_while_pending.add(notice)
        else:
            stage.unsent += 1
        if channel == REVIEW_CHANNEL and kind == "channel_text":
            stage.digest_next = not accepted[notice] and ahead <= DIGEST_AHEAD
        ahead += channel == REVIEW_CHANNEL
    tally.with_notices_pending += stage.pending > 0
    return stage


# --- one cycle: start a bot, kill it where aimed ------------------------------------------------


def _aim(cycle: int, stage: Stage, tally: Tally) -> str:
    if cycle == 0:
        return "startup"
    if not stage.swept:
        return "sweep" if tally.aimed["sweep"] < MAX_SWEEP_TRIES else "delivery"
    if stage.digest_next and tally.aimed["digest"] < DIGEST_TRIES:
        return "digest"
    if not stage.unsent:
        return "restart"  # left to a restart: lookups, or nothing at all
    return "startup" if cycle % STARTUP_EVERY == 0 else "delivery"


async def _until(done: Callable[[], bool]) -> bool:
    """Poll `done` (what FakeSlack recorded) for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


async def _digest_taken(slack: FakeSlack, posts: int) -> bool:
    """Wait for a post to the review channel after the first `posts` (of this cycle's); woken
    by FakeSlack as it records the call, before the bot has its answer, not by polling."""
    seen = len(slack.calls("chat.postMessage")) - posts
    try:
        while True:
            calls = await slack.wait_for_call("chat.postMessage", seen + 1, timeout=WAIT)
            if any(c.args.get("channel") == REVIEW_CHANNEL for c in calls[seen:]):
                return True
            seen = len(calls)
    except TimeoutError:
        return False


async def _cycle(  # noqa: PLR0917 - the parts of one cycle
    http: aiohttp.ClientSession,
    zygote: Zygote,
    slack: FakeSlack,
    rng: random.Random,
    aim: str,
    stage: Stage,
    tally: Tally,
) -> Bot:
    """Start a bot and kill it where `aim` says; returns it (its log says how far it got)."""
    bot = await zygote.fork()
    forked, mark = time.monotonic(), len(slack.calls())
    healthy = asyncio.ensure_future(bot.healthy(http))

    def since(method: str | frozenset[str], channel: str | None = None) -> int:
        return sum(
            c.method in (method if isinstance(method, frozenset) else {method})
            and channel in (None, c.args.get("channel"))
            for c in slack.calls()[mark:]
        )

    try:
        if aim == "startup":  # before Slack is even asked who we are
            await asyncio.sleep(rng.uniform(0.0, 0.9 * tally.start_s))
        elif aim == "sweep":  # the community connected, the server started, the sweep committed
            if await _until(lambda: since("auth.test") > 0):
                tally.start_s = time.monotonic() - forked
            await asyncio.sleep(rng.uniform(0.0, SWEEP_WINDOW))
        elif aim == "digest":  # as Slack takes it: before the bot can learn so and mark it
            tally.waits_ran_out += not await _digest_taken(slack, since("chat.postMessage"))
        elif aim == "delivery":  # just after Slack did a post or edit, or during the next ones
            # Lookups do not count: a restart looks for every message a kill left marked, and
            # kills counted in any calls would land in those lookups each time, before a send.
            # Before the sweep is in (aimed at it too often), the first sends follow it.
            sends = min(stage.unsent or 2, rng.randint(1, 2))
            tally.waits_ran_out += not await _until(lambda: since(_SENDS) >= sends)
            await asyncio.sleep(rng.uniform(0.0, LATENCY))
        else:  # nothing left to send: the restart's sweep must find the day done
            await healthy
            await asyncio.sleep(rng.uniform(0.0, 0.1))
    finally:
        up = healthy.done() and not healthy.cancelled() and healthy.exception() is None
        tally.before_healthy += not up
        await bot.kill()
        healthy.cancel()
        await asyncio.gather(healthy, return_exceptions=True)
        # A restart takes longer than Slack's late answers: what the killed bot left in flight
        # is done before the next bot looks for it.
        await slack.settled()
    tally.aimed[aim] += 1
    return bot


# --- the test -----------------------------------------------------------------------------------


def _env(tmp_path: Path, slack: FakeSlack, seeded: Seeded) -> dict[str, str]:
    """The Slack bot's settings (test_crashes.py's), with the reminder rules the seeding used."""
    rules = {name.upper(): str(value) for name, value in RULES.items()}
    return _slack_env(tmp_path, slack) | rules | {"TIMEZONE": seeded.zone}


def _slow_beyond_default(test: Callable[..., object]) -> Callable[..., object]:
    """The default count runs in the default part of the suite; a longer run is slow."""
    return pytest.mark.slow(test) if CRASHES > DEFAULT_CRASHES else test


@_slow_beyond_default
async def test_kill_9_sends_each_of_todays_reminders_exactly_once(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    """SIGKILLs in start-up, sweep and delivery: one digest, each DM once, the day run once."""
    started = time.perf_counter()
    path = db_path(tmp_path)
    seeded = await _seed(tmp_path, slack, datetime.now(UTC))
    seeding_s = time.perf_counter() - started
    env = _env(tmp_path, slack, seeded)
    slack.latency = LATENCY
    tally, stage = Tally(), Stage()
    zygote = await Zygote.start(tmp_path, env)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for cycle in range(CRASHES):
                aim = _aim(cycle, stage, tally)
                bot = await _cycle(http, zygote, slack, rng, aim, stage, tally)
                stage = _check_after_kill(path, seeded, slack, tally)
                if not stage.swept and _server_up(bot):
                    tally.inside_the_sweep += 1
            await zygote.stop()
            await _final_run(tmp_path, env, http)
    finally:
        await zygote.stop()
    end = _check_after_kill(path, seeded, slack, Tally())
    assert end.swept
    assert end.pending == 0
    # The kills reached what they are about: the sweep undone, and its notices cut off.
    assert tally.before_sweep_committed > 0
    assert tally.with_notices_pending > 0
    _check_end(path, seeded, slack)
    logs = _logs(tmp_path)
    assert "database is locked" not in logs
    assert "Traceback" not in logs
    kinds = dict(query(path, "SELECT id, kind FROM outbox WHERE id > ?", [seeded.last_notice]))
    found = Counter(kinds[int(n)] for n in re.findall(r"notice (\d+) is on slack already", logs))
    figures["kills"] = CRASHES
    figures["aimed_at_startup"] = tally.aimed["startup"]
    figures["aimed_at_sweep"] = tally.aimed["sweep"]
    figures["aimed_at_digest"] = tally.aimed["digest"]
    figures["aimed_at_delivery"] = tally.aimed["delivery"]
    figures["idle_restarts"] = tally.aimed["restart"]
    figures["kills_before_healthy"] = tally.before_healthy
    figures["kills_before_sweep_committed"] = tally.before_sweep_committed
    figures["kills_inside_the_sweep"] = tally.inside_the_sweep
    figures["kills_with_notices_pending"] = tally.with_notices_pending
    figures["taken_by_slack_at_a_kill"] = len(tally.accepted_while_pending)
    figures["digest_found_after_a_kill"] = found["channel_text"]
    figures["dms_found_after_a_kill"] = found["direct"]
    figures["waits_ran_out"] = tally.waits_ran_out
    figures["notices_today"] = seeded.owed().total()
    figures["zone"] = seeded.zone
    figures["seeding_s"] = seeding_s
    figures["wall_s"] = time.perf_counter() - started


def _check_end(path: Path, seeded: Seeded, slack: FakeSlack) -> None:
    """After the last run: everything delivered, each new message once, the day run once."""
    assert query(path, "SELECT DISTINCT status FROM outbox") == [("sent",)]  # none pending, dead
    runs = query(
        path,
        "SELECT platform, community_id FROM reminder_runs WHERE local_date = ?",
        [seeded.today],
    )
    assert sorted(runs) == [("*", "*"), (str(Platform.SLACK), p.TEAM_ID)]
    creates = [
        i
        for i, kind in query(path, "SELECT id, kind FROM outbox WHERE id > ?", [seeded.last_notice])
        if kind in _CREATES
    ]
    # Every new message of the day is in Slack exactly once, and nothing else new is.
    posted = _posted(slack, seeded.calls)
    assert _accepted(slack, seeded.calls) == Counter(creates)
    assert len(posted) == len(creates)
    stale = len(seeded.stale) + len(seeded.released)  # released today: open, and old
    digests = [c for c in posted if c.args["channel"] == REVIEW_CHANNEL]
    assert len(digests) == 1
    assert digests[0].args["text"].startswith(f"Waiting for a reviewer ({stale}):")
    shown = [
        m
        for m in slack.messages(REVIEW_CHANNEL)
        if m.get("text", "").startswith("Waiting for a reviewer")
    ]
    assert len(shown) == 3  # the two past days' digests and today's
    dms = Counter(
        (c.args["channel"], int(m.group(1)), _dm_kind(c.args["text"]))
        for c in posted
        if c.args["channel"] != REVIEW_CHANNEL and (m := re.search(r"#(\d+)", c.args["text"]))
    )
    assert dms == Counter(
        [(who, rid, "nudge") for rid, who in seeded.nudged.items()]
        + [(seeded.requesters[rid], rid, "expired") for rid in seeded.expiring]
        + [(who, rid, "went back") for rid, who in seeded.released.items()]
        + [(seeded.requesters[rid], rid, "open again") for rid in seeded.released]
    )
    # Each ended request's relay post shows its state: the edits landed.
    status = {
        int(m.group(1)): _status(post)
        for post in slack.messages(REVIEW_CHANNEL)
        if (m := re.match(r"Review request #(\d+) ", post.get("text", "")))
    }
    assert {status[r] for r in seeded.expiring} == {"expired"}
    assert {status[r] for r in seeded.released} == {"open"}


def _dm_kind(text: str) -> str:
    kinds = {
        "Still on it?": "nudge",
        "expired after": "expired",
        "went back to the queue": "went back",
        "is open again": "open again",
    }
    return next((kind for words, kind in kinds.items() if words in text), text)


def _status(post: dict[str, Any]) -> str:
    """What a relay post's blocks say after "*Status:*"."""
    for block in post.get("blocks", []):
        for element in block.get("elements", []):
            text = str(element.get("text", ""))
            if text.startswith("*Status:* "):
                return text.removeprefix("*Status:* ")
    return ""


# --- the sweep alone, killed across it ---------------------------------------------------------

SWEEP_KILLS = 12
SWEEP_SPAN = 1.5  # times the sweep's commit after auth.test, as a first start measures it


def _restore(snapshot: Path, path: Path) -> None:
    """Put the seeded database back, as a stopped bot would find it (no WAL of a later run)."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(snapshot, path)


async def test_a_kill_anywhere_in_the_sweep_leaves_all_of_it_or_none(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    """The same morning again and again: the seeded store restored before each start, the bot
    killed at moments spread over the SWEEP_SPAN after auth.test. The main test meets the
    sweep once, when the first bot that gets that far commits it; here every kill meets it.
    Each leaves the whole sweep (runs, state changes, every notice) or nothing of it."""
    started = time.perf_counter()
    path = db_path(tmp_path)
    seeded = await _seed(tmp_path, slack, datetime.now(UTC))
    snapshot = tmp_path / "seeded.db"
    with sqlite3.connect(path) as source, sqlite3.connect(snapshot) as copy:
        source.backup(copy)
    # Slack takes nothing: a later cycle's store knows nothing of an earlier cycle's sends.
    for method in _SENDS | {"conversations.open", "conversations.history"}:
        slack.fail_next(method, status=500, times=1_000_000)
    tally = Tally()
    zygote = await Zygote.start(tmp_path, _env(tmp_path, slack, seeded))
    try:
        commit = await _sweep_commit(zygote, slack, path, seeded)
        for cycle in range(SWEEP_KILLS):
            _restore(snapshot, path)
            bot = await _identified(zygote, slack)
            # Stratified: each kill in its own slice of the span, so all of it is covered.
            await asyncio.sleep(SWEEP_SPAN * commit * (cycle + rng.random()) / SWEEP_KILLS)
            await bot.kill()
            await slack.settled()
            if _check_sweep(path, seeded, tally) is None and _server_up(bot):
                tally.inside_the_sweep += 1
    finally:
        await zygote.stop()
    swept = SWEEP_KILLS - tally.before_sweep_committed
    assert 0 < swept < SWEEP_KILLS, "the kills fell on both sides of the commit"
    figures["kills"] = SWEEP_KILLS
    figures["commit_after_auth_test_ms"] = commit * 1000
    figures["kills_before_the_server_started"] = (
        tally.before_sweep_committed - tally.inside_the_sweep
    )
    figures["kills_with_the_server_up_and_the_sweep_not_in"] = tally.inside_the_sweep
    figures["kills_after_the_sweep_committed"] = swept
    figures["wall_s"] = time.perf_counter() - started


async def _identified(zygote: Zygote, slack: FakeSlack) -> Bot:
    """A new bot, once Slack has answered its auth.test."""
    identified = len(slack.calls("auth.test")) + 1
    bot = await zygote.fork()
    await slack.wait_for_call("auth.test", identified, timeout=10)
    return bot


async def _sweep_commit(zygote: Zygote, slack: FakeSlack, path: Path, seeded: Seeded) -> float:
    """Seconds from auth.test's answer to the sweep's commit, in a start left to run that far
    (a busy machine takes longer: the kills spread over what this one takes)."""
    bot = await _identified(zygote, slack)
    answered = time.monotonic()
    try:
        while not query(path, "SELECT 1 FROM reminder_runs WHERE local_date = ?", [seeded.today]):
            assert time.monotonic() - answered < 10, "the sweep never committed"
            await asyncio.sleep(0.001)
        return time.monotonic() - answered
    finally:
        await bot.kill()
        await slack.settled()


def _server_up(bot: Bot) -> bool:
    """The daily task starts its sweep as soon as the server is up."""
    return "HTTP server listening" in bot.log.read_text(errors="replace")
