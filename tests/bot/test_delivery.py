"""The outbox worker: retries with backoff, dead letters, per-channel order, 401 cut-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from bot.delivery import (
    BASE_DELAY,
    LATE_ANSWER_WAIT,
    MAX_ATTEMPTS,
    STORE_RETRY,
    UNAUTHORIZED_LIMIT,
    DeliveryWorker,
)
from bot.errors import DeliveryError, StoreFailureError
from bot.model import NoticeKind, Outgoing, Platform
from storage.base import Store, Transaction
from tests.factories import channel_text, command, enqueue

T = TypeVar("T")


def _statuses(tmp_path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(tmp_path / "test.db") as raw:
        return raw.execute("SELECT status, attempts, last_error FROM outbox ORDER BY id").fetchall()


async def test_retryable_failure_waits_for_the_platform_hint(
    store, clock, worker, sender, tmp_path
):
    """A 429 with retry_after=30 is retried after about 30 s, not before, and then delivered
    (the 429 does not count as one of its attempts)."""
    await enqueue(store, clock.now(), channel_text("a", "hello"))
    sender.failures.append(DeliveryError("ratelimited", retryable=True, retry_after=30))
    await worker.drain()
    assert sender.sent == []
    clock.advance(seconds=29)
    await worker.drain()
    assert sender.sent == []
    clock.advance(seconds=5)
    await worker.drain()
    assert [n.text for n in sender.sent] == ["hello"]
    assert _statuses(tmp_path) == [("sent", 1, "ratelimited")]


async def test_order_holds_per_channel_while_one_is_retried(store, clock, worker, sender):
    """A later notice to the same channel waits for the earlier one; other channels go ahead."""
    await enqueue(
        store,
        clock.now(),
        channel_text("a", "first"),
        channel_text("a", "second"),
        channel_text("b", "other"),
    )
    sender.failures.append(DeliveryError("503", retryable=True))
    await worker.drain()
    assert [n.text for n in sender.sent] == ["other"]
    clock.advance(seconds=10)
    await worker.drain()
    assert [n.text for n in sender.sent] == ["other", "first", "second"]


async def test_permanent_failure_is_dead_lettered(store, clock, worker, sender, tmp_path):
    """A permanent error (channel gone) dead-letters the notice at once, with the reason."""
    await enqueue(store, clock.now(), channel_text("gone", "x"))
    sender.failures.append(DeliveryError("channel_not_found", retryable=False))
    await worker.drain()
    assert _statuses(tmp_path) == [("dead", 1, "channel_not_found")]
    assert worker.stats[Platform.CONSOLE, "dead"] == 1


async def test_gives_up_after_the_attempt_limit(store, clock, worker, sender, tmp_path):
    """A notice that keeps failing is dead-lettered after MAX_ATTEMPTS, not retried forever."""
    await enqueue(store, clock.now(), channel_text("a", "x"))
    sender.failures.extend(DeliveryError("502", retryable=True) for _ in range(MAX_ATTEMPTS))
    for _ in range(MAX_ATTEMPTS):
        await worker.drain()
        clock.advance(seconds=600)
    [(status, attempts, error)] = _statuses(tmp_path)
    assert (status, attempts) == ("dead", MAX_ATTEMPTS)
    assert error.startswith("gave up")


async def test_revoked_token_stops_calls_to_that_platform(store, clock, sender, tmp_path):
    """After a few 401s the platform is not called again; the notices stay pending, not lost."""
    other = type(sender)(Platform.SLACK)
    worker = DeliveryWorker(
        store=store, clock=clock, senders={Platform.CONSOLE: sender, Platform.SLACK: other}
    )
    await enqueue(
        store,
        clock.now(),
        *(channel_text(f"c{i}", "x") for i in range(5)),
        Outgoing(
            kind=NoticeKind.CHANNEL_TEXT,
            platform=Platform.SLACK,
            community_id="T1",
            channel_id="C1",
            text="still works",
        ),
    )
    sender.failures.extend(
        DeliveryError("401", retryable=False, unauthorized=True) for _ in range(10)
    )
    await worker.drain()
    clock.advance(seconds=600)
    await worker.drain()
    assert worker.disabled(Platform.CONSOLE)
    calls = 10 - len(sender.failures)
    assert UNAUTHORIZED_LIMIT <= calls <= 5  # one concurrent round at most, then no more calls
    assert [n.text for n in other.sent] == ["still works"]
    assert all(status == "pending" for status, _, _ in _statuses(tmp_path)[:5])


async def test_a_sender_bug_is_retried_not_fatal(store, clock, worker, sender, tmp_path):
    """An unexpected exception in a sender is logged and retried; the worker keeps going."""
    await enqueue(store, clock.now(), channel_text("a", "x"))

    async def broken(notice):
        raise KeyError("oops")

    original = sender.send
    sender.send = broken
    await worker.drain()
    sender.send = original
    clock.advance(seconds=LATE_ANSWER_WAIT + 5)  # whether the platform did it is unknown
    await worker.drain()
    assert [n.text for n in sender.sent] == ["x"]


def _sending_marks(tmp_path) -> list[tuple[str, bool]]:
    with sqlite3.connect(tmp_path / "test.db") as raw:
        rows = raw.execute("SELECT status, sending_at IS NOT NULL FROM outbox ORDER BY id")
        return [(status, bool(marked)) for status, marked in rows]


async def test_a_message_whose_answer_was_lost_is_found_not_sent_again(  # noqa: PLR0917 - fixtures
    store, clock, worker, sender, tmp_path, caplog: pytest.LogCaptureFixture
):
    """The platform took the post but its answer timed out: the retry asks the platform first,
    finds the message and records its id, instead of posting it a second time."""
    await enqueue(store, clock.now(), channel_text("a", "hello"))
    sender.lost_answers.append(DeliveryError("TimeoutError", retryable=True, maybe_delivered=True))
    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        await worker.drain()
    assert _sending_marks(tmp_path) == [("pending", True)]
    assert "after asking whether it arrived" in caplog.text

    clock.advance(minutes=1)
    await worker.drain()

    [notice] = sender.sent
    assert sender.looked_for == [notice.id]
    assert _sending_marks(tmp_path) == [("sent", True)]
    with sqlite3.connect(tmp_path / "test.db") as raw:
        assert raw.execute("SELECT message_id FROM outbox").fetchall() == [("m1",)]
    assert worker.stats[Platform.CONSOLE, "found"] == 1


async def test_a_post_the_platform_makes_after_the_call_timed_out_is_found_not_sent_again(
    store, clock, worker, sender
):
    """The platform finishes the post seconds after our call gave up: the retry waits
    LATE_ANSWER_WAIT before it looks (not the usual second), so it finds the post there."""
    await enqueue(store, clock.now(), channel_text("a", "hello"))
    send, cut_off = sender.send, []

    async def times_out(notice):
        cut_off.append(notice)
        raise DeliveryError("TimeoutError", retryable=True, maybe_delivered=True)

    sender.send = times_out
    await worker.drain()
    sender.send = send
    clock.advance(seconds=2 * BASE_DELAY)  # an ordinary retry would come by now
    await worker.drain()
    assert sender.looked_for == []

    await send(cut_off[0])  # the platform does it after all
    clock.advance(seconds=LATE_ANSWER_WAIT)
    await worker.drain()

    assert sender.looked_for == [cut_off[0].id]
    assert [n.id for n in sender.sent] == [cut_off[0].id]  # once: the late one


async def test_a_send_that_surely_did_nothing_is_sent_again_without_asking(  # noqa: PLR0917
    store, clock, dispatcher, worker, sender, tmp_path
):
    """A connection never made cannot have posted: its mark goes, and the retry just sends. An
    edit (twice is harmless) is never marked, and never looked for."""
    await dispatcher.handle(command("https://example.com/a #python", "riley", at=clock.now()))
    await worker.drain()  # the relay post, for the claim to edit
    await dispatcher.handle(command("claim 1", "sam", at=clock.now()))
    await enqueue(store, clock.now(), channel_text("b", "surely not"))
    fails = {
        NoticeKind.POST_UPDATE: DeliveryError("TimeoutError", retryable=True, maybe_delivered=True),
        NoticeKind.CHANNEL_TEXT: DeliveryError("ClientConnectorError", retryable=True),
    }
    send = sender.send

    async def fails_once(notice):
        if notice.kind in fails:
            raise fails.pop(notice.kind)
        return await send(notice)

    sender.send = fails_once
    await worker.run_once()
    with sqlite3.connect(tmp_path / "test.db") as raw:
        failed = raw.execute(
            "SELECT kind, sending_at FROM outbox WHERE status = 'pending' ORDER BY kind"
        ).fetchall()
    assert failed == [("channel_text", None), ("post_update", None)]

    clock.advance(minutes=1)
    await worker.drain()

    assert sender.looked_for == []
    assert {status for status, _ in _sending_marks(tmp_path)} == {"sent"}


async def test_a_send_cut_off_by_a_crash_is_looked_for_at_the_next_start(
    store, clock, sender, tmp_path
):
    """The process dies while the platform takes the post: the next worker finds it there."""
    await enqueue(store, clock.now(), channel_text("a", "hello"))
    taken = asyncio.Event()
    send = sender.send

    async def dies_after_the_platform_took_it(notice):
        await send(notice)
        taken.set()
        await asyncio.Event().wait()

    sender.send = dies_after_the_platform_took_it
    first = DeliveryWorker(store=store, clock=clock, senders={Platform.CONSOLE: sender})
    running = asyncio.create_task(first.run_once())
    await asyncio.wait_for(taken.wait(), 3)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    sender.send = send
    assert _sending_marks(tmp_path) == [("pending", True)]

    await DeliveryWorker(store=store, clock=clock, senders={Platform.CONSOLE: sender}).drain()

    assert len(sender.sent) == 1
    assert sender.looked_for == [sender.sent[0].id]
    assert _sending_marks(tmp_path) == [("sent", True)]


async def _until(predicate, within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the recording sender has no event to await
            await asyncio.sleep(0.01)


async def test_a_slow_channel_does_not_hold_up_the_others(store, clock, sender):
    """While one send waits out a platform's limit, notices to other channels still go out."""
    gate = asyncio.Event()
    original = sender.send

    async def send(notice):
        if notice.channel_id == "slow":
            await gate.wait()
        return await original(notice)

    sender.send = send
    worker = DeliveryWorker(store=store, clock=clock, senders={Platform.CONSOLE: sender})
    runner = asyncio.create_task(worker.run(idle_poll=30))
    try:
        await enqueue(
            store, clock.now(), channel_text("slow", "first"), channel_text("slow", "second")
        )
        await enqueue(store, clock.now(), channel_text("fast", "a"), channel_text("fast", "b"))
        worker.wake()
        await _until(lambda: [n.text for n in sender.sent] == ["a", "b"])
        gate.set()
        await _until(lambda: len(sender.sent) == 4)
        assert [n.text for n in sender.sent][2:] == ["first", "second"]
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_retry_goes_out_when_due_not_at_the_next_poll(store, sender):
    """A 429 with a short retry_after is resent after that delay, long before the idle poll."""
    from bot.ports import SystemClock

    real = SystemClock()
    worker = DeliveryWorker(store=store, clock=real, senders={Platform.CONSOLE: sender})
    sender.failures.append(DeliveryError("ratelimited", retryable=True, retry_after=0.2))
    runner = asyncio.create_task(worker.run(idle_poll=30))
    try:
        await enqueue(store, real.now(), channel_text("a", "hello"))
        worker.wake()
        await _until(lambda: len(sender.sent) == 1, within=5)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_platform_wide_limit_pauses_every_channel_of_that_platform(
    store, clock, worker, sender
):
    """After a global 429, no channel of that platform is called until the wait is over; then
    everything is delivered."""
    await enqueue(store, clock.now(), channel_text("c0", "0"))
    sender.failures.append(
        DeliveryError("global 429", retryable=True, retry_after=10, platform_wide=True)
    )
    await worker.drain()
    await enqueue(store, clock.now(), *(channel_text(f"c{i}", str(i)) for i in range(1, 4)))
    await worker.drain()
    assert sender.sent == []  # paused: not even the channels that never saw a 429
    clock.advance(seconds=12)  # the 10 s asked for, plus at most 10% and 50 ms of jitter
    await worker.drain()
    assert sorted(n.text for n in sender.sent) == ["0", "1", "2", "3"]


