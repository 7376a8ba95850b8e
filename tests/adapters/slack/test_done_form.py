"""The Done button's form (issue #5), end to end through bolt, the core and SQLite, on FakeSlack.

Done opens a modal with views.open at once (the trigger expires in 3 s); its submission is a DONE
carrying the response, which reaches the requester's DM and the post.
"""

from __future__ import annotations

import json
import logging

import pytest

from adapters.slack import app
from bot import texts
from bot.model import Status
from tests.adapters.slack.conftest import ALICE, BOB, CAROL, REVIEW_CHANNEL, BrokenInbox
from tests.adapters.slack.conftest import SlackHarness as Harness
from tests.adapters.slack.test_app import LINK, action_ids, ask, dms_to, message
from tests.fakes import slack_payloads as p

RESPONSE = "Left comments on section 2: https://docs.example/draft#c12"


async def claimed(harness: Harness) -> str:
    """Alice asks, Bob claims with the button; returns the post's ts."""
    ts = await ask(harness)
    await harness.click("claim", 1, BOB, ts)
    await harness.deliver()
    return ts


async def status(harness: Harness) -> tuple[Status, str, str]:
    request = await harness.core.store.run(lambda tx: tx.request(1))
    assert request is not None
    claimer = request.claimer.user_id if request.claimer else ""
    return request.status, claimer, request.response


def ephemerals_to(harness: Harness, user_id: str) -> list[str]:
    return [e["text"] for e in harness.slack.ephemerals if e["user"] == user_id]


async def test_done_opens_the_form_with_the_click_trigger(harness: Harness):
    """Done calls views.open with the click's trigger_id and a form naming the request and post."""
    ts = await claimed(harness)
    updates = len(harness.calls("chat.update"))
    body = p.block_actions_body(
        "review_done",
        "1",
        user_id=BOB[0],
        channel_id=REVIEW_CHANNEL,
        message_ts=ts,
        trigger_id="12345.98765.abcdef",
    )

    answer = await harness.post(body)
    await harness.deliver()

    assert (answer.status, answer.text) == (200, "")
    [call] = harness.calls("views.open")
    assert call.args["trigger_id"] == "12345.98765.abcdef"
    view = call.args["view"]
    assert view["callback_id"] == "review_done"
    assert json.loads(view["private_metadata"]) == {
        "request_id": 1,
        "channel": REVIEW_CHANNEL,
        "ts": ts,
    }
    [hint, field] = view["blocks"]
    assert hint["type"] == "context"
    assert field["optional"] is True
    assert field["label"]["text"] == "Your response (optional)"
    assert field["element"] == {
        "type": "plain_text_input",
        "action_id": "response",
        "multiline": True,
        "max_length": 1000,
        "placeholder": {
            "type": "plain_text",
            "text": "A note, or a link to your comments",
            "emoji": True,
        },
    }
    assert await status(harness) == (Status.CLAIMED, BOB[0], "")  # nothing done yet
    assert len(harness.calls("chat.update")) == updates


async def test_submitted_response_reaches_requester_and_post(harness: Harness):
    """A response typed in the form: the request is done with it, the DM and the post show it."""
    ts = await claimed(harness)
    await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()

    answer = await harness.submit(form, BOB, f"  {RESPONSE}\n")
    await harness.deliver()

    assert (answer.status, answer.json()) == (200, {"response_action": "clear"})
    assert await status(harness) == (Status.DONE, BOB[0], RESPONSE)
    assert dms_to(harness, ALICE[0])[-1] == texts.DM_DONE_RESPONSE.format(
        name="bob", id=1, link=LINK, response=RESPONSE
    )
    blocks = json.dumps(message(harness)["blocks"])
    assert f"*Response:* {RESPONSE}" in blocks
    assert action_ids(message(harness)) == []
    assert ephemerals_to(harness, BOB[0])[-1] == texts.COMPLETED.format(id=1)


async def test_blank_form_completes_without_a_response(harness: Harness):
    """Submitted empty (Slack sends null), the request is done and the DM has no response."""
    ts = await claimed(harness)
    await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()

    await harness.submit(form, BOB, None)
    await harness.deliver()

    assert await status(harness) == (Status.DONE, BOB[0], "")
    assert dms_to(harness, ALICE[0])[-1] == texts.DM_DONE.format(name="bob", id=1, link=LINK)
    assert "*Response:*" not in json.dumps(message(harness)["blocks"])


async def test_response_cannot_ping_or_inject(harness: Harness):
    """Mention syntax in a response reaches Slack only as entities, in the post and the DM."""
    ts = await claimed(harness)
    await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()

    await harness.submit(form, BOB, "<!channel> see <https://evil.example|docs>")
    await harness.deliver()

    for call in harness.calls("chat.update") + harness.calls("chat.postMessage"):
        sent = json.dumps(call.args)
        assert "<!channel>" not in sent
        assert "<https://evil.example|docs>" not in sent
    assert "&lt;!channel&gt; see" in json.dumps(message(harness)["blocks"])


