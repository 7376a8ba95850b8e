"""One platform down, or the bot killed mid-delivery: everything acknowledged is delivered later,
once per post and in order per channel."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from bot.model import Notice
from bot.ports import Sender
from tests.scenarios.conftest import (
    ALICE,
    CAROL,
    SLACK_REVIEWS,
    WAIT,
    BothPlatforms,
    discord_status,
    slack_status,
)

LINK = "https://example.com/draft"
FAILED_ATTEMPTS = 3  # Slack answers 503 this many times before it is back
POST_ID = re.compile(r"Review request #(\d+) ")


def slack_request_ids(bot: BothPlatforms) -> list[int]:
    """The request ids of the messages in Slack's review channel, oldest first."""
    found = [POST_ID.match(str(m.get("text", ""))) for m in bot.slack.messages(SLACK_REVIEWS)]
    return [int(m.group(1)) for m in found if m]


def discord_titles(bot: BothPlatforms) -> list[str]:
    return [m["embeds"][0]["title"] for m in bot.discord_posts()]


class CrashAfterSend:
    """A Sender whose platform accepts the notice; then the process "dies" before it can record
    that (it hangs until `serve` is stopped and its worker cancelled)."""

    def __init__(self, inner: Sender) -> None:
        self.platform = inner.platform
        self._inner = inner
        self.accepted = asyncio.Event()

    async def send(self, notice: Notice) -> str | None:
        message_id = await self._inner.send(notice)
        self.accepted.set()
        await asyncio.Event().wait()
        return message_id

    async def find(self, notice: Notice) -> str | None:
        return await self._inner.find(notice)


def crash_after_send(crashing: list[CrashAfterSend]) -> Callable[[Sender], Sender]:
    """A sender wrapper for `serving`: each sender it wraps crashes after its first send, and
    is kept in `crashing`."""

    def wrap(sender: Sender) -> Sender:
        crashing.append(CrashAfterSend(sender))
        return crashing[-1]

    return wrap