async def test_a_platform_still_limiting_after_its_wait_gets_longer_pauses(
    store, clock, worker, sender
):
    """The probe after a platform-wide wait is refused again: the next pause doubles (10 s, then
    20 s, then 40 s); one notice getting through ends the storm."""
    await enqueue(store, clock.now(), channel_text("c0", "0"))
    for _ in range(3):
        sender.failures.append(
            DeliveryError("global 429", retryable=True, retry_after=10, platform_wide=True)
        )
    pauses = []
    for _ in range(3):
        await worker.drain()
        until = worker.paused_until(Platform.CONSOLE)
        assert until is not None
        pauses.append((until - clock.now()).total_seconds())
        clock.advance(seconds=pauses[-1] + 1)
    for pause, base in zip(pauses, (10, 20, 40), strict=True):
        assert base <= pause <= base * 1.11  # the platform's wait, doubled, plus jitter
    await worker.drain()
    assert [n.text for n in sender.sent] == ["0"]
    sender.failures.append(
        DeliveryError("global 429", retryable=True, retry_after=10, platform_wide=True)
    )
    await enqueue(store, clock.now(), channel_text("c1", "1"))
    await worker.drain()
    until = worker.paused_until(Platform.CONSOLE)
    assert until is not None
    assert 10 <= (until - clock.now()).total_seconds() <= 11.1  # a new storm starts over