async def test_someone_without_the_claim_is_refused(harness: Harness):
    """Carol opens the form on Bob's claim and submits: she is told why, and nothing changes."""
    ts = await claimed(harness)
    updates = len(harness.calls("chat.update"))
    dms = len(dms_to(harness, ALICE[0]))
    await harness.click("done", 1, CAROL, ts)
    [form] = harness.forms()

    answer = await harness.submit(form, CAROL, "looks fine to me")
    await harness.deliver()

    assert (answer.status, answer.json()) == (200, {"response_action": "clear"})
    assert ephemerals_to(harness, CAROL[0]) == [texts.NOT_CLAIMER.format(id=1, name="bob")]
    assert await status(harness) == (Status.CLAIMED, BOB[0], "")
    assert len(harness.calls("chat.update")) == updates
    assert len(dms_to(harness, ALICE[0])) == dms


async def test_form_submitted_twice_completes_once(harness: Harness):
    """The view id keys the completion: a second submission of one form changes nothing."""
    ts = await claimed(harness)
    await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()

    await harness.submit(form, BOB, RESPONSE)
    await harness.submit(form, BOB, RESPONSE)
    await harness.deliver()

    assert len(dms_to(harness, ALICE[0])) == 2  # the claim, then done: once
    assert ephemerals_to(harness, BOB[0]) == [
        texts.CLAIMED.format(id=1, link=LINK),
        texts.COMPLETED.format(id=1),
    ]


@pytest.mark.parametrize(
    "fault",
    [{"error": "expired_trigger_id"}, {"status": 500}, {"delay": 0.3}],
    ids=["expired-trigger", "server-error", "too-slow"],
)
async def test_form_that_cannot_open_completes_without_a_response(
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fault: dict,
):
    """If Slack will not open the form, the click still finishes the request, and it is logged."""
    monkeypatch.setattr(app, "FORM_TIMEOUT", 0.05)
    ts = await claimed(harness)
    harness.slack.fail_next("views.open", **fault)

    answer = await harness.click("done", 1, BOB, ts)
    await harness.deliver()

    assert answer.status == 200
    assert await status(harness) == (Status.DONE, BOB[0], "")
    assert dms_to(harness, ALICE[0])[-1] == texts.DM_DONE.format(name="bob", id=1, link=LINK)
    assert any(
        "views.open" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


async def test_form_with_unreadable_metadata_is_closed_and_ignored(harness: Harness):
    """A submission whose metadata names no request closes the form and does nothing."""
    await claimed(harness)
    calls = len(harness.slack.calls())
    form = {"id": "V0FORGED", "callback_id": "review_done", "private_metadata": "not json"}

    answer = await harness.submit(form, BOB, RESPONSE)
    await harness.deliver()

    assert (answer.status, answer.json()) == (200, {"response_action": "clear"})
    assert await status(harness) == (Status.CLAIMED, BOB[0], "")
    assert len(harness.slack.calls()) == calls


async def test_core_failure_keeps_the_form_open_with_an_apology(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """If the store fails, the form stays open with the apology, so the response is not lost."""
    ts = await claimed(harness)
    await harness.click("done", 1, BOB, ts)
    [form] = harness.forms()
    monkeypatch.setattr(harness.core.dispatcher, "handle", BrokenInbox().handle)

    answer = await harness.submit(form, BOB, RESPONSE)

    assert (answer.status, answer.json()) == (
        200,
        {"response_action": "errors", "errors": {"response": texts.APOLOGY}},
    )
    assert any(
        r.levelno == logging.ERROR and "slack:view:" in r.getMessage() for r in caplog.records
    )
    monkeypatch.undo()
    assert (await harness.submit(form, BOB, RESPONSE)).json() == {"response_action": "clear"}
    assert await status(harness) == (Status.DONE, BOB[0], RESPONSE)


async def test_done_by_command_still_takes_a_response(harness: Harness):
    """`/review done <id> <response>` works as before, without any form."""
    await claimed(harness)

    answer = await harness.command(f"done 1 {RESPONSE}", BOB)
    await harness.deliver()

    assert answer.json()["text"] == texts.COMPLETED.format(id=1)
    assert harness.calls("views.open") == []
    assert await status(harness) == (Status.DONE, BOB[0], RESPONSE)


async def test_form_submitted_from_a_partner_workspace_completes_the_claim(harness: Harness):
    """Bob is a Slack Connect guest from another org: his Claim and Done clicks carry our
    workspace as `team`, but his form's submission carries his own, with ours in
    `view.app_installed_team_id`. It is still his claim, so the form completes it."""
    partner = "T0PARTNER"
    ts = await ask(harness)
    for action in ("claim", "done"):
        click = p.block_actions_payload(
            f"review_{action}", "1", user_id=BOB[0], channel_id=REVIEW_CHANNEL, message_ts=ts
        )
        click["user"]["team_id"] = partner
        assert (await harness.post(p.interactive_body(click))).status == 200
    await harness.deliver()
    [form] = harness.forms()
    submission = p.view_submission_payload(
        form["callback_id"],
        {"response": {"response": {"type": "plain_text_input", "value": RESPONSE}}},
        user_id=BOB[0],
        team_id=partner,
        view_id=form["id"],
        private_metadata=form["private_metadata"],
    )
    submission["view"]["app_installed_team_id"] = p.TEAM_ID

    assert (await harness.post(p.interactive_body(submission))).status == 200
    await harness.deliver()

    assert await status(harness) == (Status.DONE, BOB[0], RESPONSE)
