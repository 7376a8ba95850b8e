"""Background delivery gives way to inbound events (acks have deadlines), but never stops."""

from __future__ import annotations

import asyncio

from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher, Rules
from bot.inflight import InFlight
from bot.model import Platform
from tests import factories as f
from tests.conftest import COMMUNITY


async def test_lull_returns_at_once_when_nothing_is_in_flight() -> None:
    inflight = InFlight()
    await asyncio.wait_for(inflight.lull(at_most=10), timeout=0.5)


async def test_lull_waits_for_the_last_event_to_finish() -> None:
    inflight = InFlight()
    with inflight.handling():
        with inflight.handling():
            waiting = asyncio.create_task(inflight.lull(at_most=10))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        assert not waiting.done()  # one event is still being handled
    await asyncio.wait_for(waiting, timeout=0.5)
    assert inflight.count == 0


async def test_lull_gives_up_waiting_after_at_most() -> None:
    inflight = InFlight()
    with inflight.handling():
        await asyncio.wait_for(inflight.lull(at_most=0.01), timeout=0.5)
        assert inflight.count == 1


async def test_worker_sends_only_after_the_inbound_event(store, clock, sender) -> None:
    """A notice due while a command is being handled goes out once that command is answered."""
    inflight = InFlight()
    worker = DeliveryWorker(
        store=store, clock=clock, senders={Platform.CONSOLE: sender}, inflight=inflight
    )
    await f.enqueue(store, clock.now(), f.channel_text("reviews", "relay"))
    with inflight.handling():
        running = asyncio.create_task(worker.run(idle_poll=0.01))
        await asyncio.sleep(0.1)
        assert sender.sent == []
    for _ in range(100):
        if sender.sent:
            break
        await asyncio.sleep(0.01)
    running.cancel()
    assert [n.text for n in sender.sent] == ["relay"]


async def test_dispatcher_counts_the_event_it_handles(store, clock) -> None:
    inflight = InFlight()
    seen: list[int] = []
    dispatcher = Dispatcher(
        store=store,
        clock=clock,
        rules=Rules(),
        platforms=[Platform.CONSOLE],
        on_enqueue=lambda: seen.append(inflight.count),
        inflight=inflight,
    )
    await dispatcher.connect_community(COMMUNITY)
    await dispatcher.handle(f.command("https://example.com/draft #python", at=clock.now()))
    assert seen == [1]  # still counted while its notices are handed to the worker
    assert inflight.count == 0


async def test_lull_starts_a_moment_after_the_last_event() -> None:
    """The adapter still sends its answer after the core returned: that goes first too."""
    inflight = InFlight()
    with inflight.handling():
        pass
    waiting = asyncio.create_task(inflight.lull(at_most=10))
    await asyncio.sleep(0)
    assert not waiting.done()
    await asyncio.wait_for(waiting, timeout=0.5)
