"""A review channel Discord closes to the bot (F7), through discord.py against FakeDiscord: its
notices are held until `/review setup` runs there again; closed DMs degrade nothing."""

from __future__ import annotations

import logging

import pytest

from tests.adapters.discord.conftest import DiscordHarness
from tests.fakes import discord_payloads as p

LINK = "https://example.com/draft"


async def _degraded(bot: DiscordHarness) -> list[tuple[str, int]]:
    channels = await bot.core.store.run(lambda tx: tx.degraded_channels())
    return [(d.channel_id, d.parked) for d in channels]


def _creates(bot: DiscordHarness) -> int:
    return len(bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages"))


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, p.MISSING_PERMISSIONS),
        (403, p.MISSING_ACCESS),
        (404, p.UNKNOWN_CHANNEL),
    ],
)
async def test_a_lost_review_channel_holds_its_posts_until_setup(
    bot: DiscordHarness, caplog: pytest.LogCaptureFixture, status: int, body: p.JSON
) -> None:
    """After 403/404 on the review channel, later posts are not tried; setup there releases
    them (the one that failed first), and they are posted in order."""
    caplog.set_level(logging.WARNING)
    bot.fake.fail_next("POST", f"/channels/{bot.reviews}/messages", status=status, body=body)
    await bot.slash("alice", "ask", link=f"{LINK}/1")
    await bot.deliver()
    await bot.slash("bob", "ask", link=f"{LINK}/2")
    await bot.slash("carol", "ask", link=f"{LINK}/3")
    await bot.deliver()

    assert _creates(bot) == 1  # only the call that found out
    assert await _degraded(bot) == [(bot.reviews, 2)]
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    done = await bot.slash("admin", "setup")
    assert done.data is not None
    assert "3 held notices go out now" in done.data["content"]
    await bot.deliver()

    assert await _degraded(bot) == []
    titles = [m["embeds"][0]["title"] for m in bot.posts()]
    assert titles == [f"Review request #{i}" for i in (1, 2, 3)]


async def test_a_member_who_blocks_dms_degrades_nothing(bot: DiscordHarness) -> None:
    """A 403 on a DM (50007, or even Missing Access) drops that DM; the channel goes on."""
    await bot.slash("alice", "ask", link=f"{LINK}/1")
    await bot.deliver()
    (post,) = bot.posts()
    bot.fake.fail_next(
        "POST",
        "/channels/*/messages",
        status=403,
        body=p.error_body("Cannot send messages to this user", 50007),
    )
    await bot.react("bob", post["id"], "👀")
    await bot.deliver()
    await bot.slash("carol", "ask", link=f"{LINK}/2")
    await bot.deliver()

    assert bot.dms("alice") == []
    assert await _degraded(bot) == []
    assert len(bot.posts()) == 2
