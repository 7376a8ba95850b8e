"""Races: many claimers at once, a cancel racing claims, a reaction flapping on and off.

Valid end states come from bot/transitions.py: a claim succeeds only on an open request and only
for someone other than the requester; cancel (or `close N enough`, the same transition) succeeds
on an open or claimed request and clears the claimer; release needs the holder. So with a
requester cancelling while volunteers claim, every run ends cancelled with no claimer, and either
(a) the cancel came first: no claim succeeded, every claimer was told it is cancelled; or
(b) k >= 1 claims came first: exactly one succeeded, the k-1 after it were told who holds it, the
rest were told it is cancelled, and the hold ended as a cancelled claim.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.dispatcher import Dispatcher, Rules
from bot.model import (
    CommandReceived,
    Member,
    Notice,
    NoticeKind,
    Platform,
    ReactionChanged,
    Status,
)
from storage.base import Transaction
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import ALICE, REVIEW_CHANNEL, SlackHarness
from tests.conftest import COMMUNITY
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack
from tests.reliability.conftest import (
    Figures,
    db_path,
    percentile,
    query,
    slack_bot,
    socket_command,
)

CLAIMERS = 500
INTERLEAVINGS = int(os.environ.get("RELIABILITY_INTERLEAVINGS", "1000"))
RUNS_PER_STORE = 125
VOLUNTEERS = 20
_REQUEST_ID = re.compile(r"Request #(\d+) is open")


# --- 500 claimers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    kind: str  # "command" (a slash command), "reaction" (a reaction_added event), "direct"
    user_id: str
    name: str
    status: int
    text: str
    seconds: float


# Socket Mode answers what a command says in the envelope's ack; 500 of them share one socket.
SOCKET_ACK_WAIT = 30.0


async def _command(bot: SlackHarness, text: str, who: tuple[str, str]) -> tuple[int, str]:
    """A slash command over HTTP, or as an envelope when the bot is in Socket Mode: the HTTP
    status (200 for an envelope acked) and the reply."""
    if not bot.adapter.socket_mode:
        answer = await bot.command(text, who)
        return answer.status, answer.json()["text"] if answer.text else ""
    return 200, await socket_command(bot.slack, text, who, timeout=SOCKET_ACK_WAIT)


async def _react(bot: SlackHarness, ts: str, who: tuple[str, str]) -> int:
    """A 👀 on the relay post, over HTTP or as an envelope; the HTTP status (200 once acked)."""
    if not bot.adapter.socket_mode:
        return (await bot.react(ts, who)).status
    event = p.reaction_event(
        "reaction_added",
        user=who[0],
        reaction="eyes",
        channel=REVIEW_CHANNEL,
        ts=ts,
        item_user=p.BOT_USER_ID,
    )
    payload = p.event_callback_payload(event)
    await bot.slack.push_socket_envelope("events_api", payload, timeout=SOCKET_ACK_WAIT)
    return 200


async def _claim(bot: SlackHarness, kind: str, index: int, ts: str, gate: asyncio.Event) -> Attempt:
    user_id, name = f"U0C{index:04d}", f"claimer{index}"
    await gate.wait()
    started = time.perf_counter()
    if kind == "command":
        status, text = await _command(bot, "claim 1", (user_id, name))
    elif kind == "reaction":
        status, text = await _react(bot, ts, (user_id, name)), ""  # its reply: an ephemeral
    else:
        member = Member(
            platform=Platform.SLACK, community_id=p.TEAM_ID, user_id=user_id, display_name=name
        )
        event = CommandReceived(
            event_key=f"direct:{index}",
            member=member,
            channel_id=REVIEW_CHANNEL,
            text="claim 1",
            received_at=bot.clock.now(),
        )
        status, text = 200, (await bot.core.dispatcher.handle(event)).text
    return Attempt(kind, user_id, name, status, text, time.perf_counter() - started)


@pytest.mark.parametrize("transport", ["http", "socket"])
async def test_500_concurrent_claims_have_exactly_one_winner(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    rng: random.Random,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    """500 simultaneous claims make exactly one holder; every other claimer is told who it is.
    Commands and 👀 come over HTTP, or all as envelopes on one Socket Mode connection."""
    caplog.set_level(logging.WARNING)
    kinds = ["command"] * 250 + ["reaction"] * 150 + ["direct"] * 100
    rng.shuffle(kinds)
    socket = transport == "socket"
    overrides = {"slack_app_token": slack.app_token, "slack_signing_secret": None}
    async with slack_bot(tmp_path, slack, clock, **(overrides if socket else {})) as bot:
        assert bot.adapter.socket_mode is socket
        status, asked = await _command(bot, "https://example.com/race #python", ALICE)
        assert (status, _REQUEST_ID.match(asked) is not None) == (200, True)
        await bot.deliver()
        ts = bot.post_ts()
        gate = asyncio.Event()
        tasks = [asyncio.create_task(_claim(bot, k, i, ts, gate)) for i, k in enumerate(kinds)]
        await asyncio.sleep(0)
        started = time.perf_counter()
        gate.set()
        attempts = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        await bot.deliver()
        request = await bot.core.store.run(lambda tx: tx.request(1))

    assert request is not None
    assert request.status is Status.CLAIMED
    assert request.claimer is not None
    holder = texts.who(request.claimer)
    assert query(db_path(tmp_path), "SELECT COUNT(*) FROM claims WHERE request_id = 1") == [(1,)]
    assert {a.status for a in attempts} == {200}
    told = {a.user_id: a.text for a in attempts if a.kind != "reaction"}
    told |= {e["user"]: e["text"] for e in slack.ephemerals}
    holder_id = request.claimer.user_id
    holder_kind = next(a.kind for a in attempts if a.user_id == holder_id)
    if holder_kind == "reaction":  # a 👀 that worked gets no message: the edited post says it
        assert holder_id not in told
    else:
        assert told.pop(holder_id) == texts.CLAIMED.format(id=1, link=request.link)
    assert Counter(told.values()) == {texts.ALREADY_CLAIMED.format(id=1, name=holder): CLAIMERS - 1}
    assert "database is locked" not in caplog.text
    assert [r.levelname for r in caplog.records if r.levelno >= logging.ERROR] == []
    acks = [a.seconds for a in attempts if a.kind != "direct"]
    figures["claims"] = dict(Counter(kinds))
    figures["winner_kind"] = holder_kind
    figures["wall_s"] = elapsed
    figures[f"{transport}_ack_p50_ms"] = 1000 * percentile(acks, 0.5)
    figures[f"{transport}_ack_p99_ms"] = 1000 * percentile(acks, 0.99)
    figures["errors"] = 0


# --- a requester cancelling while 20 volunteers claim, 1,000 interleavings -------------------


def _member(user_id: str) -> Member:
    return Member(
        platform=Platform.CONSOLE, community_id="local", user_id=user_id, display_name=user_id
    )


async def _after_yields(rng: random.Random, dispatcher: Dispatcher, event: object) -> str:
    # Each racer gives way to the others a random number of times before it reaches the store,
    # so the store lock (FIFO) admits them in a seeded random order.
    for _ in range(rng.randint(0, 60)):
        await asyncio.sleep(0)
    assert isinstance(event, CommandReceived | ReactionChanged)
    return (await dispatcher.handle(event)).text


@dataclass
class Race:
    request_id: int
    link: str
    events: list[CommandReceived | ReactionChanged]


async def _mark_posted(store: SqliteStore, path: Path, request_id: int, at: datetime) -> str:
    """Record the request's relay post as delivered, as the worker does once the platform took it.

    The race needs a post to react to, not a delivery: skipping the worker keeps 1,000 runs fast.
    """
    [(notice_id,)] = query(
        path, "SELECT id FROM outbox WHERE kind = 'relay_post' AND request_id = ?", [request_id]
    )
    message_id = f"m{request_id}"

    async def work(tx: Transaction) -> None:
        notice = Notice(
            id=notice_id,
            kind=NoticeKind.RELAY_POST,
            platform=Platform.CONSOLE,
            community_id=COMMUNITY.community_id,
            channel_id=COMMUNITY.review_channel_id or "",
            request=await tx.request(request_id),
        )
        await tx.mark_sent(notice, message_id, at)

    await store.run(work)
    return message_id


async def _prepare(
    dispatcher: Dispatcher,
    store: SqliteStore,
    path: Path,
    *,
    clock: FakeClock,
    run: int,
    rng: random.Random,
) -> Race:
    """Ask for a review, post it, and line up the cancel and the 20 claims."""
    now, link = clock.now(), f"https://example.com/run-{run}"
    asked = await dispatcher.handle(
        CommandReceived(
            event_key=f"ask:{run}",
            member=_member("requester"),
            channel_id="reviews",
            text=f"{link} #python",
            received_at=now,
        )
    )
    match = _REQUEST_ID.match(asked.text)
    assert match, asked.text
    request_id = int(match.group(1))
    message_id = await _mark_posted(store, path, request_id, now)
    verb = rng.choice(["cancel", "close"])
    events: list[CommandReceived | ReactionChanged] = [
        CommandReceived(
            event_key=f"cancel:{run}",
            member=_member("requester"),
            channel_id="reviews",
            text=f"{verb} {request_id}",
            received_at=now,
        )
    ]
    for v in range(VOLUNTEERS):
        volunteer = _member(f"vol{v}")
        if rng.random() < 0.5:
            events.append(
                CommandReceived(
                    event_key=f"claim:{run}:{v}",
                    member=volunteer,
                    channel_id="reviews",
                    text=f"claim {request_id}",
                    received_at=now,
                )
            )
        else:
            events.append(
                ReactionChanged(
                    event_key=f"eyes:{run}:{v}",
                    member=volunteer,
                    channel_id="reviews",
                    message_id=message_id,
                    emoji="eyes",
                    added=True,
                    received_at=now,
                )
            )
    return Race(request_id, link, events)


def _check_race(race: Race, replies: list[str], rows: dict[str, list[tuple[Any, ...]]]) -> str:
    """Assert one run ended in a valid state; returns which one ("a" or "b")."""
    rid = race.request_id
    assert rows["request"] == [("cancelled", None)]
    cancel_reply, claim_replies = replies[0], replies[1:]
    assert cancel_reply in (texts.CANCELLED.format(id=rid), texts.CLOSED_ENOUGH.format(id=rid))
    closed = cancel_reply == texts.CLOSED_ENOUGH.format(id=rid)  # a cancel with a reason
    not_open = texts.NOT_OPEN.format(id=rid, status="closed" if closed else Status.CANCELLED)
    claimed = texts.CLAIMED.format(id=rid, link=race.link)
    won = [i for i, r in enumerate(claim_replies, start=1) if r == claimed]
    if not won:  # (a) the cancel came first
        assert claim_replies == [not_open] * VOLUNTEERS
        assert rows["claims"] == []
        assert rows["updates"] == [(1,)]
        assert rows["dms"] == []
        return "a"
    # (b) exactly one claim won, later claimers were told who holds it, then the cancel ended it
    [winner_index] = won
    winner = race.events[winner_index].member.display_name
    held = texts.ALREADY_CLAIMED.format(id=rid, name=winner)
    assert set(claim_replies) <= {claimed, held, not_open}
    assert rows["claims"] == [("cancelled",)]
    assert rows["updates"] == [(2,)]
    assert sorted(t for (t,) in rows["dms"]) == sorted(
        [
            texts.DM_CLAIMED.format(name=winner, id=rid, link=race.link),
            texts.DM_CANCELLED_CLAIMER.format(id=rid),
        ]
    )
    return "b"


def _rows(path: Path, race: Race) -> dict[str, list[tuple[Any, ...]]]:
    rid = race.request_id
    return {
        "request": query(path, "SELECT status, claimer_person FROM requests WHERE id = ?", [rid]),
        "claims": query(path, "SELECT status FROM claims WHERE request_id = ?", [rid]),
        "updates": query(
            path,
            "SELECT COUNT(*) FROM outbox WHERE request_id = ? AND kind = 'post_update'",
            [rid],
        ),
        "dms": query(
            path,
            "SELECT text FROM outbox WHERE kind = 'direct' AND text LIKE ?",
            [f"%request #{rid} %"],
        ),
    }


async def _race_batch(path: Path, runs: range, seed: str) -> tuple[Counter[str], Counter[int]]:
    """Run `runs` races on one fresh store, checking each run's end state.

    Returns how many runs ended in state (a) and (b), and at which position the cancel landed.
    """
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    positions: Counter[int] = Counter()
    clock = FakeClock()
    store = await SqliteStore.open(path)
    try:
        rules = Rules(requests_per_hour=1_000_000, reciprocity=False)
        dispatcher = Dispatcher(store=store, clock=clock, rules=rules, platforms=[Platform.CONSOLE])
        await dispatcher.connect_community(COMMUNITY)
        for run in runs:
            race = await _prepare(dispatcher, store, path, clock=clock, run=run, rng=rng)
            order: list[int] = []

            async def racer(index: int, race: Race = race, order: list[int] = order) -> str:
                reply = await _after_yields(rng, dispatcher, race.events[index])
                order.append(index)
                return reply

            replies = await asyncio.gather(*(racer(i) for i in range(len(race.events))))
            outcomes[_check_race(race, list(replies), _rows(path, race))] += 1
            positions[order.index(0)] += 1
            clock.advance(seconds=1)
    finally:
        await store.close()
    return outcomes, positions


def _race_batch_in_process(job: tuple[str, int, int, str]) -> tuple[Counter[str], Counter[int]]:
    """One batch in a worker process (its own event loop and SQLite thread)."""
    path, first, last, seed = job
    return asyncio.run(_race_batch(Path(path), range(first, last), seed))


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param(INTERLEAVINGS // 20, id="smoke"),
        pytest.param(INTERLEAVINGS, id="full", marks=pytest.mark.slow),
    ],
)
async def test_cancel_racing_20_claims_always_ends_in_a_valid_state(
    tmp_path: Path, rng: random.Random, figures: Figures, runs: int
) -> None:
    """Over 1,000 seeded interleavings of a cancel and 20 claims, every run ends validly."""
    jobs = [
        (str(tmp_path / f"race-{first}.db"), first, min(runs, first + RUNS_PER_STORE), seed)
        for first in range(0, runs, RUNS_PER_STORE)
        for seed in [f"{rng.random()}:{first}"]
    ]
    started = time.perf_counter()
    if len(jobs) == 1:
        results = [await _race_batch(Path(jobs[0][0]), range(*jobs[0][1:3]), jobs[0][3])]
    else:
        # A store's batch is bound by one core (the loop and its SQLite thread share the GIL):
        # batches run in worker processes, one per core.
        context = multiprocessing.get_context("spawn")
        workers = min(len(jobs), os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = await asyncio.gather(
                *(asyncio.wrap_future(pool.submit(_race_batch_in_process, job)) for job in jobs)
            )
    outcomes = sum((o for o, _ in results), Counter[str]())
    positions = sum((p for _, p in results), Counter[int]())
    figures["runs"] = runs
    figures["cancel_first"] = outcomes["a"]
    figures["claimed_then_cancelled"] = outcomes["b"]
    figures["distinct_cancel_positions"] = len(positions)
    figures["wall_s"] = time.perf_counter() - started
    assert sum(outcomes.values()) == runs
    # The interleavings really vary: both end states and many cancel positions occur.
    assert outcomes["a"] > 0
    assert outcomes["b"] > 0
    assert len(positions) >= 5


# --- a reaction flapping ----------------------------------------------------------------------
#
# What "the final reactions" means: Slack keys each reaction event by its event_id and stamps it
# with event_ts; it promises neither order nor single delivery. The bot applies each event_id
# once (design §7) and, per (post, user, emoji), ignores an event stamped earlier than the newest
# it applied (F6). So, delivered in order (each event also retried later by Slack) or shuffled
# with repeats, every intermediate state is valid, each event is applied at most once, and the
# end state equals the reaction Slack finally shows: the event with the latest event_ts.

FLAP_SPACING_MS = 100  # 20 events in about 2 s of (fake) time
FLAPPER = "U0FLAP"


@dataclass(frozen=True)
class Flap:
    event_id: str
    added: bool
    event_ts: str  # Slack's stamp: when it happened, whenever it is delivered


def _flaps(count: int) -> list[Flap]:
    """A volunteer toggling 👀: add, remove, add, ... `count` events in the order they happened."""
    return [Flap(f"Ev0FLAP{i:04d}", i % 2 == 0, f"1700000000.{i * 100:06d}") for i in range(count)]


def _model(arrivals: list[Flap]) -> tuple[bool, int]:
    """The state machine over arrivals: (held at the end, transitions), repeats ignored and
    events stamped before the newest applied one ignored (they arrived late)."""
    held, transitions, seen, newest = False, 0, set(), ""
    for flap in arrivals:
        if flap.event_id in seen:
            continue
        seen.add(flap.event_id)
        if flap.event_ts < newest:  # equal-width stamps: here text order is number order
            continue
        newest = flap.event_ts
        if flap.added != held:  # add claims an open request; remove releases one's own hold
            held, transitions = flap.added, transitions + 1
    return held, transitions


async def _replay(
    bot: SlackHarness, ts: str, arrivals: list[Flap], volunteer: tuple[str, str]
) -> None:
    """Send the reaction events as Slack would, checking the request after each one."""
    seen: set[str] = set()
    for flap in arrivals:
        retry = 1 if flap.event_id in seen else None
        seen.add(flap.event_id)
        answer = await bot.react(
            ts,
            volunteer,
            added=flap.added,
            event_id=flap.event_id,
            retry=retry,
            event_ts=flap.event_ts,
        )
        assert answer.status == 200
        bot.clock.advance(milliseconds=FLAP_SPACING_MS)
        request = await bot.core.store.run(lambda tx: tx.request(1))
        assert request is not None
        assert (request.status, request.claimer is None) in (
            (Status.OPEN, True),
            (Status.CLAIMED, False),
        )
        assert request.claimer is None or request.claimer.user_id == volunteer[0]


async def _flap_scenario(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, arrivals: list[Flap]
) -> tuple[Status, int, str]:
    """Ask, post, replay the arrivals; returns (status, DMs to the requester, the post's status)."""
    volunteer = (FLAPPER, "flapper")
    async with slack_bot(tmp_path, slack, clock) as bot:
        assert (await bot.command("https://example.com/flap #python", ALICE)).status == 200
        await bot.deliver()
        ts = bot.post_ts()
        await _replay(bot, ts, arrivals, volunteer)
        await bot.deliver()
        request = await bot.core.store.run(lambda tx: tx.request(1))
    assert request is not None
    dms = [c for c in slack.calls("chat.postMessage") if c.args["channel"] == ALICE[0]]
    [post] = slack.messages(REVIEW_CHANNEL)
    shown = next(
        b["elements"][0]["text"]
        for b in post["blocks"]
        if b["type"] == "context" and b["elements"][0]["text"].startswith("*Status:*")
    )
    return request.status, len(dms), shown


def _shows(status_line: str, *, held: bool) -> bool:
    """Whether the relay post's status line says what the store says."""
    if held:
        return status_line.startswith("*Status:* claimed by ")
    return status_line == "*Status:* open"


@pytest.mark.parametrize("count", [20, 21])
async def test_flapping_in_order_ends_as_the_reactions_end(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, rng: random.Random, count: int
) -> None:
    """Toggling 👀 20 (21) times in order, each also retried later: state = final reaction."""
    flaps = _flaps(count)
    arrivals = list(flaps)
    for flap in flaps:  # Slack's retries arrive later than the original, anywhere after it
        arrivals.insert(rng.randint(arrivals.index(flap) + 1, len(arrivals)), flap)
    status, dms, shown = await _flap_scenario(tmp_path, slack, clock, arrivals)

    final_added = flaps[-1].added
    assert status is (Status.CLAIMED if final_added else Status.OPEN)
    assert dms == count  # one DM per transition: every event applied exactly once
    assert _shows(shown, held=final_added)


@pytest.mark.parametrize("seed", range(5))
async def test_flapping_shuffled_ends_as_slack_shows(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures, seed: int
) -> None:
    """Shuffled 👀 toggles (with repeats): always valid, each applied once, latest stamp wins."""
    shuffler = random.Random(seed)
    flaps = _flaps(20)
    arrivals = flaps + shuffler.sample(flaps, 5)  # five of them delivered twice
    shuffler.shuffle(arrivals)
    status, dms, shown = await _flap_scenario(tmp_path, slack, clock, arrivals)

    held, transitions = _model(arrivals)
    assert held is flaps[-1].added  # the model agrees with what Slack shows
    assert status is (Status.CLAIMED if held else Status.OPEN)
    assert dms == transitions
    assert _shows(shown, held=held)
    figures["transitions"] = transitions


async def test_flapping_out_of_order_ends_as_slack_shows(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> None:
    """When the last remove arrives before the add it undid, the request still ends unclaimed."""
    flaps = _flaps(20)  # ends with a remove: Slack shows no 👀
    arrivals = [*flaps[:-2], flaps[-1], flaps[-2]]  # Slack delivers the last two swapped
    status, dms, shown = await _flap_scenario(tmp_path, slack, clock, arrivals)

    assert status is Status.OPEN
    assert dms == 18 == _model(arrivals)[1]  # the late add changed nothing and told nobody
    assert _shows(shown, held=False)
