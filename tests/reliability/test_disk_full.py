"""A full disk: SQLite answers "database or disk is full" to every write that needs a new page.

The bot's database is capped with SQLite's own `PRAGMA max_page_count` on its writer connection,
which fails a write exactly as a full disk does (SQLITE_FULL), without filling a real disk. While
it is full, every command must still get a one-sentence answer, a reaction must get a 500 (so
Slack retries it) and nothing may be half-written; the worker and the reminders keep going. Once
there is room again, the retried reaction counts once and everything waiting goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest

from adapters.slack import build_slack
from bot import app, delivery, texts
from storage import sqlite
from storage.migrate import MigrationProgress
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import ALICE, BOB, REVIEW_CHANNEL, SECRET, slack_settings
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack, sign
from tests.net import Answer, free_port
from tests.reliability.conftest import Harness, db_path, posts_by_request, query, slack_bot

SQLITE_MAX_PAGES = 4_294_967_294  # SQLite's own ceiling: the cap lifted
VOLUNTEER = ("U0VOL", "vol")
MAX_ASKS = 300  # enough to fill the pages SQLite kept free, with room to spare


async def _cap(store: SqliteStore, pages: int | None) -> None:
    """Cap the database at `pages` (None: its current size) on the store's writer connection."""
    db = store._db
    if pages is None:
        [(pages,)] = await db.execute_fetchall("PRAGMA page_count")
    await db.execute(f"PRAGMA max_page_count = {pages}")


async def _fill_pending_pages(store: SqliteStore) -> None:
    """Use up the room left in the pages of the pending notices, as a disk full to the last byte
    would: marking one "sending" (a row that grows) then needs a page the cap does not allow.
    Whether it had room before depends on where earlier rows happened to fall."""

    def fill(db: sqlite3.Connection) -> None:
        for _ in range(10_000):  # ~4 KiB pages fill in a few hundred steps
            try:
                db.execute(
                    "UPDATE outbox SET last_error = COALESCE(last_error, '') || 'full ' "
                    "WHERE status = 'pending'"
                )
            except sqlite3.OperationalError:  # SQLITE_FULL: the pages are full
                return
        pytest.fail("the pending notices' pages never filled")

    await sqlite._on_db_thread(store._db, fill)


async def _cap_pages(bot: Harness, pages: int | None) -> None:
    assert isinstance(bot.core.store, SqliteStore)
    await _cap(bot.core.store, pages)


