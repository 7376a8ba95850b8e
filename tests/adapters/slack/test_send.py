"""SlackSender: each notice kind is one Web API call, and failures map to DeliveryError."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import send
from adapters.slack.send import METADATA_EVENT, SlackSender
from bot.errors import DeliveryError
from bot.model import Member, Notice, NoticeKind, Platform, Request, Status
from tests.adapters.slack.conftest import BOT_TOKEN
from tests.fakes.fake_slack import FakeSlack

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ALICE = Member(
    platform=Platform.SLACK, community_id="T0001", user_id="U0ALICE", display_name="alice"
)
REQUEST = Request(
    id=7,
    link="https://example.com/draft",
    topics=("python",),
    note="<!here> look",
    requester=ALICE,
    origin_channel_id="C0001",
    status=Status.OPEN,
    created_at=AT,
    updated_at=AT,
)


def notice(kind: NoticeKind, **fields: Any) -> Notice:
    return Notice(id=1, kind=kind, platform=Platform.SLACK, community_id="T0001", **fields)


@pytest.fixture
async def sender(slack: FakeSlack) -> SlackSender:
    # As build_slack makes it: no retry handlers, so each send is exactly one HTTP request.
    return SlackSender(AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[]))


async def test_relay_post_then_update(slack: FakeSlack, sender: SlackSender):
    """A relay post returns its ts; the update edits that very message with fresh blocks."""
    ts = await sender.send(
        notice(NoticeKind.RELAY_POST, channel_id="C0REVIEW", request=REQUEST, mentions=("U0BOB",))
    )
    cancelled = replace(REQUEST, status=Status.CANCELLED)
    await sender.send(
        notice(NoticeKind.POST_UPDATE, channel_id="C0REVIEW", message_id=str(ts), request=cancelled)
    )

    [post] = slack.calls("chat.postMessage")
    [update] = slack.calls("chat.update")
    assert ts == post.response["ts"]
    assert "<@U0BOB>" in post.args["text"]
    assert "link_names" not in post.args
    assert "parse" not in post.args
    assert "&lt;!here&gt;" in json.dumps(post.args["blocks"])
    assert update.args["ts"] == ts
    assert update.args["channel"] == "C0REVIEW"
    [message] = slack.messages("C0REVIEW")
    assert message["text"] == update.args["text"]
    assert "cancelled" in json.dumps(message["blocks"])
    assert "actions" not in json.dumps(message["blocks"])


async def test_direct_message_goes_to_the_user_id(slack: FakeSlack, sender: SlackSender):
    """A DM is one chat.postMessage to the user id: no conversations.open first."""
    assert await sender.send(notice(NoticeKind.DIRECT, user_id="U0ALICE", text="a <@U1>")) is None

    [call] = [c for c in slack.calls() if c.method != "auth.test"]
    assert (call.method, call.args) == (
        "chat.postMessage",
        {
            "channel": "U0ALICE",
            "text": "a &lt;@U1&gt;",
            "metadata": {"event_type": METADATA_EVENT, "event_payload": {"notice_id": 1}},
        },
    )


async def test_ephemeral_channel_text_and_text_update(slack: FakeSlack, sender: SlackSender):
    """Ephemerals, channel text (the digest) and its edit each map to their method."""
    await sender.send(notice(NoticeKind.EPHEMERAL, channel_id="C0R", user_id="U0B", text="hi"))
    ts = await sender.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="digest"))
    await sender.send(
        notice(NoticeKind.TEXT_UPDATE, channel_id="C0R", message_id=str(ts), text="digest 2")
    )

    assert [c.method for c in slack.calls()] == [
        "chat.postEphemeral",
        "chat.postMessage",
        "chat.update",
    ]
    assert slack.ephemerals[0]["user"] == "U0B"
    assert [m["text"] for m in slack.messages("C0R")] == ["digest 2"]


async def test_rate_limit_is_retryable_with_retry_after(slack: FakeSlack, sender: SlackSender):
    """HTTP 429 becomes a retryable error carrying Slack's Retry-After."""
    slack.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"))

    assert (caught.value.retryable, caught.value.retry_after) == (True, 7.0)
    assert len(slack.calls("chat.postMessage")) == 1  # no retry hidden in the client


