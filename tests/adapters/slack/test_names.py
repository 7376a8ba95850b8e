"""Display names: reactions carry only a user id, so the adapter asks users.info (cached)."""

from __future__ import annotations

import json

from bot import texts
from tests.adapters.slack.conftest import ALICE, REVIEW_CHANNEL, SlackHarness
from tests.adapters.slack.test_app import LINK, ask, dms_to, message

DANA = ("U0DANA", "dana")


def ephemerals_to(harness: SlackHarness, user_id: str) -> list[str]:
    return [e["text"] for e in harness.slack.ephemerals if e["user"] == user_id]


async def test_reaction_claim_shows_the_name_slack_knows(harness: SlackHarness):
    """Dana never ran a command; her 👀 claim shows her display name, not U0DANA."""
    harness.slack.add_user(DANA[0], name="dana", profile={"display_name": "Dana Q"})
    ts = await ask(harness)

    await harness.react(ts, DANA)
    await harness.deliver()

    [update] = harness.calls("chat.update")
    assert "claimed by Dana Q" in json.dumps(update.args["blocks"])
    assert dms_to(harness, ALICE[0]) == [texts.DM_CLAIMED.format(name="Dana Q", id=1, link=LINK)]


async def test_failing_lookup_falls_back_to_the_id_and_still_claims(harness: SlackHarness):
    """users.info failing does not stop the claim; the post names the user by id."""
    ts = await ask(harness)
    harness.slack.fail_next("users.info", error="ratelimited", status=429)

    assert (await harness.react(ts, DANA)).status == 200
    await harness.deliver()

    assert "claimed by U0DANA" in json.dumps(message(harness)["blocks"])
    assert ephemerals_to(harness, DANA[0]) == []  # a reaction that worked shows in the post


async def test_names_are_asked_once_per_user(harness: SlackHarness):
    """Claim, release and claim again by reaction: one users.info for the person."""
    harness.slack.add_user(DANA[0], name="dana")
    ts = await ask(harness)

    await harness.react(ts, DANA)
    await harness.react(ts, DANA, added=False)
    await harness.react(ts, DANA)
    await harness.deliver()

    assert [c.args["user"] for c in harness.calls("users.info")] == [DANA[0]]


async def test_commands_ask_slack_for_no_name(harness: SlackHarness):
    """A slash command carries the user's name: answering it calls no users.info."""
    await ask(harness)

    await harness.command("list", DANA)

    assert harness.calls("users.info") == []


async def test_button_uses_the_display_name(harness: SlackHarness):
    """A Claim click names the clicker as Slack shows them, not by the payload's handle."""
    harness.slack.add_user(DANA[0], name="dana", profile={"display_name": "Dana Q"})
    ts = await ask(harness)

    await harness.click("claim", 1, DANA, ts)
    await harness.deliver()

    assert "claimed by Dana Q" in json.dumps(harness.slack.messages(REVIEW_CHANNEL)[0]["blocks"])
