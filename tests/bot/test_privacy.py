"""forget-me and export-me: a person's data handed over or removed, others' records intact."""

from __future__ import annotations

import json
import sqlite3

from bot.model import NoticeKind
from tests.bot.test_reminders import reminders
from tests.factories import command


async def _say(dispatcher, clock, text, who):
    return (await dispatcher.handle(command(text, who, at=clock.now()))).text


async def test_forget_me_asks_for_confirmation_first(dispatcher, clock, tmp_path):
    """Without `confirm`, forget-me explains what it will do and deletes nothing."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    reply = await _say(dispatcher, clock, "forget-me", "vera")
    assert reply.endswith("Run /review forget-me confirm to go ahead.")
    with sqlite3.connect(tmp_path / "test.db") as raw:
        assert raw.execute("SELECT COUNT(*) FROM volunteers").fetchone()[0] == 1


async def test_forget_me_ends_what_is_open_and_anonymises(
    dispatcher, worker, sender, clock, tmp_path
):
    """Forgetting the requester cancels their open request, tells the claimer, and removes the
    link, note, name and platform id; the claimer's history stays."""
    await _say(dispatcher, clock, "https://example.com/secret-draft #python private note", "riley")
    await _say(dispatcher, clock, "claim 1", "vera")
    reply = await _say(dispatcher, clock, "forget-me confirm", "riley")
    assert reply == "Done: reviewrelay has forgotten you (1 open item ended). Take care!"
    await worker.drain()
    assert any(n.kind is NoticeKind.DIRECT and n.user_id == "vera" for n in sender.sent)
    with sqlite3.connect(tmp_path / "test.db") as raw:
        dump = "\n".join(raw.iterdump())
        claims = raw.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert "secret-draft" not in dump
    assert "private note" not in dump
    assert "'riley'" not in dump
    assert claims == 1
    again = await _say(dispatcher, clock, "mine", "riley")
    assert again == "You have no open requests or claims."


async def test_export_me_sends_the_data_by_dm(dispatcher, worker, sender, clock):
    """export-me answers at once and DMs the person everything stored about them, as JSON."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "https://example.com/a #go", "vera")
    assert await _say(dispatcher, clock, "export-me", "vera") == (
        "Your data is on its way to you as a direct message."
    )
    await worker.drain()
    [dm] = [n for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "vera"]
    data = json.loads(dm.text.split("\n", 1)[1])
    assert data["volunteer"]["topics"] == ["python"]
    assert [r["link"] for r in data["requests"]] == ["https://example.com/a"]
    assert data["identities"][0]["user_id"] == "vera"


async def test_forget_me_of_one_x2_reviewer_leaves_the_other_claim(dispatcher, clock):
    """A reviewer of an x2 request who asks to be forgotten ends their own claim only; the
    other reviewer keeps theirs."""
    await _say(dispatcher, clock, "https://example.com/d #python x2", "riley")
    await _say(dispatcher, clock, "claim 1", "vera")
    await _say(dispatcher, clock, "claim 1", "sam")
    await _say(dispatcher, clock, "forget-me confirm", "vera")
    assert (await _say(dispatcher, clock, "mine", "sam")).startswith("#1 ")
    assert await _say(dispatcher, clock, "done 1", "sam") == (
        "Thank you! Your review of request #1 is marked done."
    )


async def test_forget_me_removes_their_request_from_digests(  # noqa: PLR0917 - fixtures
    dispatcher, worker, sender, store, clock, tmp_path
):
    """A digest that listed the forgotten person's request keeps neither its link nor their name,
    neither in the stored message nor in the edit that forgetting sends."""
    await _say(dispatcher, clock, "https://example.com/secret-draft #python private note", "riley")
    clock.advance(hours=25)
    await reminders(store, clock).run()
    await worker.drain()
    sender.sent.clear()
    await _say(dispatcher, clock, "forget-me confirm", "riley")
    await worker.drain()
    edits = [n.text for n in sender.sent if n.kind is NoticeKind.TEXT_UPDATE]
    with sqlite3.connect(tmp_path / "test.db") as raw:
        stored = [t for (t,) in raw.execute("SELECT text FROM outbox WHERE digest_id IS NOT NULL")]
    assert len(edits) == 1
    for text in [*edits, *stored]:
        assert "secret-draft" not in text
        assert "riley" not in text


async def test_forget_me_removes_their_id_from_relay_post_mentions(dispatcher, clock, tmp_path):
    """A relay post that mentioned the forgotten volunteer no longer stores their platform id, and
    one still waiting to be sent will not ping them."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "volunteer python", "sam")
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")
    await _say(dispatcher, clock, "forget-me confirm", "vera")
    with sqlite3.connect(tmp_path / "test.db") as raw:
        [mentions] = raw.execute("SELECT mentions FROM outbox WHERE kind = 'relay_post'").fetchone()
    assert mentions.split() == ["sam"]