async def test_the_worker_stops_when_cancelled_just_as_it_is_woken(worker) -> None:
    """A cancel that arrives with a wake-up still stops the worker: `asyncio.wait_for` on Python
    3.11 returns normally in that case, swallowing the cancel, and the bot never shut down."""
    running = asyncio.create_task(worker.run(idle_poll=60))
    await asyncio.sleep(0.05)  # past the lull: waiting to be woken
    worker.wake()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=2)
    assert running in done
    assert running.cancelled()


class _NoSentMarks:
    """A transaction that cannot record a send: the store failing for a full disk."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> object:
        return getattr(self._tx, name)

    async def mark_sent(self, *_: object) -> None:
        raise StoreFailureError("the database failed: database or disk is full")


class _FullStore:
    """The store, but sends go unrecorded while `full`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.full = True

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        full = self.full
        return await self._store.run(lambda tx: work(_NoSentMarks(tx) if full else tx))  # type: ignore[arg-type]

    async def close(self) -> None:
        await self._store.close()


async def test_a_send_the_store_cannot_record_is_recorded_later_not_sent_again(
    store, clock, sender, tmp_path, caplog
):
    """The platform took a notice, then the store would not record it (a full disk): it is not
    sent again (the worker went round at once and sent it thousands of times a second), the
    failure is logged once, and the record is made STORE_RETRY later."""
    full = _FullStore(store)
    worker = DeliveryWorker(store=full, clock=clock, senders={Platform.CONSOLE: sender})
    reply = Outgoing(
        kind=NoticeKind.EPHEMERAL,
        platform=Platform.CONSOLE,
        community_id="local",
        channel_id="a",
        user_id="riley",
        text="Request #1 is open.",
    )
    await enqueue(store, clock.now(), reply, channel_text("a", "after it"))
    runner = asyncio.create_task(worker.run(idle_poll=0.01))
    try:
        await _until(lambda: caplog.text.count("delivery of notice 1 failed") == 1)
        with pytest.raises(TimeoutError):  # a few dozen idle rounds: nothing more goes out
            await _until(lambda: len(sender.sent) > 1, within=0.3)
        assert [n.text for n in sender.sent] == ["Request #1 is open."]
        full.full = False
        clock.advance(seconds=STORE_RETRY)
        await _until(lambda: [s for s, *_ in _statuses(tmp_path)] == ["sent", "sent"])
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert [n.text for n in sender.sent] == ["Request #1 is open.", "after it"]
    assert caplog.text.count("delivery of notice 1 failed") == 1


