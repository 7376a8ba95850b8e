"""Text crossing platforms pings nobody it should not: Slack's and Discord's mention syntax in a
note or a response arrives as inert text on the other side."""

from __future__ import annotations

import json

from tests.scenarios.conftest import ALICE, BothPlatforms, slack_status

LINK = "https://example.com/d"
HOSTILE = "<!channel> @everyone <@U0DAVE> <!subteam^S0ALL> look"


async def test_slack_note_with_mentions_pings_only_the_volunteer_on_discord(
    both_platforms: BothPlatforms,
) -> None:
    """A Slack note with <!channel>, @everyone and user mentions reaches Discord allowing only the
    intended volunteer's ping, and the Slack post shows it escaped."""
    bot = both_platforms
    await bot.discord_command("bob", "volunteer", topics="python")

    asked = await bot.slack_command(f"{LINK} #python {HOSTILE}")
    await bot.settle()

    assert asked.status == 200
    (create,) = bot.discord_post_creates()
    bob = bot.user("bob")
    assert create.json["allowed_mentions"] == {"parse": [], "users": [int(bob)]}
    assert create.json["content"] == f"<@{bob}>: a review request on your topics"
    note = next(f["value"] for f in create.json["embeds"][0]["fields"] if f["name"] == "Note")
    assert "@everyone" not in note  # broken up as well, though allowed_mentions is what counts
    (post,) = bot.slack_posts()
    sent = json.dumps(post.args)
    assert "<!" not in sent
    assert "<@U0DAVE>" not in sent
    assert "&lt;!channel&gt; @everyone &lt;@U0DAVE&gt; &lt;!subteam^S0ALL&gt; look" in sent
    assert not {"link_names", "parse"} & post.args.keys()


async def test_discord_response_with_mentions_reaches_slack_escaped(
    both_platforms: BothPlatforms,
) -> None:
    """A Discord reviewer's done response with mention syntax shows escaped in the Slack post and
    the Slack requester's DM, and the Discord edit pings nobody."""
    bot = both_platforms
    await bot.discord_command("bob", "volunteer", topics="python")
    await bot.slack_command(f"{LINK} #python")
    await bot.discord_command("bob", "claim", id=1)

    done = await bot.discord_command("bob", "done", id=1, response=f"{HOSTILE} at my notes")
    await bot.settle()

    assert done.data is not None
    assert done.data["content"] == "Thank you! Request #1 is marked done."
    escaped = "&lt;!channel&gt; @everyone &lt;@U0DAVE&gt; &lt;!subteam^S0ALL&gt; look at my notes"
    (post,) = bot.slack_posts()
    final = bot.slack_updates(str(post.response["ts"]))[-1]
    assert slack_status(final).startswith("done by bob")
    assert f"*Response:* {escaped}" in json.dumps(final.args["blocks"])
    assert "<!" not in json.dumps(final.args)
    assert bot.slack_dms(ALICE[0])[-1] == (
        f"bob · Discord: Reviewers finished reviewing your request #1 ({LINK}): {escaped}"
    )
    edits = bot.discord.requests_matching(f"PATCH /channels/{bot.reviews}/messages/*")
    assert edits
    assert all(e.json["allowed_mentions"] == {"parse": []} for e in edits)
