"""The Slack adapter end to end over HTTP: signed requests in, Web API calls out, via the core.

Every test runs the real bolt app behind the real aiohttp server, the real Dispatcher,
DeliveryWorker and SqliteStore, against FakeSlack. Notices leave only when a test calls
`deliver()`, so "nothing was sent yet" is a meaningful assertion.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot import texts
from tests.adapters.slack.conftest import (
    ALICE,
    BOB,
    CAROL,
    REVIEW_CHANNEL,
    SECRET,
    SlackHarness,
    now,
)
from tests.fakes import slack_payloads as p

LINK = "https://example.com/draft"


async def ask(harness: SlackHarness, text: str = f"{LINK} #python check section 2") -> str:
    """Bob volunteers, Alice asks, the post goes out; returns the relay post's ts."""
    assert (await harness.command("volunteer python", BOB)).status == 200
    assert (await harness.command(text, ALICE)).status == 200
    await harness.deliver()
    return harness.post_ts()


def message(harness: SlackHarness) -> dict:
    [post] = harness.slack.messages(REVIEW_CHANNEL)
    return post


def action_ids(post: dict) -> list[str]:
    return [e["action_id"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]


def dms_to(harness: SlackHarness, user_id: str) -> list[str]:
    return [
        c.args["text"] for c in harness.calls("chat.postMessage") if c.args["channel"] == user_id
    ]


async def test_ask_is_acked_with_the_reply_and_posted_once(harness: SlackHarness):
    """The ack carries the reply at once; the worker then makes exactly one post with blocks."""
    await harness.command("volunteer python", BOB)

    started = time.perf_counter()
    answer = await harness.command(f"{LINK} #python check section 2", ALICE)
    elapsed = time.perf_counter() - started

    assert answer.status == 200
    assert answer.json() == {
        "text": texts.ASKED.format(id=1, count=1, s=""),
        "response_type": "ephemeral",
    }
    assert elapsed < 1.0
    assert harness.calls("chat.postMessage") == []  # the handler itself called no Web API

    await harness.deliver()

    [post] = harness.calls("chat.postMessage")
    assert post.args["channel"] == REVIEW_CHANNEL
    assert post.args["blocks"][0]["text"]["text"].startswith("*Review request #1* from alice")
    assert action_ids(message(harness)) == ["review_claim"]


async def test_matched_volunteer_is_mentioned_in_the_post(harness: SlackHarness):
    """A volunteer for the topic is pinged by id in the post, and nobody else is."""
    await ask(harness)

    [post] = harness.posts()
    assert post.args["text"].endswith("cc <@U0BOB>")
    assert "cc <@U0BOB>" in json.dumps(post.args["blocks"])
    assert "<@U0ALICE>" not in json.dumps(post.args)


async def test_claim_by_reaction_updates_post_and_tells_requester(harness: SlackHarness):
    """👀 on the post claims it: the post is edited and the requester gets a DM."""
    ts = await ask(harness)

    assert (await harness.react(ts, BOB)).status == 200
    await harness.deliver()

    [update] = harness.calls("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (REVIEW_CHANNEL, ts)
    assert "claimed by bob" in json.dumps(update.args["blocks"])
    assert action_ids(message(harness)) == ["review_done", "review_release"]
    assert dms_to(harness, ALICE[0]) == [texts.DM_CLAIMED.format(name="bob", id=1, link=LINK)]


async def test_retried_event_claims_once(harness: SlackHarness):
    """Slack's retry of a handled event (same event_id) is processed, answered 200, and a no-op."""
    ts = await ask(harness)
    assert (await harness.react(ts, BOB, event_id="Ev0CLAIM01")).status == 200
    await harness.deliver()
    before = len(harness.slack.calls())

    retried = await harness.react(ts, BOB, event_id="Ev0CLAIM01", retry=1)
    await harness.deliver()

    assert retried.status == 200
    assert len(harness.slack.calls()) == before
    assert len(harness.calls("chat.update")) == 1
    assert len(dms_to(harness, ALICE[0])) == 1


async def test_retries_racing_the_original_event_claim_once(harness: SlackHarness):
    """Retries that arrive while the original is still being handled (Slack gave up waiting on
    it) are answered 200 and change nothing more: one claim, one post edit, one DM."""
    ts = await ask(harness)

    answers = await asyncio.gather(
        harness.react(ts, BOB, event_id="Ev0CLAIM02"),
        *(harness.react(ts, BOB, event_id="Ev0CLAIM02", retry=n) for n in (1, 2, 3)),
    )
    await harness.deliver()

    assert [a.status for a in answers] == [200] * 4
    assert len(harness.calls("chat.update")) == 1
    assert dms_to(harness, ALICE[0]) == [texts.DM_CLAIMED.format(name="bob", id=1, link=LINK)]
    assert harness.slack.ephemerals == []  # no retry was told "already claimed by bob"


async def test_second_claimer_is_refused_privately(harness: SlackHarness):
    """A later 👀 loses: its author gets an ephemeral refusal and the post stays Bob's."""
    ts = await ask(harness)
    await harness.react(ts, BOB)
    await harness.deliver()

    await harness.react(ts, CAROL)
    await harness.deliver()

    refusals = [e for e in harness.slack.ephemerals if e["user"] == CAROL[0]]
    assert [(e["channel"], e["text"]) for e in refusals] == [
        (REVIEW_CHANNEL, texts.ALREADY_CLAIMED.format(id=1, name="bob"))
    ]
    assert len(harness.calls("chat.update")) == 1
    assert "claimed by bob" in json.dumps(message(harness)["blocks"])


async def test_removing_the_reaction_releases(harness: SlackHarness):
    """Taking back 👀 releases the claim: the post is open again and the requester hears."""
    ts = await ask(harness)
    await harness.react(ts, BOB)
    await harness.deliver()

    assert (await harness.react(ts, BOB, added=False)).status == 200
    await harness.deliver()

    assert action_ids(message(harness)) == ["review_claim"]
    assert "*Status:* open" in json.dumps(message(harness)["blocks"])
    assert dms_to(harness, ALICE[0])[-1] == texts.DM_RELEASED.format(name="bob", id=1)


async def test_claim_and_done_by_buttons(harness: SlackHarness):
    """Claim, then Done and its form sent blank, finish the request: no buttons left."""
    ts = await ask(harness)

    claimed = await harness.click("claim", 1, BOB, ts)
    done = await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()
    submitted = await harness.submit(form, BOB, None)
    await harness.deliver()

    assert (claimed.status, claimed.text, done.status, done.text) == (200, "", 200, "")
    assert (submitted.status, submitted.json()) == (200, {"response_action": "clear"})
    post = message(harness)
    assert action_ids(post) == []
    assert "done by bob" in json.dumps(post["blocks"])
    assert dms_to(harness, ALICE[0])[-1] == texts.DM_DONE.format(name="bob", id=1, link=LINK)
    bob_sees = [e["text"] for e in harness.slack.ephemerals if e["user"] == BOB[0]]
    assert bob_sees[-1] == texts.COMPLETED.format(id=1)


async def test_an_admins_release_button_and_done_form_act_on_someone_elses_claim(
    harness: SlackHarness,
):
    """An admin's Release button reopens bob's claim and the admin's Done form completes it,
    as `/review release 1` and `/review done 1` do; a member's press is refused."""
    harness.slack.add_user("U0ADMIN", name="admin", is_admin=True)
    admin, carol = ("U0ADMIN", "admin"), ("U0CAROL", "carol")
    ts = await ask(harness)
    await harness.click("claim", 1, BOB, ts)
    await harness.click("release", 1, carol, ts)
    await harness.deliver()
    assert "claimed by bob" in json.dumps(message(harness)["blocks"])

    await harness.click("release", 1, admin, ts)
    await harness.deliver()
    assert "*Status:* open" in json.dumps(message(harness)["blocks"])

    await harness.click("claim", 1, BOB, ts)
    await harness.click("done", 1, admin, ts)
    [form] = harness.forms()
    await harness.submit(form, admin, "looks good")
    await harness.deliver()
    assert "done by bob" in json.dumps(message(harness)["blocks"])


async def test_forged_signature_is_rejected_and_changes_nothing(harness: SlackHarness):
    """A request signed with the wrong secret gets 401; no request, claim or call results."""
    body = p.slash_command_body(f"{LINK} #python", user_id=ALICE[0], user_name=ALICE[1])
    event = p.event_callback_body(p.reaction_event(ts="1700000000.000100", user=BOB[0]))

    assert (await harness.post(body, secret="not-the-secret")).status == 401
    assert (await harness.post(event, secret="not-the-secret")).status == 401
    await harness.deliver()

    assert await harness.core.store.run(lambda tx: tx.open_requests()) == []
    assert [c.method for c in harness.slack.calls()] == ["auth.test"]


async def test_stale_timestamp_is_rejected(harness: SlackHarness):
    """A correctly signed request older than five minutes (a replay) gets 401."""
    body = p.slash_command_body(f"{LINK} #python", user_id=ALICE[0], user_name=ALICE[1])

    answer = await harness.post(body, secret=SECRET, timestamp=now() - 301)
    await harness.deliver()

    assert answer.status == 401
    assert await harness.core.store.run(lambda tx: tx.open_requests()) == []


async def test_mention_injection_never_reaches_slack_unescaped(harness: SlackHarness):
    """Mentions typed into a note come out as entities in the post, DMs and ephemerals."""
    note = "<!channel> <!here> <!everyone> <!subteam^S123> <@U999> &lt;!channel&gt;"
    ts = await ask(harness, f"{LINK} #python {note}")
    await harness.react(ts, BOB)
    await harness.deliver()

    for call in harness.slack.calls():
        sent = json.dumps(call.args)
        for raw in ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U999>"):
            assert raw not in sent, (call.method, raw)
    assert "&lt;!channel&gt; &lt;!here&gt;" in json.dumps(harness.posts()[0].args["blocks"])


async def test_rate_limit_burst_delays_the_post_without_dropping_or_doubling(
    harness: SlackHarness,
):
    """Two 429s in a row: the post waits out the Retry-After, then twice it after the second
    refusal (a limit still in force after its wait), then goes out exactly once."""
    harness.slack.fail_next("chat.postMessage", status=429, retry_after=30, times=2)
    await harness.command(f"{LINK} #python", ALICE)
    await harness.deliver()
    assert harness.slack.messages(REVIEW_CHANNEL) == []

    await harness.deliver()  # not due yet: Retry-After has not passed on the clock
    assert len(harness.calls("chat.postMessage")) == 1

    harness.clock.advance(seconds=40)
    await harness.deliver()  # the probe after 30 s: refused again, the next wait is 60 s
    assert [c.status for c in harness.calls("chat.postMessage")] == [429, 429]
    harness.clock.advance(seconds=40)
    await harness.deliver()
    assert len(harness.calls("chat.postMessage")) == 2  # 40 s of the 60 s wait
    harness.clock.advance(seconds=30)
    await harness.deliver()

    assert [c.status for c in harness.calls("chat.postMessage")] == [429, 429, 200]
    assert len(harness.slack.messages(REVIEW_CHANNEL)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/payload-design #python",
        "https://example.com/draft #python the payload section needs eyes",
    ],
)
async def test_slash_command_mentioning_payload_reaches_the_handler(
    harness: SlackHarness, text: str
):
    """Regression for bolt's parse_body: `payload` inside a command is not interactivity."""
    answer = await harness.command(text, ALICE)

    assert answer.status == 200
    assert answer.json()["text"].startswith("Request #1 is open")
    await harness.deliver()
    assert len(harness.posts()) == 1


async def test_forged_payload_lookalike_is_still_rejected(harness: SlackHarness):
    """The `payload` workaround runs after nothing: a forged such body still gets 401."""
    body = p.slash_command_body("https://example.com/payload-design", user_id=ALICE[0])

    assert (await harness.post(body, secret="not-the-secret")).status == 401


async def test_setup_asks_slack_whether_the_user_is_an_admin(harness: SlackHarness):
    """/review setup reads users.info (cached); other commands never do."""
    harness.slack.add_user("U0ADMIN", name="admin", is_admin=True)
    admin = ("U0ADMIN", "admin")

    refused = await harness.command("setup", ALICE, channel_id="C0NEW")
    accepted = await harness.command("setup", admin, channel_id="C0NEW")
    again = await harness.command("setup time=10:00", admin, channel_id="C0NEW")
    await harness.command("volunteer python", BOB)

    assert refused.json()["text"] == texts.SETUP_ADMIN_ONLY
    assert accepted.json()["text"].startswith("This channel is now the review channel")
    assert "10:00" in again.json()["text"]
    assert [c.args["user"] for c in harness.calls("users.info")] == [ALICE[0], "U0ADMIN"]


async def test_url_verification_is_answered(harness: SlackHarness):
    """Slack's URL check on the events URL gets its challenge back."""
    answer = await harness.post(p.url_verification_body("challenge-42"))

    assert (answer.status, answer.json()) == (200, {"challenge": "challenge-42"})


async def test_reaction_elsewhere_is_ignored(harness: SlackHarness):
    """👀 on someone else's message is answered 200 and costs no Web API call at all."""
    ts = harness.slack.add_message(REVIEW_CHANNEL, "just chatting", user=ALICE[0])

    assert (await harness.react(ts, BOB, item_user=ALICE[0])).status == 200
    await harness.deliver()

    assert [c.method for c in harness.slack.calls()] == ["auth.test", "auth.test"]


async def test_reaction_on_another_bot_message_changes_nothing(harness: SlackHarness):
    """👀 on a bot message that is no relay post (a digest, say) is answered 200; nothing is said.

    Its author's name is read first (the adapter cannot tell relay posts apart), and that is all.
    """
    ts = harness.slack.add_message(REVIEW_CHANNEL, "Waiting for a reviewer (0):", user="U0BOT")

    assert (await harness.react(ts, BOB)).status == 200
    await harness.deliver()

    assert [c.method for c in harness.slack.calls()] == ["auth.test", "auth.test", "users.info"]


async def test_retried_refused_event_refuses_once(harness: SlackHarness):
    """Slack's retry of a refused claim does not send the refusal twice."""
    ts = await ask(harness)
    await harness.react(ts, BOB)
    await harness.deliver()

    await harness.react(ts, CAROL, event_id="Ev0LATE01")
    await harness.react(ts, CAROL, event_id="Ev0LATE01", retry=1)
    await harness.deliver()

    assert len([e for e in harness.slack.ephemerals if e["user"] == CAROL[0]]) == 1


async def test_reaction_in_a_channel_another_org_shares_credits_the_same_person(
    harness: SlackHarness,
):
    """In a Slack Connect channel created by another organisation, Slack sets the event's
    top-level `team_id` to that organisation; the claim is still bob's, so his `/review done`
    finishes it (the workspace is `authorizations[0].team_id`, as bolt reads it)."""
    ts = await ask(harness)
    event = p.reaction_event(user=BOB[0], channel=REVIEW_CHANNEL, ts=ts)
    payload = p.event_callback_payload(event) | {"team_id": "T0HOST", "is_ext_shared_channel": True}
    assert (await harness.post(p.json_body(payload))).status == 200

    answer = await harness.command("done 1", BOB)
    await harness.deliver()

    assert "is held by" not in answer.text
    assert "*Status:* done" in json.dumps(harness.calls("chat.update")[-1].args["blocks"])


async def test_another_bots_reaction_claims_nothing(harness: SlackHarness):
    """A bot's 👀 (a triage bot reacting to every message) claims nothing; bob's after it does."""
    triage = ("U0TRIAGE", "triage")
    harness.slack.add_user(triage[0], name=triage[1], is_bot=True)
    ts = await ask(harness)

    assert (await harness.react(ts, triage)).status == 200
    assert (await harness.react(ts, BOB)).status == 200
    await harness.deliver()

    assert "claimed by bob" in json.dumps(harness.calls("chat.update")[-1].args["blocks"])
    assert dms_to(harness, ALICE[0]) == [texts.DM_CLAIMED.format(name="bob", id=1, link=LINK)]


async def test_setup_in_a_direct_message_keeps_the_review_channel(harness: SlackHarness):
    """/review setup typed in a DM (Slack: channel_name "directmessage") cannot make that DM the
    review channel: the bot cannot post there. The admin is told so; requests still go out."""
    harness.slack.add_user("U0ADMIN", name="admin", is_admin=True)
    admin = ("U0ADMIN", "admin")

    answer = await harness.command(
        "setup", admin, channel_id="D0ADMINBOB", channel_name="directmessage"
    )
    ts = await ask(harness)

    assert answer.json()["text"] == texts.SETUP_NOT_A_CHANNEL
    assert ts
    assert harness.posts()[0].args["channel"] == REVIEW_CHANNEL