async def test_a_notice_that_waited_out_a_long_rate_limit_still_has_its_attempts(
    store, clock, worker, sender, tmp_path
):
    """Rate limits do not use up MAX_ATTEMPTS: a notice refused with 429 more times than that,
    then failing once with an ordinary 503, is retried, not dead-lettered (each 429 still
    counted, so the first failure after the storm gave up on a notice Slack would now take)."""
    await enqueue(store, clock.now(), channel_text("a", "hello"))
    sender.failures.extend(
        DeliveryError("ratelimited", retryable=True, retry_after=10) for _ in range(MAX_ATTEMPTS)
    )
    sender.failures.append(DeliveryError("503", retryable=True))
    for _ in range(MAX_ATTEMPTS + 2):
        await worker.drain()
        clock.advance(seconds=12)
    assert [n.text for n in sender.sent] == ["hello"]
    assert [status for status, _, _ in _statuses(tmp_path)] == ["sent"]


async def test_an_edit_the_platform_makes_after_the_call_timed_out_does_not_show_last(
    store, clock, dispatcher, worker, sender
):
    """An edit's call times out and the platform makes it seconds later; meanwhile the request
    moved on. The retry (rendering the state at send time) must not go out before the late edit
    lands, or the late one, older, is what the post shows for good: the retry waits
    LATE_ANSWER_WAIT, as a new message's does (it went out about a second later)."""
    await dispatcher.handle(command("https://example.com/a #python", "riley", at=clock.now()))
    await worker.drain()  # the relay post
    await dispatcher.handle(command("claim 1", "sam", at=clock.now()))
    send, cut_off = sender.send, []

    async def edit_times_out(notice):
        if notice.kind is NoticeKind.POST_UPDATE and not cut_off:
            cut_off.append(notice)
            raise DeliveryError("TimeoutError", retryable=True, maybe_delivered=True)
        return await send(notice)

    sender.send = edit_times_out
    await worker.drain()
    assert cut_off[0].request is not None
    assert cut_off[0].request.status == "claimed"
    await dispatcher.handle(command("done 1", "sam", at=clock.now()))
    clock.advance(seconds=2 * BASE_DELAY)  # an ordinary retry would come by now
    await worker.drain()

    await send(cut_off[0])  # the platform makes the timed-out edit after all
    clock.advance(seconds=LATE_ANSWER_WAIT)
    await worker.drain()

    edits = [n.request for n in sender.sent if n.kind is NoticeKind.POST_UPDATE]
    assert edits[-1] is not None
    assert edits[-1].status == "done"


