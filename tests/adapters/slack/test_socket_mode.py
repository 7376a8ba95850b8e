"""Socket Mode: with an app token the adapter connects a websocket instead of serving a route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import SlackAdapter, build_slack
from bot.app import Core, build_core
from bot.errors import ConfigError
from bot.model import Platform
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import (
    APP_TOKEN,
    BOB,
    REVIEW_CHANNEL,
    BrokenInbox,
    slack_settings,
)
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack


@pytest.fixture
async def running(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[tuple[SlackAdapter, Core]]:
    # No signing secret: Socket Mode needs none (Slack authenticates the websocket instead).
    settings = slack_settings(tmp_path, slack, slack_app_token=APP_TOKEN, slack_signing_secret=None)
    adapter = build_slack(settings, clock)
    store = await SqliteStore.open(settings.database_path)
    core = build_core(settings, store, {Platform.SLACK: adapter.sender}, clock)
    try:
        await adapter.start(core.dispatcher)
        yield adapter, core
    finally:
        await adapter.stop()
        await store.close()


async def test_slash_command_envelope_is_acked_with_the_reply(
    slack: FakeSlack, running: tuple[SlackAdapter, Core]
):
    """A slash command over the socket is acked with the ephemeral reply in the envelope ack."""
    adapter, _ = running
    payload = p.slash_command_payload("volunteer python", user_id=BOB[0], user_name=BOB[1])

    ack = await slack.push_socket_envelope("slash_commands", payload)

    assert ack["payload"] == {
        "text": "You will hear about requests on: python.",
        "response_type": "ephemeral",
    }
    assert adapter.connected
    assert adapter.routes() == []
    assert slack.calls("apps.connections.open")[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"


async def test_retried_event_envelope_is_processed_once(
    slack: FakeSlack, running: tuple[SlackAdapter, Core]
):
    """An events_api envelope retried with the same event_id claims once."""
    _, core = running
    volunteer = p.slash_command_payload("volunteer go", user_id=BOB[0], user_name=BOB[1])
    await slack.push_socket_envelope("slash_commands", volunteer)
    ask = p.slash_command_payload("https://example.com/d #go", user_id="U0ALICE")
    await slack.push_socket_envelope("slash_commands", ask)
    await core.worker.drain()
    ts = slack.messages(REVIEW_CHANNEL)[0]["ts"]
    event = p.reaction_event(user=BOB[0], channel=REVIEW_CHANNEL, ts=ts)
    envelope = p.event_callback_payload(event, event_id="Ev0SOCKET1")

    first = await slack.push_socket_envelope("events_api", envelope)
    retried = await slack.push_socket_envelope(
        "events_api", envelope, retry_attempt=1, retry_reason="timeout"
    )
    await core.worker.drain()

    assert "payload" not in first
    assert "payload" not in retried
    assert len(slack.calls("chat.update")) == 1
    assert [c.args["channel"] for c in slack.calls("chat.postMessage")][-1] == "U0ALICE"


async def test_done_form_over_the_socket(slack: FakeSlack, running: tuple[SlackAdapter, Core]):
    """Done opens the form and its submission completes the request, acked with "clear"."""
    _, core = running
    await slack.push_socket_envelope("slash_commands", p.slash_command_payload("https://x.org/d"))
    await core.worker.drain()
    ts = slack.messages(REVIEW_CHANNEL)[0]["ts"]
    claim = p.block_actions_payload("review_claim", "1", user_id=BOB[0], message_ts=ts)
    await slack.push_socket_envelope("interactive", claim)
    done = p.block_actions_payload("review_done", "1", user_id=BOB[0], message_ts=ts)

    await slack.push_socket_envelope("interactive", done)
    [form] = slack.views()
    values = {"response": {"response": {"type": "plain_text_input", "value": "all good"}}}
    submission = p.view_submission_payload(
        form["callback_id"],
        values,
        user_id=BOB[0],
        view_id=form["id"],
        private_metadata=form["private_metadata"],
    )
    ack = await slack.push_socket_envelope("interactive", submission)

    assert ack["payload"] == {"response_action": "clear"}
    request = await core.store.run(lambda tx: tx.request(1))
    assert request is not None
    assert (request.status, request.response) == ("done", "all good")


async def test_stop_disconnects(slack: FakeSlack, running: tuple[SlackAdapter, Core]):
    """After stop the adapter reports itself disconnected (for /healthz)."""
    adapter, _ = running

    await adapter.stop()

    assert not adapter.connected


async def test_rejected_app_token_is_a_config_error(tmp_path: Path, clock: FakeClock):
    """A wrong xapp- token stops the bot with one line instead of reconnecting forever."""
    async with FakeSlack(app_token="xapp-another") as slack:
        settings = slack_settings(tmp_path, slack, slack_app_token=APP_TOKEN)
        adapter = build_slack(settings, clock)

        with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN: .*invalid_auth"):
            await adapter.start(BrokenInbox())

    assert not adapter.connected
