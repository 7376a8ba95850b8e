"""One person on both platforms: `/review link` on Slack, the code on Discord, then one person."""

from __future__ import annotations

import re

from tests.scenarios.conftest import SLACK_TEAM_NAME, BothPlatforms

LINK = "https://example.com/own-draft"
LINKED = "Linked: both accounts are now one person, with one set of topics and one history."


async def link_alice(bot: BothPlatforms) -> None:
    """alice gets a code on Slack and enters it on Discord; then volunteers there, as does bob."""
    answer = await bot.slack_command("link")
    found = re.search(r"Your link code is (\w+)\.", answer.json()["text"])
    assert found is not None, answer.text
    linked = await bot.discord_command("alice", "link", code=found.group(1))
    assert linked.data is not None
    assert linked.data["content"] == LINKED
    for name in ("alice", "bob"):
        await bot.discord_command(name, "volunteer", topics="python")


async def test_linked_volunteer_is_not_notified_of_own_slack_request(
    both_platforms: BothPlatforms,
) -> None:
    """A person linked across platforms who volunteers on Discord and asks on Slack is not pinged
    about their own request; the other Discord volunteer is."""
    bot = both_platforms
    await link_alice(bot)

    asked = await bot.slack_command(f"{LINK} #python")
    await bot.settle()

    assert asked.json()["text"].startswith("Request #1 is open; 1 volunteer notified.")
    (create,) = bot.discord_post_creates()
    bob = bot.user("bob")
    assert create.json["content"] == f"<@{bob}>: a review request on your topics"
    assert create.json["allowed_mentions"] == {"parse": [], "users": [int(bob)]}
    assert bot.discord_dms("alice") == []


async def test_mine_on_discord_lists_the_request_asked_on_slack(
    both_platforms: BothPlatforms,
) -> None:
    """`/review mine` on Discord lists a linked person's request asked on Slack, saying where."""
    bot = both_platforms
    await link_alice(bot)
    await bot.slack_command(f"{LINK} #python")

    mine = await bot.discord_command("alice", "mine")

    assert mine.data is not None
    assert mine.data["content"] == (
        f"#1 · {LINK} · #python · by alice · Slack: {SLACK_TEAM_NAME}, 0h ago, open"
    )