@pytest.mark.parametrize(
    ("fault", "retryable", "unauthorized"),
    [
        ({"status": 503}, True, False),
        ({"status": 500}, True, False),
        ({"error": "internal_error"}, True, False),
        ({"error": "invalid_auth"}, True, True),
        ({"error": "token_revoked"}, True, True),
        ({"error": "account_inactive"}, True, True),
        ({"error": "not_authed"}, True, True),
        ({"error": "channel_not_found"}, False, False),
        ({"error": "not_in_channel"}, False, False),
        ({"error": "is_archived"}, False, False),
        ({"error": "msg_too_long"}, False, False),
        ({"error": "missing_scope"}, False, False),
        ({"error": "something_new"}, False, False),
    ],
)
async def test_failures_map_to_delivery_errors(
    slack: FakeSlack,
    sender: SlackSender,
    fault: dict[str, Any],
    retryable: bool,
    unauthorized: bool,
):
    """5xx and transient codes retry, token errors stop the platform, the rest dead-letter."""
    slack.fail_next("*", **fault)

    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"))

    assert (caught.value.retryable, caught.value.unauthorized) == (retryable, unauthorized)
    assert BOT_TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"]
)
@pytest.mark.parametrize(
    ("kind", "lost"),
    [(NoticeKind.CHANNEL_TEXT, True), (NoticeKind.EPHEMERAL, True), (NoticeKind.DIRECT, False)],
)
async def test_a_lost_channel_is_reported_for_channels_not_dms(
    slack: FakeSlack, sender: SlackSender, error: str, kind: NoticeKind, lost: bool
):
    """Slack saying the channel is gone marks it lost; for a DM (the user id as channel) it is
    about one person, and degrades nothing."""
    slack.fail_next("*", error=error)

    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(kind, channel_id="C0R", user_id="U0BOB", text="x"))

    assert (caught.value.retryable, caught.value.channel_lost) == (False, lost)


async def test_other_permanent_errors_are_not_a_lost_channel(slack: FakeSlack, sender: SlackSender):
    """A message-level refusal (too long) is not about the channel."""
    slack.fail_next("*", error="msg_too_long")

    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"))

    assert caught.value.channel_lost is False


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message"])
async def test_editing_a_missing_message_is_permanent(
    slack: FakeSlack, sender: SlackSender, error: str
):
    """An edit of a message that is gone (or not ours) will never work."""
    slack.fail_next("chat.update", error=error)

    with pytest.raises(DeliveryError) as caught:
        await sender.send(
            notice(NoticeKind.POST_UPDATE, channel_id="C0R", message_id="1.2", request=REQUEST)
        )

    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("fault", "maybe_delivered"),
    [
        ({"error": "internal_error"}, True),
        ({"error": "fatal_error"}, True),
        ({"status": 500}, True),
        ({"status": 502}, True),
        ({"status": 504}, True),
        ({"status": 503}, False),
        ({"error": "service_unavailable"}, False),
        ({"error": "request_timeout"}, False),
        ({"error": "channel_not_found"}, False),
    ],
)
async def test_a_server_error_may_have_posted_already(
    slack: FakeSlack, sender: SlackSender, fault: dict[str, Any], maybe_delivered: bool
):
    """Slack documents internal_error and fatal_error as "it's possible some aspect of the
    operation succeeded before the error was raised", and a 5xx from a proxy may come after
    Slack posted: the post is looked for before it is sent again (chat.postMessage has no
    idempotency key), where it used to be sent again blind and could show twice."""
    slack.fail_next("chat.postMessage", **fault)

    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(NoticeKind.RELAY_POST, channel_id="C0R", request=REQUEST))

    assert caught.value.maybe_delivered is maybe_delivered


async def test_timeout_and_connection_errors_are_retryable(slack: FakeSlack):
    """A slow Slack and an unreachable one are both worth another try; only the slow one may
    have posted already."""
    slow = SlackSender(
        AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=0.05, retry_handlers=[])  # type: ignore[arg-type]
    )
    slack.fail_next("chat.postMessage", delay=0.15)
    with pytest.raises(DeliveryError) as slow_error:
        await slow.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"))

    # Port 9 on loopback: nothing listens there, so the connection is refused.
    gone = SlackSender(
        AsyncWebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/", retry_handlers=[])
    )
    with pytest.raises(DeliveryError) as refused:
        await gone.send(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"))

    assert slow_error.value.retryable is True
    assert refused.value.retryable is True
    assert slow_error.value.maybe_delivered is True
    assert refused.value.maybe_delivered is False


async def test_relay_post_without_request_is_dead(sender: SlackSender):
    """A post whose request is missing cannot be rendered: a permanent error, no API call."""
    with pytest.raises(DeliveryError) as caught:
        await sender.send(notice(NoticeKind.RELAY_POST, channel_id="C0R"))

    assert caught.value.retryable is False


async def test_new_messages_carry_their_notice_id_as_metadata(
    slack: FakeSlack, sender: SlackSender
):
    """Relay posts, channel text and DMs say which outbox row they are, so a message whose
    answer was lost can be found again."""
    await sender.send(notice(NoticeKind.RELAY_POST, channel_id="C0R", request=REQUEST))
    await sender.send(replace(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="d"), id=2))
    await sender.send(notice(NoticeKind.DIRECT, user_id="U0ALICE", text="hi"))

    metadata = [c.args.get("metadata") for c in slack.calls("chat.postMessage")]
    assert metadata == [
        {"event_type": METADATA_EVENT, "event_payload": {"notice_id": 1}},
        {"event_type": METADATA_EVENT, "event_payload": {"notice_id": 2}},
        {"event_type": METADATA_EVENT, "event_payload": {"notice_id": 1}},
    ]


