"""Degraded channels (F7): a channel the platform says is lost parks its notices until an admin
runs `/review setup` there again; DMs, other channels and other platforms carry on."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from bot.errors import DeliveryError
from bot.metrics import Metrics
from tests.factories import channel_text, command, direct, enqueue

LOST = DeliveryError("console post: channel_not_found", retryable=False, channel_lost=True)


async def _degraded(store) -> list[tuple[str, int]]:
    return [(d.channel_id, d.parked) for d in await store.run(lambda tx: tx.degraded_channels())]


def _statuses(tmp_path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "test.db") as raw:
        return raw.execute("SELECT text, status FROM outbox ORDER BY id").fetchall()


async def test_a_lost_channel_parks_its_notices_and_nothing_else(  # noqa: PLR0917 - fixtures
    store, clock, worker, sender, tmp_path, caplog: pytest.LogCaptureFixture
):
    """The failing notice is dead-lettered, later ones to that channel are held (not tried, not
    lost), other channels and DMs go on, and the loss is logged as an ERROR once."""
    caplog.set_level(logging.WARNING)
    await enqueue(
        store, clock.now(), channel_text("gone", "first"), channel_text("other", "elsewhere")
    )
    sender.failures.append(LOST)
    await worker.drain()
    await enqueue(
        store,
        clock.now(),
        channel_text("gone", "second"),
        channel_text("gone", "third"),
        direct("u", "hi"),
    )
    await worker.drain()

    assert [n.text for n in sender.sent] == ["elsewhere", "hi"]
    assert _statuses(tmp_path) == [
        ("first", "dead"),
        ("elsewhere", "sent"),
        ("second", "pending"),
        ("third", "pending"),
        ("hi", "sent"),
    ]
    assert await _degraded(store) == [("gone", 2)]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "console channel gone (community local) is lost" in errors[0].getMessage()
    assert "/review setup" in errors[0].getMessage()


async def test_a_permanent_error_without_channel_loss_degrades_nothing(
    store, clock, worker, sender
):
    """An ordinary permanent error (a bad body) dead-letters one notice; the channel goes on."""
    await enqueue(store, clock.now(), channel_text("c", "bad"), channel_text("c", "good"))
    sender.failures.append(DeliveryError("invalid_blocks", retryable=False))
    await worker.drain()
    assert [n.text for n in sender.sent] == ["good"]
    assert await _degraded(store) == []


async def test_a_dm_refused_as_lost_degrades_nothing(store, clock, worker, sender):
    """A DM has no channel: even a sender saying "lost" about it parks nothing."""
    await enqueue(store, clock.now(), direct("blocker", "hello"), channel_text("reviews", "post"))
    sender.failures.append(LOST)
    await worker.drain()
    assert [n.text for n in sender.sent] == ["post"]
    assert await _degraded(store) == []


async def test_parked_notices_do_not_make_the_outbox_look_stuck(store, clock, worker, sender):
    """Held notices are not due: /healthz's outbox age and the gauge ignore them."""
    metrics = Metrics(store=store, worker=worker, clock=clock)
    await enqueue(store, clock.now(), channel_text("gone", "first"), channel_text("gone", "second"))
    sender.failures.append(LOST)
    await worker.drain()
    clock.advance(hours=5)
    assert await metrics.outbox_age() == 0.0
    page = (await metrics.render()).decode()
    assert 'reviewrelay_degraded_channels{platform="console"} 1.0' in page
    assert 'reviewrelay_degraded_channels{platform="slack"} 0.0' in page
    assert "reviewrelay_outbox_parked 1.0" in page
    assert "reviewrelay_outbox_oldest_seconds 0.0" in page


async def test_setup_in_the_lost_channel_releases_what_was_held(  # noqa: PLR0917 - fixtures
    dispatcher, store, clock, worker, sender, tmp_path
):
    """`/review setup` there again clears the mark; the failed notice goes first, then the
    parked ones, in order."""
    await enqueue(
        store, clock.now(), channel_text("reviews", "first"), channel_text("reviews", "second")
    )
    sender.failures.append(LOST)
    await worker.drain()
    await enqueue(store, clock.now(), channel_text("reviews", "third"))
    await worker.drain()
    assert sender.sent == []

    reply = await dispatcher.handle(command("setup", "ada", at=clock.now(), admin=True))
    assert reply.text.endswith("The bot can post here again: 3 held notices go out now.")
    await worker.drain()

    assert [n.text for n in sender.sent] == ["first", "second", "third"]
    assert await _degraded(store) == []
    assert {status for _, status in _statuses(tmp_path)} == {"sent"}


async def test_setup_elsewhere_keeps_the_mark(dispatcher, store, clock, worker, sender):
    """Setting up a channel that was never lost says nothing of held notices and clears nothing."""
    await enqueue(store, clock.now(), channel_text("gone", "first"))
    sender.failures.append(LOST)
    await worker.drain()

    reply = await dispatcher.handle(command("setup", "ada", at=clock.now(), admin=True))
    assert "held" not in reply.text
    assert await _degraded(store) == [("gone", 0)]


async def test_a_channel_lost_again_is_marked_again(dispatcher, store, clock, worker, sender):
    """Set up before the bot was really let back in: the next failure marks it again."""
    await enqueue(
        store, clock.now(), channel_text("reviews", "first"), channel_text("reviews", "second")
    )
    sender.failures.append(LOST)
    await worker.drain()
    await dispatcher.handle(command("setup", "ada", at=clock.now(), admin=True))
    sender.failures.append(LOST)
    await worker.drain()
    assert sender.sent == []
    assert await _degraded(store) == [("reviews", 1)]
