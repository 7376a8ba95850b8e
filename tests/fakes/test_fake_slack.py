"""Proves FakeSlack speaks the wire protocol the real slack-sdk and slack-bolt expect.

Owns the contract tests for tests/fakes/fake_slack.py: every test drives a real SDK client
(AsyncWebClient, bolt AsyncApp over HTTP, AsyncSocketModeHandler) against 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.fake_slack import FakeSlack, serve_bolt_app, sign
from tests.fakes.slack_payloads import (
    block_actions_body,
    event_callback_body,
    event_callback_payload,
    reaction_event,
    slash_command_body,
    slash_command_payload,
    url_verification_body,
    view_submission_payload,
)

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
SECRET = "signing-secret"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


def make_app(slack: FakeSlack) -> AsyncApp:
    return AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url),
        signing_secret=SECRET,
        process_before_response=True,
    )


async def post_signed(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


# ---- Web API -----------------------------------------------------------------------------------


async def test_post_then_update_is_recorded_and_reflected_in_state(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0001", text="review please")
    first_ts = posted["ts"]
    updated = await client.chat_update(channel="C0001", ts=first_ts, text="claimed by bob")
    second = await client.chat_postMessage(channel="C0001", text="another")

    assert posted["message"]["text"] == "review please"
    assert posted["message"]["bot_id"] == "B0BOT"
    assert updated["ts"] == first_ts
    assert second["ts"] > first_ts
    assert [c.method for c in slack.calls()] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]
    call = slack.calls("chat.update")[0]
    assert call.args == {"channel": "C0001", "ts": first_ts, "text": "claimed by bob"}
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.token == BOT_TOKEN
    assert [m["text"] for m in slack.messages("C0001")] == ["claimed by bob", "another"]
    assert "edited" in slack.messages("C0001")[0]


async def test_history_pages_newest_first_with_metadata_on_request(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """conversations.history as Slack documents it: top-level messages newest first, `limit` a
    page and a `next_cursor` while `has_more`, metadata only with `include_all_metadata`."""
    tagged = {"event_type": "x_tagged", "event_payload": {"n": 1}}
    first = await client.chat_postMessage(channel="C1", text="one", metadata=tagged)
    await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])
    for text in ("two", "three"):
        await client.chat_postMessage(channel="C1", text=text)

    page = await client.conversations_history(channel="C1", limit=2)
    rest = await client.conversations_history(
        channel="C1", limit=2, cursor=page["response_metadata"]["next_cursor"]
    )
    with_metadata = await client.conversations_history(channel="C1", include_all_metadata=True)

    assert [m["text"] for m in page["messages"]] == ["three", "two"]
    assert (page["has_more"], rest["has_more"]) == (True, False)
    assert [m["text"] for m in rest["messages"]] == ["one"]
    assert "metadata" not in rest["messages"][0]
    assert with_metadata["messages"][-1]["metadata"] == tagged


async def test_update_of_unknown_message_fails_like_slack(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        await client.chat_update(channel="C0001", ts="1.000001", text="x")
    assert excinfo.value.response.status_code == 200
    assert excinfo.value.response["error"] == "message_not_found"


async def test_strict_workspace_rejects_unknown_channel() -> None:
    async with FakeSlack(strict=True) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await client.chat_postMessage(channel="C0NOPE", text="x")
        slack.add_channel("C0YES")
        assert (await client.chat_postMessage(channel="C0YES", text="x"))["ok"]


async def test_dm_reactions_blocks_and_views_round_trip(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    opened = await client.conversations_open(users="U0ALICE")
    again = await client.conversations_open(users=["U0ALICE"])
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    assert again["channel"]["id"] == dm

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    posted = await client.chat_postMessage(channel=dm, text="hi", blocks=blocks)
    await client.reactions_add(channel=dm, timestamp=posted["ts"], name="eyes")
    got = await client.reactions_get(channel=dm, timestamp=posted["ts"])
    assert got["message"]["reactions"] == [{"name": "eyes", "users": ["U0BOT"], "count": 1}]
    assert got["message"]["blocks"] == blocks
    # reactions.add travels in the query string, not the body
    assert slack.calls("reactions.add")[0].args["name"] == "eyes"

    user = await client.users_info(user="U0ALICE")
    assert user["user"]["id"] == "U0ALICE"
    assert "tz" in user["user"]

    view = {
        "type": "modal",
        "callback_id": "review",
        "title": {"type": "plain_text", "text": "R"},
        "blocks": [],
    }
    opened_view = await client.views_open(trigger_id="1.2.abc", view=view)
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        await client.views_open(trigger_id="1.2.abc", view=view)
    v = opened_view["view"]
    updated = await client.views_update(
        view_id=v["id"], hash=v["hash"], view=view | {"blocks": [{"type": "divider"}]}
    )
    assert updated["view"]["blocks"] == [{"type": "divider"}]
    eph = await client.chat_postEphemeral(channel="C0001", user="U0ALICE", text="only you")
    assert eph["message_ts"]
    await client.chat_delete(channel=dm, ts=posted["ts"])
    assert slack.messages(dm) == []


# ---- auth and fault injection -------------------------------------------------------------------


async def test_ratelimit_then_recovery(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=2)
    with pytest.raises(SlackApiError) as excinfo:
        await client.chat_postMessage(channel="C0001", text="hi")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "2"
    assert excinfo.value.response["error"] == "ratelimited"

    assert (await client.chat_postMessage(channel="C0001", text="hi"))["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]


@pytest.mark.parametrize(
    ("status", "error", "expected_status", "expected_error"),
    [
        (503, None, 503, "service_unavailable"),
        (500, None, 500, "internal_error"),
        (None, "channel_not_found", 200, "channel_not_found"),
    ],
)
async def test_fail_next_variants(
    slack: FakeSlack,
    client: AsyncWebClient,
    *,
    status: int | None,
    error: str | None,
    expected_status: int,
    expected_error: str,
) -> None:
    slack.fail_next("*", status=status, error=error)
    with pytest.raises(SlackApiError) as excinfo:
        await client.chat_postMessage(channel="C0001", text="hi")
    assert excinfo.value.response.status_code == expected_status
    assert excinfo.value.response["error"] == expected_error


async def test_delay_simulates_slow_slack(slack: FakeSlack) -> None:
    slack.fail_next("auth.test", delay=0.2)
    impatient = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=0.05)  # type: ignore[arg-type]
    with pytest.raises(asyncio.TimeoutError):
        await impatient.auth_test()


@pytest.mark.parametrize(
    ("token", "error"),
    [("xoxb-wrong", "invalid_auth"), (None, "not_authed"), (APP_TOKEN, "not_allowed_token_type")],
)
async def test_bad_tokens(slack: FakeSlack, token: str | None, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        await AsyncWebClient(token=token, base_url=slack.api_url).auth_test()
    assert excinfo.value.response.status_code == 200
    assert excinfo.value.response["error"] == error


async def test_revoked_token(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.set_token_revoked(True)
    with pytest.raises(SlackApiError, match="token_revoked"):
        await client.chat_postMessage(channel="C0001", text="hi")
    slack.set_token_revoked(False)
    assert (await client.auth_test())["user_id"] == "U0BOT"


async def test_wait_for_call_times_out_with_context(slack: FakeSlack) -> None:
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for_call("chat.postMessage", timeout=0.05)


# ---- bolt over HTTP ----------------------------------------------------------------------------


async def test_bolt_http_slash_command_is_verified_and_acked(slack: FakeSlack) -> None:
    app = make_app(slack)

    @app.command("/review")
    async def review(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"queued: {command['text']}")

    body = slash_command_body("pls look at my essay", trigger_id="1.2.trig")
    async with serve_bolt_app(app) as url, aiohttp.ClientSession() as http:
        # Over HTTP bolt answers a string ack as text/plain; Slack shows it as the reply.
        status, text = await post_signed(http, url, body, sign(body, SECRET))
        assert (status, text) == (200, "queued: pls look at my essay")

        forged = await post_signed(http, url, body, sign(body, "not-the-secret"))
        stale = sign(body, SECRET, timestamp=int(time.time()) - 600)
        assert forged[0] == 401
        assert (await post_signed(http, url, body, stale))[0] == 401

        again, _ = await post_signed(http, url, body, sign(body, SECRET))
        assert again == 200
    # bolt caches auth.test for the app's lifetime after the first authorized request
    assert len(slack.calls("auth.test")) == 1


async def test_bolt_http_reaction_event_and_url_verification(slack: FakeSlack) -> None:
    app = make_app(slack)
    seen: list[dict[str, Any]] = []

    @app.event("reaction_added")
    async def on_reaction(event: dict[str, Any]) -> None:
        seen.append(event)

    event = reaction_event(
        user="U0ALICE",
        reaction="eyes",
        channel="C0001",
        ts="1700000000.000100",
        item_user="U0BOT",
        event_ts="1700000001.000200",
    )
    body = event_callback_body(event, event_id="Ev0001", team_id="T0001")
    challenge = url_verification_body("chal-123")
    async with serve_bolt_app(app) as url, aiohttp.ClientSession() as http:
        assert (await post_signed(http, url, body, sign(body, SECRET)))[0] == 200
        status, text = await post_signed(http, url, challenge, sign(challenge, SECRET))
    assert seen == [event]
    assert seen[0]["item"] == {"type": "message", "channel": "C0001", "ts": "1700000000.000100"}
    assert (status, text) == (200, '{"challenge": "chal-123"}')


async def test_bolt_http_block_action_reaches_listener(slack: FakeSlack) -> None:
    app = make_app(slack)
    clicked: list[str] = []

    @app.action("claim")
    async def on_claim(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        clicked.append(body["actions"][0]["value"])

    payload = block_actions_body("claim", "req-42", message_ts="1700000000.000100")
    async with serve_bolt_app(app) as url, aiohttp.ClientSession() as http:
        assert (await post_signed(http, url, payload, sign(payload, SECRET)))[0] == 200
    assert clicked == ["req-42"]


async def test_bolt_respond_posts_to_the_fakes_response_url(slack: FakeSlack) -> None:
    app = make_app(slack)

    @app.command("/review")
    async def review(ack: Any, respond: Any) -> None:
        await ack()
        await respond(text="posted to the channel", response_type="in_channel")

    body = slash_command_body("essay", response_url=slack.response_url())
    async with serve_bolt_app(app) as url, aiohttp.ClientSession() as http:
        assert (await post_signed(http, url, body, sign(body, SECRET)))[0] == 200
    [call] = await slack.wait_for_call("response_url")
    assert call.args == {"text": "posted to the channel", "response_type": "in_channel"}


@pytest.mark.xfail(
    raises=AssertionError,
    reason="slack-bolt 1.30 parse_body: a form body containing the substring 'payload' is "
    "taken for interactivity, finds no payload field and becomes {} -> 404 unhandled request",
)
async def test_bolt_http_slash_command_mentioning_payload(slack: FakeSlack) -> None:
    app = make_app(slack)

    @app.command("/review")
    async def review(ack: Any) -> None:
        await ack("ok")

    body = slash_command_body("the payload section needs eyes")
    async with serve_bolt_app(app) as url, aiohttp.ClientSession() as http:
        assert (await post_signed(http, url, body, sign(body, SECRET)))[0] == 200


# ---- Socket Mode -------------------------------------------------------------------------------


async def test_socket_mode_handler_receives_envelopes_and_acks(slack: FakeSlack) -> None:
    app = make_app(slack)
    reactions: list[dict[str, Any]] = []

    @app.command("/review")
    async def review(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"queued: {command['text']}")

    @app.event("reaction_added")
    async def on_reaction(event: dict[str, Any]) -> None:
        reactions.append(event)

    @app.view("review_modal")
    async def on_submit(ack: Any) -> None:
        await ack(response_action="errors", errors={"b": "required"})

    # The handler reuses app.client for apps.connections.open, so base_url reaches the fake.
    handler = AsyncSocketModeHandler(app, app_token=APP_TOKEN)
    hello: list[dict[str, Any]] = []

    async def on_message(_client: Any, message: dict[str, Any], _raw: str | None) -> None:
        if message.get("type") == "hello":
            hello.append(message)

    handler.client.message_listeners.append(on_message)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
        ack = await slack.push_socket_envelope("slash_commands", slash_command_payload("essay"))
        assert ack["payload"] == {"text": "queued: essay"}

        event = reaction_event(ts="1700000000.000100")
        ack = await slack.push_socket_envelope("events_api", event_callback_payload(event))
        assert "payload" not in ack
        assert reactions == [event]
        assert hello[0]["connection_info"] == {"app_id": "A0APP"}

        submission = view_submission_payload("review_modal", {"b": {"a": {"value": ""}}})
        ack = await slack.push_socket_envelope("interactive", submission)
        assert ack["payload"] == {"response_action": "errors", "errors": {"b": "required"}}

        # Slack asks clients to refresh their connection; the SDK opens a new URL and reconnects.
        await slack.disconnect_socket()
        await slack.wait_for_socket(count=2)
        ack = await slack.push_socket_envelope("slash_commands", slash_command_payload("again"))
        assert ack["payload"] == {"text": "queued: again"}
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
    opens = slack.calls("apps.connections.open")
    assert len(opens) == 2
    assert opens[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"