async def _found_after_a_timeout(slack: FakeSlack, sent: Notice) -> str | None:
    """Send `sent` through a client that gives up before Slack answers (Slack posts it all the
    same), then look for it."""
    slow = SlackSender(
        AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=0.05, retry_handlers=[])  # type: ignore[arg-type]
    )
    slow.bot_user_id = slack.bot_user_id
    slack.fail_next("chat.postMessage", delay=0.15)
    with pytest.raises(DeliveryError):
        await slow.send(sent)
    await slack.wait_for_call("chat.postMessage")
    return await slow.find(sent)


async def test_a_post_whose_answer_timed_out_is_found_in_the_channel(slack: FakeSlack):
    """Slack posts after the client gave up: `find` reads the channel's history with metadata
    and returns that post's ts."""
    found = await _found_after_a_timeout(
        slack, notice(NoticeKind.RELAY_POST, channel_id="C0R", request=REQUEST)
    )

    [post] = slack.messages("C0R")
    assert found == post["ts"]
    [history] = slack.calls("conversations.history")
    assert history.args["channel"] == "C0R"
    assert history.args["include_all_metadata"] in ("1", "true")


async def test_the_walk_stops_at_an_earlier_post_of_ours(
    slack: FakeSlack, sender: SlackSender, monkeypatch: pytest.MonkeyPatch
):
    """Not there: the first of our posts with a lower notice id ends the search (a channel's
    notices go out in id order), after one page even when the channel has more; another app's
    message with the same metadata is not ours."""
    monkeypatch.setattr(send, "HISTORY_PAGE", 2)
    sender.bot_user_id = slack.bot_user_id
    for n in range(1, 4):
        slack.add_message("C0R", f"older {n}")
    await sender.send(replace(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="d"), id=5))
    impostor = {"event_type": METADATA_EVENT, "event_payload": {"notice_id": 9}}
    slack.add_message("C0R", "other app", user="U0OTHERAPP", metadata=impostor)

    missing = replace(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="x"), id=9)
    assert await sender.find(missing) is None

    assert len(slack.calls("conversations.history")) == 1


async def test_a_dm_whose_answer_timed_out_is_found_in_the_dm(slack: FakeSlack):
    """A DM goes to the user id; to look for it, `find` asks conversations.open for the DM's id
    and reads that conversation's history."""
    found = await _found_after_a_timeout(
        slack, notice(NoticeKind.DIRECT, user_id="U0ALICE", text="hi")
    )

    [opened] = slack.calls("conversations.open")
    channel = opened.response["channel"]["id"]
    [message] = slack.messages(channel)
    assert found == message["ts"]
    [history] = slack.calls("conversations.history")
    assert history.args["channel"] == channel


async def test_without_the_dm_scopes_a_dm_is_sent_again_and_channels_still_looked_in(
    slack: FakeSlack, sender: SlackSender, caplog: pytest.LogCaptureFixture
):
    """An app installed before the manifest asked for im:write and im:history: the DM is sent
    again with a warning, DMs are not looked for again, and channel posts still are."""
    slack.scopes = "channels:history,chat:write,commands,groups:history,reactions:read,users:read"
    dm = notice(NoticeKind.DIRECT, user_id="U0ALICE", text="hi")
    post = replace(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="d"), id=2)
    await sender.send(dm)
    await sender.send(post)

    assert await sender.find(dm) is None
    assert await sender.find(dm) is None
    assert await sender.find(post) == slack.messages("C0R")[0]["ts"]

    assert len(slack.calls("conversations.open")) == 1
    assert [c.args["channel"] for c in slack.calls("conversations.history")] == ["C0R"]
    assert "missing_scope" in caplog.text
    assert "may arrive twice" in caplog.text


async def test_without_the_history_scope_it_is_sent_again_and_not_asked_again(
    slack: FakeSlack, sender: SlackSender, caplog: pytest.LogCaptureFixture
):
    """An app installed before the manifest asked for channels:history answers missing_scope:
    the post is sent again (it may show twice, as before), and Slack is not asked again."""
    slack.scopes = "chat:write,commands,reactions:read,users:read"  # the manifest before
    post = notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="d")
    await sender.send(post)

    assert await sender.find(post) is None
    assert await sender.find(post) is None

    assert len(slack.calls("conversations.history")) == 1
    assert "missing_scope" in caplog.text


async def test_a_failed_lookup_is_retried_not_skipped(slack: FakeSlack, sender: SlackSender):
    """A 5xx while looking says nothing about the post: the lookup fails, to be tried again."""
    slack.fail_next("conversations.history", status=503)

    with pytest.raises(DeliveryError) as caught:
        await sender.find(notice(NoticeKind.CHANNEL_TEXT, channel_id="C0R", text="d"))

    assert caught.value.retryable is True
