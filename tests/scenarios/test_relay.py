"""A request's life across Slack and Discord: asked on one platform, claimed and finished on the
other, and claimed from both at once."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.fakes.fake_discord import InteractionCallback
from tests.scenarios.conftest import (
    ALICE,
    CAROL,
    GUILD_NAME,
    SLACK_TEAM_NAME,
    BothPlatforms,
    discord_buttons,
    discord_status,
    slack_status,
)

LINK = "https://example.com/d"
MENTION_NOTE = ": a review request on your topics"
CLAIMED = f"You claimed request #1: {LINK}. Mark it done with /review done 1 or a ✅ reaction."
MODAL = 9  # interaction callback type: Discord was answered with a modal


async def ask_on_slack(
    bot: BothPlatforms, text: str = f"{LINK} #python please look"
) -> tuple[str, str]:
    """alice asks on Slack; returns the Slack post's ts and the Discord post's message id."""
    answer = await bot.slack_command(text)
    assert answer.status == 200
    await bot.settle()
    (slack_post,) = bot.slack_posts()
    (discord_post,) = bot.discord_posts()
    return str(slack_post.response["ts"]), str(discord_post["id"])


async def press_done(bot: BothPlatforms, user: str, message_id: str) -> InteractionCallback:
    """`user` presses Done on a Discord post; a modal, if Done opens one, is sent back empty."""
    answer = await bot.discord_click(user, message_id, "review:done:1")
    if answer.type == MODAL:
        assert answer.data is not None
        submitted = await bot.discord.send_modal_submit(
            bot.guild.id, bot.reviews, user, str(answer.data["custom_id"]), {}
        )
        answer = await bot.discord.wait_for_interaction_response(submitted)
    return answer


def claimer(status: str) -> str:
    """The name in "claimed by NAME" or "claimed by NAME · Platform: place"."""
    found = re.fullmatch(r"claimed by (\w+)(?: · .*)?", status)
    assert found is not None, status
    return found.group(1)


async def test_ask_on_slack_mentions_the_discord_volunteer(
    both_platforms: BothPlatforms,
) -> None:
    """A Slack request's Discord post pings the Discord volunteer and nobody else."""
    bot = both_platforms
    await bot.discord_command("bob", "volunteer", topics="python")

    _, message_id = await ask_on_slack(bot)

    (create,) = bot.discord_post_creates()
    bob = bot.user("bob")
    assert create.json["content"] == f"<@{bob}>{MENTION_NOTE}"
    assert create.json["allowed_mentions"] == {"parse": [], "users": [int(bob)]}
    message = bot.discord.message(message_id)
    assert message is not None
    fields = {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}
    assert fields["Requested by"] == f"alice · Slack: {SLACK_TEAM_NAME}"
    assert fields["Status"] == "open"


async def test_claim_and_done_on_discord_reach_both_posts_and_the_slack_requester(
    both_platforms: BothPlatforms,
) -> None:
    """👀 then Done on Discord edit both posts to done, and the Slack asker hears of each step."""
    bot = both_platforms
    await bot.discord_command("bob", "volunteer", topics="python")
    ts, message_id = await ask_on_slack(bot)

    await bot.discord_react("bob", message_id, "👀")
    await bot.settle()
    assert discord_status(bot.discord.message(message_id)) == "claimed by bob"
    assert slack_status(bot.slack_updates(ts)[-1]).startswith("claimed by bob")
    done = await press_done(bot, "bob", message_id)
    await bot.settle()

    if done.type == 4:
        assert done.data is not None
        assert done.data["content"] == "Thank you! Request #1 is marked done."
    message = bot.discord.message(message_id)
    assert discord_status(message) == "done by bob"
    assert discord_buttons(message) == []
    final = bot.slack_updates(ts)[-1]
    assert slack_status(final).startswith("done by bob")
    assert [b["type"] for b in final.args["blocks"]].count("actions") == 0  # no buttons left
    assert bot.slack_dms(ALICE[0]) == [
        f"bob · Discord: Reviewers claimed your request #1 ({LINK}).",
        f"bob · Discord: Reviewers finished reviewing your request #1 ({LINK}).",
    ]
    assert bot.discord_dms("bob") == []  # the edited post is the answer: no DM for a success