class _Rounds(logging.Handler):
    """The delivery worker's lines about failed rounds, as it logs them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("delivery round"):
            self.records.append(record)
            self._changed.set()

    async def seen(self, count: int) -> None:
        while len(self.records) < count:
            self._changed.clear()
            await self._changed.wait()


def _text(answer_text: str) -> str:
    return str(json.loads(answer_text)["text"])


async def _ask_until_refused(bot: Harness) -> tuple[str, tuple[str, str], Answer]:
    """Ask, each time a new link from a new person, until an ask is refused: SQLite first reuses
    the pages it kept free. Returns the refused link, who asked and the answer."""
    for n in range(MAX_ASKS):
        link, who = f"https://example.com/full-{n}", (f"U0REQ{n:03d}", f"req{n}")
        answer = await bot.command(f"{link} #python", who)
        if not _text(answer.text).startswith("Request #"):
            return link, who, answer
    pytest.fail(f"{MAX_ASKS} asks fitted in a database capped at its size")


async def _worker_outlives_failed_rounds(bot: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's loop keeps going; it logs the first failed round with its traceback, then
    one line every FAILED_ROUNDS_LOGGED_EVERY rounds (here 2: rounds 2 and 4)."""
    monkeypatch.setattr(delivery, "FAILED_ROUNDS_LOGGED_EVERY", 2)
    assert isinstance(bot.core.store, SqliteStore)
    await _fill_pending_pages(bot.core.store)
    failed = _Rounds()
    logging.getLogger("bot.delivery").addHandler(failed)
    worker = asyncio.create_task(bot.core.worker.run(idle_poll=0.01))
    try:
        async with asyncio.timeout(5):
            await failed.seen(3)
        assert not worker.done()
        first, *later = failed.records[:3]
        assert first.getMessage() == (
            "delivery round failed: the database failed: database or disk is full"
        )
        # The traceback: as logged, or as text once `bot.logs` has redacted it.
        assert first.exc_info or first.exc_text
        assert not any(r.exc_info or r.exc_text for r in later)
        assert [r.getMessage() for r in later] == [
            f"delivery round still failing, {n} in a row: the database failed: "
            "database or disk is full"
            for n in (2, 4)
        ]
    finally:
        logging.getLogger("bot.delivery").removeHandler(failed)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def test_a_full_disk_answers_every_command_and_loses_nothing(
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = db_path(tmp_path)
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=1_000) as bot:
        await bot.command("volunteer python", VOLUNTEER)
        assert _text((await bot.command("https://example.com/first #python", ALICE)).text) == (
            "Request #1 is open; 1 volunteer notified."
        )
        await bot.deliver()
        post_ts = bot.post_ts()

        await _cap_pages(bot, None)
        refused_link, asker, answer = await _ask_until_refused(bot)
        assert answer.status == 200
        assert _text(answer.text) == texts.APOLOGY  # one sentence, no traceback
        assert query(path, "SELECT id FROM requests WHERE link = ?", [refused_link]) == []
        opened = query(path, "SELECT COUNT(*) FROM requests")
        # A reaction that cannot be stored answers 500: Slack retries it, with the same event id.
        assert (await bot.react(post_ts, BOB, event_id="Ev0FULL")).status == 500
        assert query(path, "SELECT status FROM requests WHERE id = 1") == [("open",)]
        # Reading still works, and the worker's loop outlives its failed rounds.
        mine = await bot.command("mine", ALICE)
        assert _text(mine.text).startswith("#1 · https://example.com/first")
        await _worker_outlives_failed_rounds(bot, monkeypatch)
        assert query(path, "SELECT COUNT(*) FROM requests") == opened

        await _cap_pages(bot, SQLITE_MAX_PAGES)
        assert (await bot.react(post_ts, BOB, event_id="Ev0FULL", retry=1)).status == 200
        again = await bot.command(f"{refused_link} #python", asker)
        assert _text(again.text).startswith("Request #")
        await bot.deliver()

    claimed = "SELECT status, claimer_person IS NOT NULL FROM requests WHERE id = 1"
    assert query(path, claimed) == [("claimed", 1)]
    [(requests,)] = query(path, "SELECT COUNT(*) FROM requests")
    assert posts_by_request(slack, REVIEW_CHANNEL) == dict.fromkeys(range(1, requests + 1), 1)
    dms = Counter(
        c.args["channel"]
        for c in slack.calls("chat.postMessage")
        if c.status == 200 and c.response.get("ok") and c.args["channel"] != REVIEW_CHANNEL
    )
    assert dms[ALICE[0]] == 1  # the requester hears of the claim once
    assert set(dms.values()) == {1}
    [(notices,)] = query(path, "SELECT COUNT(*) FROM outbox")
    assert query(path, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", notices)]
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    # The operator learns why from the log.
    assert "StoreFailureError: the database failed: database or disk is full" in caplog.text


async def test_healthz_fails_while_the_disk_is_full_and_says_why(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `bot.app.serve`: /healthz turns 503 with the store check false and the reason once
    a write fails for want of room, and stays so for FAILING_SHOWN_FOR (a minute) after the last
    such failure."""
    opened: list[SqliteStore] = []

    class Recorded(SqliteStore):  # hands the test the store serve opens, to cap it
        @classmethod
        async def open(cls, path: Path | str, *, progress: MigrationProgress | None = None) -> Self:
            store = await super().open(path, progress=progress)
            opened.append(store)
            return store

    monkeypatch.setattr(app, "SqliteStore", Recorded)
    settings = slack_settings(tmp_path, slack, http_port=free_port(), requests_per_hour=1_000)
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        app.serve(settings, [build_slack(settings, clock)], clock, started=started, stop=stop)
    )
    base = f"http://127.0.0.1:{settings.http_port}"

    async def ask(n: int) -> str:
        body = p.slash_command_body(f"https://example.com/h{n} #go", user_id=f"U0H{n:03d}")
        async with http.post(f"{base}/slack/events", data=body, headers=sign(body, SECRET)) as a:
            return _text(await a.text())

    async def health() -> tuple[int, dict[str, Any]]:
        async with http.get(f"{base}/healthz") as answer:
            return answer.status, await answer.json()

    try:
        await asyncio.wait_for(started.wait(), 5)
        async with aiohttp.ClientSession() as http:
            assert (await ask(0)).startswith("Request #1 is open")
            well = await health()
            [store] = opened
            await _cap(store, None)
            n = 1
            while (await ask(n)).startswith("Request #"):
                n += 1
                assert n < MAX_ASKS
            full = await health()
            await _cap(store, SQLITE_MAX_PAGES)
            assert (await ask(n)).startswith("Request #")
            lately = await health()  # the failure is a minute old only later: still shown
            monkeypatch.setattr(sqlite, "FAILING_SHOWN_FOR", 0.0)  # as if that minute had passed
            room = await health()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    assert well[0] == 200
    assert "store_failing" not in well[1]
    assert full[0] == 503
    assert full[1]["checks"]["store"] is False
    assert full[1]["store_failing"] == "the database failed: database or disk is full"
    assert lately[0] == 503
    assert room[0] == 200
    assert "store_failing" not in room[1]
