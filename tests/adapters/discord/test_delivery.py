"""The outbox through DiscordSender: rate limits, refusals, nonces and DMs, against FakeDiscord."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adapters.discord import send
from adapters.discord.render import CONTENT_LIMIT
from bot.delivery import LATE_ANSWER_WAIT
from bot.model import Notice, NoticeKind, Outgoing, Platform
from tests.adapters.discord.conftest import DiscordHarness
from tests.fakes.discord_payloads import FakeUser, error_body

LINK = "https://example.com/draft"


def stat(bot: DiscordHarness, name: str) -> int:
    """A delivery worker counter, summed over platforms."""
    stats = bot.core.worker.stats
    return sum(v for k, v in stats.items() if (k[-1] if isinstance(k, tuple) else k) == name)


async def test_short_rate_limit_is_slept_by_discord_py(bot: DiscordHarness) -> None:
    """A 429 shorter than max_ratelimit_timeout: discord.py waits and retries; one post."""
    bot.fake.fail_next("POST", f"/channels/{bot.reviews}/messages", status=429, retry_after=0.05)
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    creates = bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")
    assert [c.status for c in creates] == [429, 200]
    assert len(bot.posts()) == 1


async def test_long_rate_limit_goes_back_to_the_outbox(bot: DiscordHarness) -> None:
    """A long 429 is not slept on inside discord.py: the outbox retries after it, once."""
    bot.fake.fail_next("POST", f"/channels/{bot.reviews}/messages", status=429, retry_after=45)
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    assert bot.posts() == []
    assert stat(bot, "retried") == 1
    bot.clock.advance(seconds=44)
    await bot.deliver()
    assert bot.posts() == []  # not before Discord's retry_after
    bot.clock.advance(seconds=10)
    await bot.deliver()
    assert len(bot.posts()) == 1
    creates = bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")
    assert [c.status for c in creates] == [429, 200]
    assert {c.json["nonce"] for c in creates} == {"1"}


async def test_a_post_whose_answer_was_lost_is_found_not_sent_again(
    bot: DiscordHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discord created the post but the answer was lost: the retry finds it among the channel's
    latest messages (by the request id in its embed) and records it, with no second create."""
    bot.fake.slow_next("POST", f"/channels/{bot.reviews}/messages", delay=0.3)
    await bot.slash("alice", "ask", link=LINK)
    with monkeypatch.context() as patch:
        patch.setattr(send, "CALL_TIMEOUT", 0.1)
        await bot.deliver()  # times out: retryable
    await bot.fake.wait_for(f"POST /channels/{bot.reviews}/messages")
    bot.clock.advance(seconds=LATE_ANSWER_WAIT + 5)
    await bot.deliver()
    assert len(bot.posts()) == 1
    assert len(bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")) == 1
    assert bot.fake.hits(f"GET /channels/{bot.reviews}/messages") == 1
    assert stat(bot, "found") == 1


async def test_the_search_stops_at_an_earlier_post_of_ours(bot: DiscordHarness) -> None:
    """Not there: the search skips another app's message titled like a relay post and ends at
    our post of an earlier request (a channel's posts go out in request order), reading no
    further back, although the channel has more than a page of older messages."""
    person, other_app = FakeUser(username="pat"), FakeUser(username="otherbot", bot=True)
    for n in range(120):
        await bot.fake.post_as(bot.reviews, person, {"content": f"chat {n}"})
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()  # request 1's post, ours
    title = {"embeds": [{"title": "Review request #2"}]}
    await bot.fake.post_as(bot.reviews, other_app, title)
    request = replace(await bot.core.store.run(lambda tx: tx.request(1)), id=2)  # type: ignore[arg-type]
    notice = Notice(
        id=99,
        kind=NoticeKind.RELAY_POST,
        platform=Platform.DISCORD,
        community_id=bot.guild.id,
        channel_id=bot.reviews,
        request=request,
    )

    assert await bot.adapter.sender.find(notice) is None

    assert bot.fake.hits(f"GET /channels/{bot.reviews}/messages") == 1


async def test_a_dm_whose_answer_was_lost_is_found_after_discord_forgot_its_nonce(
    bot: DiscordHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discord created the requester's DM but the answer was lost, and the retry comes after
    Discord stopped de-duplicating its nonce: it is found in the DM by its text, not sent twice."""
    bot.fake.nonce_ttl = 0  # forgotten at once: a resend would make a second DM
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    (post,) = bot.posts()
    bot.fake.slow_next("POST", "/channels/*/messages", delay=0.3)  # the DM; the edit is a PATCH
    await bot.react("bob", post["id"], "👀")
    with monkeypatch.context() as patch:
        patch.setattr(send, "CALL_TIMEOUT", 0.1)
        await bot.deliver()  # the DM times out: retryable
    dm = bot.fake.dm_channel_for(bot.user("alice"))
    await bot.fake.wait_for(f"POST /channels/{dm}/messages")
    bot.clock.advance(seconds=LATE_ANSWER_WAIT + 5)
    await bot.deliver()
    assert len(bot.dms("alice")) == 1
    assert len(bot.fake.requests_matching(f"POST /channels/{dm}/messages")) == 1
    assert stat(bot, "found") == 1


@pytest.mark.parametrize("length", [60, CONTENT_LIMIT + 500], ids=["content", "embed"])
async def test_a_digest_whose_answer_was_lost_is_found_after_discord_forgot_its_nonce(
    bot: DiscordHarness, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    """The same for channel text (the daily digest), short or long enough to go in an embed."""
    bot.fake.nonce_ttl = 0
    text = ("Waiting for a review: #1 https://example.com/draft " * 60)[:length]
    digest = Outgoing(
        kind=NoticeKind.CHANNEL_TEXT,
        platform=Platform.DISCORD,
        community_id=bot.guild.id,
        channel_id=bot.reviews,
        text=text,
    )
    await bot.core.store.run(lambda tx: tx.enqueue([digest], bot.clock.now()))
    bot.fake.slow_next("POST", f"/channels/{bot.reviews}/messages", delay=0.3)
    with monkeypatch.context() as patch:
        patch.setattr(send, "CALL_TIMEOUT", 0.1)
        await bot.deliver()
    await bot.fake.wait_for(f"POST /channels/{bot.reviews}/messages")
    bot.clock.advance(seconds=LATE_ANSWER_WAIT + 5)
    await bot.deliver()
    assert len(bot.posts()) == 1
    assert len(bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")) == 1
    assert stat(bot, "found") == 1


async def test_a_text_is_looked_for_only_from_its_first_try_on(bot: DiscordHarness) -> None:
    """Only our own message with the same text counts, dated (by Discord) no earlier than
    CLOCK_SKEW before the notice's first try: an equal text before that was another notice."""
    text = "No stale requests today."
    ours = await bot.fake.post_as(bot.reviews, bot.fake.bot, {"content": text})
    await bot.fake.post_as(bot.reviews, FakeUser(username="pat"), {"content": text})
    now = datetime.now(UTC)
    notice = Notice(
        id=7,
        kind=NoticeKind.CHANNEL_TEXT,
        platform=Platform.DISCORD,
        community_id=bot.guild.id,
        channel_id=bot.reviews,
        text=text,
        sending_since=now,
    )
    assert await bot.adapter.sender.find(notice) == ours["id"]
    later = now + send.CLOCK_SKEW + timedelta(seconds=5)
    assert await bot.adapter.sender.find(replace(notice, sending_since=later)) is None
    assert await bot.adapter.sender.find(replace(notice, text="Something else.")) is None


async def test_missing_permission_is_dead_lettered(bot: DiscordHarness) -> None:
    """403 Missing Permissions cannot heal by retrying: the notice is dead-lettered at once."""
    bot.fake.fail_next("POST", f"/channels/{bot.reviews}/messages", status=403)
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    assert stat(bot, "dead") == 1
    assert bot.posts() == []


async def test_closed_dms_are_dead_lettered(bot: DiscordHarness) -> None:
    """A member who does not accept DMs (50007): the requester's DM is dropped, the rest goes on."""
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    (post,) = bot.posts()
    bot.fake.fail_next(
        "POST",
        "/channels/*/messages",
        status=400,
        body=error_body("Cannot send messages to this user", 50007),
    )
    await bot.react("bob", post["id"], "👀")
    await bot.deliver()
    assert stat(bot, "dead") == 1
    assert bot.dms("alice") == []
    assert bot.fake.hits(f"PATCH /channels/{bot.reviews}/messages/{post['id']}") == 1


async def test_dm_opens_the_channel_once(bot: DiscordHarness) -> None:
    """DMs to one member reuse the DM channel discord.py cached after creating it."""
    await bot.slash("alice", "ask", link=LINK)
    await bot.deliver()
    (post,) = bot.posts()
    await bot.react("bob", post["id"], "👀")
    await bot.react("bob", post["id"], "👀", add=False)
    await bot.deliver()
    assert len(bot.dms("alice")) == 2
    opened = [
        r.json["recipient_id"] for r in bot.fake.requests_matching("POST /users/@me/channels")
    ]
    assert opened.count(int(bot.user("alice"))) == 1
    dm_posts = bot.fake.requests_matching(
        f"POST /channels/{bot.fake.dm_channel_for(bot.user('alice'))}/messages"
    )
    assert all(c.json["nonce"] and c.json["enforce_nonce"] for c in dm_posts)