async def test_claim_and_done_on_slack_reach_the_discord_post_and_requester(
    both_platforms: BothPlatforms,
) -> None:
    """The Claim button then ✅ on Slack edit a Discord request's post and DM the Discord asker."""
    bot = both_platforms
    await bot.slack_command("volunteer python", who=CAROL)
    await bot.discord_command("bob", "ask", link=LINK, topics="python")
    await bot.settle()
    (slack_post,) = bot.slack_posts()
    ts = str(slack_post.response["ts"])
    (discord_post,) = bot.discord_posts()
    assert discord_post["content"] == ""  # no Discord volunteer to ping
    assert "cc <@U0CAROL>" in slack_post.args["text"]

    clicked = await bot.slack_click("claim", 1, CAROL, ts)
    reacted = await bot.slack_react(ts, CAROL, "white_check_mark")
    await bot.settle()

    assert (clicked.status, reacted.status) == (200, 200)
    message = bot.discord.message(discord_post["id"])
    assert discord_status(message) == f"done by carol · Slack: {SLACK_TEAM_NAME}"
    assert discord_buttons(message) == []
    assert slack_status(bot.slack_updates(ts)[-1]).startswith("done by carol")
    assert bot.discord_dms("bob") == [
        f"carol · Slack: Fake Team claimed your request #1 ({LINK}).",
        f"carol · Slack: Fake Team finished reviewing your request #1 ({LINK}).",
    ]
    assert bot.slack_ephemerals(CAROL[0]) == [
        CLAIMED
    ]  # the button says so; the ✅ shows in the post


async def test_slack_post_says_the_discord_claimer_is_from_discord(
    both_platforms: BothPlatforms,
) -> None:
    """The Slack copy names a Discord claimer with where they are from, as Discord names Slack's."""
    bot = both_platforms
    ts, message_id = await ask_on_slack(bot)

    await bot.discord_react("bob", message_id, "👀")
    await bot.settle()

    assert slack_status(bot.slack_updates(ts)[-1]) == f"claimed by bob · Discord: {GUILD_NAME}"


@pytest.mark.parametrize("start", ["together", "slack_ahead"])
async def test_simultaneous_claims_on_both_platforms_have_one_winner(
    both_platforms: BothPlatforms, start: str
) -> None:
    """👀 on Slack and on Discord at once: one claim wins, the loser hears who holds it, and both
    posts name the same claimer."""
    bot = both_platforms
    await bot.discord_command("bob", "volunteer", topics="python")
    await bot.slack_command("volunteer python", who=CAROL)
    ts, message_id = await ask_on_slack(bot)
    handled = len(bot.probe.handled)

    if start == "together":  # the Discord claim usually reaches the store first
        slack_answer, _ = await asyncio.gather(
            bot.slack_react(ts, CAROL), bot.discord_reaction("bob", message_id)
        )
    else:  # Discord's claim is sent while Slack's is inside the core: Slack usually wins
        started = bot.probe.started
        slack_claim = asyncio.create_task(bot.slack_react(ts, CAROL))
        await bot.probe.wait(lambda: bot.probe.started > started, "the Slack claim in the core")
        await bot.discord_reaction("bob", message_id)
        slack_answer = await slack_claim
    await bot.probe.wait_handled(handled + 2)
    await bot.settle()

    assert slack_answer.status == 200
    (claimed,) = bot.slack_dms(ALICE[0])  # exactly one claim reached the requester
    # Names carry their origin when seen from the other platform ("bob · Discord: Reviewers").
    winner = claimed.split(" claimed your request")[0].split(" · ")[0]
    loser = {"bob": "carol", "carol": "bob"}[winner]
    assert claimer(discord_status(bot.discord.message(message_id))).split(" · ")[0] == winner
    assert claimer(slack_status(bot.slack_updates(ts)[-1])).split(" · ")[0] == winner
    told = {"bob": bot.discord_dms("bob"), "carol": bot.slack_ephemerals(CAROL[0])}
    assert told[winner] == []  # a reaction that worked shows in the post, not in a message
    assert told[loser] == [f"Request #1 is already claimed by {winner}."]
    assert bot.rows("SELECT request_id, status FROM claims") == [(1, "active")]
