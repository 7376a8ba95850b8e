"""Reactions in the platform's order (F6): a change stamped before the newest applied one of the
same reaction (post, user, emoji) arrived late and changes nothing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from bot.dispatcher import Dispatcher
from bot.model import ReactionChanged, Status
from tests.factories import command, reaction


def _stamped(who: str, stamp: str | None, *, clock, added: bool = True, emoji: str = "eyes"):
    event = reaction("m1", emoji, who, at=clock.now(), added=added)
    return dataclasses.replace(event, occurred_at=None if stamp is None else Decimal(stamp))


@pytest.fixture
async def posted(dispatcher: Dispatcher, worker, clock) -> int:
    """Riley's request #1, delivered as message m1."""
    await dispatcher.handle(command("https://example.com/d #python", "riley", at=clock.now()))
    await worker.drain()
    return 1


async def _status(store, request_id: int = 1) -> tuple[Status, str | None]:
    request = await store.run(lambda tx: tx.request(request_id))
    assert request is not None
    return request.status, request.claimer.user_id if request.claimer else None


async def _handle_all(dispatcher: Dispatcher, *events: ReactionChanged) -> list[str]:
    return [(await dispatcher.handle(e)).text for e in events]


async def test_a_removal_delivered_before_its_add_wins(dispatcher, store, posted, clock):
    """👀 added then removed, delivered removal first: the late add claims nothing."""
    add = _stamped("vera", "1700000000.000100", clock=clock)
    remove = _stamped("vera", "1700000000.000200", clock=clock, added=False)
    assert await _handle_all(dispatcher, remove, add) == ["", ""]
    assert await _status(store) == (Status.OPEN, None)


async def test_an_add_delivered_before_an_earlier_removal_keeps_the_claim(
    dispatcher, store, posted, clock
):
    """👀 removed then added again, delivered add first: the late removal releases nothing."""
    remove = _stamped("vera", "1700000000.000100", clock=clock, added=False)
    add = _stamped("vera", "1700000000.000200", clock=clock)
    await _handle_all(dispatcher, add, remove)
    assert await _status(store) == (Status.CLAIMED, "vera")


async def test_a_late_event_is_recorded_as_seen(dispatcher, store, posted, clock):
    """An event ignored as late is kept as seen: its retry is a no-op too, and nobody is told."""
    remove = _stamped("vera", "1700000000.000200", clock=clock, added=False)
    add = _stamped("vera", "1700000000.000100", clock=clock)
    await _handle_all(dispatcher, remove, add, add)
    # recorded before this call
    assert await store.run(lambda tx: tx.seen_event(add.event_key, clock.now()))
    assert await _status(store) == (Status.OPEN, None)


async def test_equal_stamps_apply_in_arrival_order(dispatcher, store, posted, clock):
    """Two changes with the same stamp are not out of order: both apply, as they arrive."""
    add = _stamped("vera", "1700000000.000100", clock=clock)
    remove = _stamped("vera", "1700000000.000100", clock=clock, added=False)
    await _handle_all(dispatcher, add)
    assert await _status(store) == (Status.CLAIMED, "vera")
    await _handle_all(dispatcher, remove)
    assert await _status(store) == (Status.OPEN, None)


@pytest.mark.parametrize(
    "stamps",
    [
        ("1000.0", "999.9"),  # as text "999.9" sorts after "1000.0"
        ("1700000000.0000002", "1700000000.0000001"),  # the same float
    ],
)
async def test_stamps_compare_as_decimals(dispatcher, store, posted, clock, stamps):
    """Stamps are numbers compared exactly: not text order, not floats."""
    newer, older = stamps
    await _handle_all(
        dispatcher,
        _stamped("vera", newer, clock=clock),
        _stamped("vera", older, clock=clock, added=False),
    )
    assert await _status(store) == (Status.CLAIMED, "vera")


async def test_each_user_and_emoji_has_its_own_order(dispatcher, store, posted, clock):
    """A newer stamp of someone else's 👀, or of another emoji, does not make an event late."""
    await _handle_all(
        dispatcher,
        _stamped("sam", "1700000000.000900", clock=clock, added=False),
        _stamped("vera", "1700000000.000800", clock=clock, emoji="white_check_mark"),
        _stamped("vera", "1700000000.000100", clock=clock),
    )
    assert await _status(store) == (Status.CLAIMED, "vera")


async def test_a_refused_reaction_still_sets_the_order(dispatcher, store, posted, clock):
    """A refused add (already held) is still the newest state of that 👀: an older removal
    delivered after it releases nothing."""
    await _handle_all(
        dispatcher,
        _stamped("vera", "1700000000.000100", clock=clock),
        _stamped("vera", "1700000000.000300", clock=clock),  # refused: "You already hold"
        _stamped("vera", "1700000000.000200", clock=clock, added=False),
    )
    assert await _status(store) == (Status.CLAIMED, "vera")


async def test_unstamped_reactions_apply_in_arrival_order(dispatcher, store, posted, clock):
    """Platforms without a stamp (Discord orders by its gateway) keep arrival order."""
    await _handle_all(
        dispatcher,
        _stamped("vera", None, clock=clock, added=False),
        _stamped("vera", None, clock=clock),
    )
    assert await _status(store) == (Status.CLAIMED, "vera")