async def test_slack_outage_delays_posts_then_delivers_each_once_in_order(
    both_platforms: BothPlatforms,
) -> None:
    """While Slack answers 503, Discord requests still post on Discord; once Slack is back, each
    Slack post arrives exactly once, in order, showing the request as it is by then."""
    bot = both_platforms
    bot.slack.fail_next("*", status=503, times=FAILED_ATTEMPTS)
    for n in (1, 2, 3):
        asked = await bot.discord_command("alice", "ask", link=f"{LINK}/{n}", topics="python")
        assert asked.data is not None
        assert asked.data["content"].startswith(f"Request #{n} is open")
    await bot.settle()
    (_, second, _) = [m["id"] for m in bot.discord_posts()]
    await bot.discord_react("bob", second, "👀")  # a claim while Slack is still down
    for _ in range(FAILED_ATTEMPTS - 1):
        bot.clock.advance(minutes=5)  # every retry is due after 5 minutes, and still fails
        await bot.settle()

    assert discord_titles(bot) == [f"Review request #{n}" for n in (1, 2, 3)]
    assert discord_status(bot.discord.message(second)) == "claimed by bob"
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [503] * FAILED_ATTEMPTS
    assert bot.slack.messages(SLACK_REVIEWS) == []

    bot.clock.advance(minutes=5)
    await bot.settle()

    statuses = [c.status for c in bot.slack.calls("chat.postMessage")]
    assert statuses == [503] * FAILED_ATTEMPTS + [200] * 3
    assert slack_request_ids(bot) == [1, 2, 3]
    (_, post_of_second, _) = bot.slack_posts()
    assert slack_status(post_of_second).startswith("claimed by bob")  # rendered when sent
    assert bot.rows("SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_restart_delivers_what_a_crash_left_unsent_without_duplicates(
    platforms: BothPlatforms,
) -> None:
    """Requests acknowledged before a crash reach both platforms after a restart: Slack once each,
    and Discord once each, though Discord forgot the first attempt's nonce meanwhile ("the past
    few minutes"): the post is found among the channel's latest messages."""
    bot = platforms
    bot.discord.nonce_ttl = 120.0
    bot.discord.nonce_clock = lambda: bot.clock.now().timestamp()
    bot.slack.fail_next("chat.postMessage", status=503)
    crashing: list[CrashAfterSend] = []

    async with bot.serving(wrap_discord_sender=crash_after_send(crashing)):
        on_slack = await bot.slack_command(f"{LINK}/1 #python")
        on_discord = await bot.discord_command("bob", "ask", link=f"{LINK}/2", topics="python")
        await asyncio.wait_for(crashing[0].accepted.wait(), WAIT)
        await bot.slack.wait_for_call("chat.postMessage")
    # The bot is gone: both requests were acknowledged, neither is recorded as delivered anywhere.
    assert on_slack.json()["text"].startswith("Request #1 is open")
    assert on_discord.data is not None
    assert on_discord.data["content"].startswith("Request #2 is open")
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [503]
    assert discord_titles(bot) == ["Review request #1"]  # Discord has it; the outbox does not
    assert bot.rows("SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("pending", 4)]

    bot.clock.advance(minutes=5)  # past the Slack retry's due time
    async with bot.serving():
        await bot.settle()
        assert discord_titles(bot) == ["Review request #1", "Review request #2"]
        assert slack_request_ids(bot) == [1, 2]
        first = bot.discord_posts()[0]["id"]
        await bot.discord_react("bob", first, "👀")  # the post found again is the one edited
        await bot.settle()

    creates = bot.discord_post_creates()
    assert len(creates) == 2  # one per request: #1 was found, not sent again
    assert bot.discord.hits(f"GET /channels/{bot.reviews}/messages") == 1
    assert discord_status(bot.discord.message(first)) == "claimed by bob"
    assert bot.discord.hits(f"PATCH /channels/{bot.reviews}/messages/*") == 1
    assert [c.status for c in bot.slack.calls("chat.postMessage")][:3] == [503, 200, 200]
    assert bot.rows("SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_a_slack_post_made_just_before_a_crash_is_found_not_posted_again(
    platforms: BothPlatforms,
) -> None:
    """Slack took the relay post, then the bot died before recording it: after the restart the
    worker finds the post in the channel's history by its metadata, records its ts, and posts
    nothing twice; a 👀 on that post claims the request and edits that very post."""
    bot = platforms
    crashing: list[CrashAfterSend] = []

    async with bot.serving(wrap_slack_sender=crash_after_send(crashing)):
        asked = await bot.slack_command(f"{LINK}/1 #python")
        await asyncio.wait_for(crashing[0].accepted.wait(), WAIT)
    assert asked.json()["text"].startswith("Request #1 is open")
    [post] = bot.slack.messages(SLACK_REVIEWS)
    assert bot.rows("SELECT COUNT(*) FROM relay_posts WHERE platform = 'slack'") == [(0,)]

    async with bot.serving():
        await bot.settle()
        assert bot.rows("SELECT message_id FROM relay_posts WHERE platform = 'slack'") == [
            (post["ts"],)
        ]
        await bot.slack_react(post["ts"], CAROL)
        await bot.settle()

    assert slack_request_ids(bot) == [1]
    assert [c.status for c in bot.slack.calls("chat.postMessage")][:1] == [200]
    [history] = bot.slack.calls("conversations.history")
    assert history.args["include_all_metadata"] in ("1", "true")
    [edited] = bot.slack.messages(SLACK_REVIEWS)
    assert edited["ts"] == post["ts"]
    assert "claimed by carol" in str(edited["blocks"])
    assert bot.rows("SELECT DISTINCT status FROM outbox") == [("sent",)]


async def test_reaction_on_discord_while_the_bot_was_down_reaches_slack_after_restart(
    platforms: BothPlatforms,
) -> None:
    """A 👀 added on Discord while the bot was stopped claims at the next start, and the Slack post
    and the Slack requester hear of it."""
    bot = platforms
    async with bot.serving():
        await bot.slack_command(f"{LINK} #python")
        await bot.settle()
    (message,) = bot.discord_posts()
    await bot.discord_reaction("bob", message["id"])  # nobody is listening
    handled = len(bot.probe.handled)

    async with bot.serving():
        await bot.probe.wait_handled(handled + 1)  # reconcile feeds the core the missed 👀
        await bot.settle()

    (slack_post,) = bot.slack_posts()
    assert slack_status(bot.slack_updates(str(slack_post.response["ts"]))[-1]).startswith(
        "claimed by bob"
    )
    assert bot.slack_dms(ALICE[0]) == [
        f"bob · Discord: Reviewers claimed your request #1 ({LINK})."
    ]


async def test_slack_down_at_start_does_not_keep_discord_down(platforms: BothPlatforms) -> None:
    """A Slack outage while the bot starts leaves Discord serving requests."""
    bot = platforms
    bot.slack.fail_next("auth.test", status=503)

    async with bot.serving():
        asked = await bot.discord_command("alice", "ask", link=f"{LINK}/1", topics="python")
        await bot.settle()

    assert asked.data is not None
    assert asked.data["content"].startswith("Request #1 is open")
    assert discord_titles(bot) == ["Review request #1"]