async def test_an_edit_the_store_could_not_record_does_not_settle_later_edits(
    store, clock, dispatcher, sender
):
    """A post edit went out but the store would not record it (a full disk); before the record
    is made, the request changes again and a newer edit is queued. Recording the first must
    not settle the newer one, which the platform never got: the post would show the older
    state for good."""
    full = _FullStore(store)
    full.full = False
    worker = DeliveryWorker(store=full, clock=clock, senders={Platform.CONSOLE: sender})
    await dispatcher.handle(command("https://example.com/a #python", "riley", at=clock.now()))
    await worker.drain()  # the relay post
    await dispatcher.handle(command("claim 1", "sam", at=clock.now()))
    full.full = True
    with pytest.raises(StoreFailureError):
        await worker.run_once()  # the "claimed" edit is sent, not recorded
    full.full = False
    await dispatcher.handle(command("done 1", "sam", at=clock.now()))
    clock.advance(seconds=STORE_RETRY)
    await worker.drain()

    edits = [n.request for n in sender.sent if n.kind is NoticeKind.POST_UPDATE]
    assert edits[-1] is not None
    assert edits[-1].status == "done"


def _slack_text(text: str) -> Outgoing:
    return Outgoing(
        kind=NoticeKind.CHANNEL_TEXT,
        platform=Platform.SLACK,
        community_id="T1",
        channel_id="C1",
        text=text,
    )


async def test_a_platform_cut_off_with_a_full_batch_waiting_does_not_hold_up_the_other(
    store, clock, sender
):
    """A platform whose token was revoked keeps more channels waiting than one round takes:
    the other platform's notices still go out (the round took the oldest due notices of every
    platform and then dropped those it may not send, so it held nothing to send, forever)."""
    slack = type(sender)(Platform.SLACK)
    worker = DeliveryWorker(
        store=store, clock=clock, senders={Platform.CONSOLE: sender, Platform.SLACK: slack}, batch=5
    )
    await enqueue(store, clock.now(), *(channel_text(f"c{i}", "x") for i in range(10)))
    await enqueue(store, clock.now(), _slack_text("still works"))
    sender.failures.extend(
        DeliveryError("401", retryable=False, unauthorized=True) for _ in range(10)
    )
    for _ in range(5):
        await worker.drain()
        clock.advance(seconds=600)
    assert worker.disabled(Platform.CONSOLE)
    assert [n.text for n in slack.sent] == ["still works"]


async def test_a_platform_paused_with_a_full_batch_waiting_does_not_hold_up_the_other(
    store, clock, sender
):
    """The same while a platform waits out a platform-wide limit (an IP ban: 10 minutes)."""
    slack = type(sender)(Platform.SLACK)
    worker = DeliveryWorker(
        store=store, clock=clock, senders={Platform.CONSOLE: sender, Platform.SLACK: slack}, batch=5
    )
    await enqueue(store, clock.now(), channel_text("c0", "probe"))
    sender.failures.append(
        DeliveryError("banned", retryable=True, retry_after=600, platform_wide=True)
    )
    await worker.drain()
    await enqueue(store, clock.now(), *(channel_text(f"c{i}", "x") for i in range(1, 10)))
    await enqueue(store, clock.now(), _slack_text("still works"))
    await worker.drain()
    assert [n.text for n in slack.sent] == ["still works"]
