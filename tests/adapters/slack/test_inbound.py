"""Slack payloads, shaped as Slack documents them, become the right model events (or None)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.slack import inbound
from bot.model import ButtonAction, Platform
from tests.fakes import slack_payloads as p

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_slash_command_becomes_command_received():
    """A slash command is keyed by its trigger_id and names its team, user and channel."""
    body = p.slash_command_payload(
        "https://example.com/draft #python", trigger_id="13345224609.738474920.8088930838d88f008e0"
    )

    event = inbound.parse_slash_command(body, received_at=AT)

    assert event.event_key == "slack:command:13345224609.738474920.8088930838d88f008e0"
    assert (event.member.platform, event.member.community_id) == (Platform.SLACK, p.TEAM_ID)
    assert (event.member.user_id, event.member.display_name) == (p.USER_ID, p.USER_NAME)
    assert event.channel_id == p.CHANNEL_ID
    assert event.text == "https://example.com/draft #python"
    assert event.received_at == AT
    assert event.is_admin is False


@pytest.mark.parametrize(
    ("sent", "typed"),
    [
        ("https://example.com/?a=1&amp;b=2 Q&amp;A", "https://example.com/?a=1&b=2 Q&A"),
        ("&lt;!channel&gt; please", "<!channel> please"),
        ("&amp;lt;literal", "&lt;literal"),
        (
            "<https://example.com/draft?x=1&amp;y=2|example.com/draft> #go",
            "https://example.com/draft?x=1&y=2 #go",
        ),
        ("<https://example.com/draft> #go", "https://example.com/draft #go"),
    ],
)
def test_slash_command_text_is_what_the_person_typed(sent: str, typed: str):
    """Slack's entity escaping and link markup are undone, so the core sees the real text."""
    event = inbound.parse_slash_command(p.slash_command_payload(sent), received_at=AT)

    assert event.text == typed


def test_slash_command_with_missing_fields_does_not_raise():
    """A payload without the usual fields still parses, with empty values and a unique key."""
    event = inbound.parse_slash_command({"team_id": "T1", "user_id": "U1"}, received_at=AT)

    assert event.text == ""
    assert event.event_key.startswith("slack:command:T1:U1:")


def test_reaction_with_skin_tone_is_claim_emoji():
    """A skin-tone suffix is dropped and the key is the envelope's event_id."""
    event = p.reaction_event(reaction="eyes::skin-tone-2", ts="1700000000.000100", user="U0BOB")
    body = p.event_callback_payload(event, event_id="Ev0123ABC")

    parsed = inbound.parse_reaction(body, received_at=AT, bot_user_id=p.BOT_USER_ID)

    assert parsed is not None
    assert parsed.emoji == "eyes"
    assert parsed.event_key == "slack:event:Ev0123ABC"
    assert (parsed.channel_id, parsed.message_id) == (p.CHANNEL_ID, "1700000000.000100")
    assert (parsed.member.community_id, parsed.member.user_id) == (p.TEAM_ID, "U0BOB")
    assert parsed.added is True
    assert parsed.reply_inline is False


@pytest.mark.parametrize(
    ("changes", "team"),
    [
        ({"team_id": "T0HOST"}, p.TEAM_ID),  # a Slack Connect channel another org created
        ({"authorizations": []}, p.TEAM_ID),  # no authorizations: the top-level team_id
    ],
)
def test_reaction_is_credited_to_the_installed_workspace(changes: dict, team: str):
    """The member's workspace is our install (`authorizations[0]`), not the channel's host."""
    event = p.reaction_event(ts="1700000000.000100", user="U0BOB")
    body = p.event_callback_payload(event) | changes

    parsed = inbound.parse_reaction(body, received_at=AT, bot_user_id=p.BOT_USER_ID)

    assert parsed is not None
    assert parsed.member.community_id == team


def test_reaction_removed_is_not_added():
    """reaction_removed parses as a removal."""
    event = p.reaction_event("reaction_removed", ts="1700000000.000100")

    parsed = inbound.parse_reaction(p.event_callback_payload(event), received_at=AT)

    assert parsed is not None
    assert parsed.added is False


def test_reaction_carries_event_ts_as_an_exact_decimal():
    """event_ts orders a user's reactions: kept to the digit, as a Decimal, not a float."""
    event = p.reaction_event(ts="1700000000.000100", event_ts="1700000001.0000002")

    parsed = inbound.parse_reaction(p.event_callback_payload(event), received_at=AT)

    assert parsed is not None
    assert parsed.occurred_at == Decimal("1700000001.0000002")


@pytest.mark.parametrize("raw", ["", "soon", "NaN", "Infinity"])
def test_reaction_without_a_usable_event_ts_is_unordered(raw):
    """A missing or odd event_ts leaves the reaction unordered rather than dropping it."""
    event = p.reaction_event(ts="1700000000.000100")
    event["event_ts"] = raw

    parsed = inbound.parse_reaction(p.event_callback_payload(event), received_at=AT)

    assert parsed is not None
    assert parsed.occurred_at is None


def test_reaction_on_a_file_is_ignored():
    """Only reactions on messages can claim: a file reaction is not ours."""
    event = p.reaction_event(ts="1700000000.000100")
    event["item"] = {"type": "file", "file": "F0123"}

    assert inbound.parse_reaction(p.event_callback_payload(event), received_at=AT) is None


def test_bots_own_reaction_is_ignored():
    """The bot's own reactions never count as claims."""
    event = p.reaction_event(ts="1700000000.000100", user=p.BOT_USER_ID)
    body = p.event_callback_payload(event)

    assert inbound.parse_reaction(body, received_at=AT, bot_user_id=p.BOT_USER_ID) is None


def test_reaction_on_someone_elses_message_is_ignored():
    """Relay posts are the bot's: a reaction on a person's message never reaches the store."""
    event = p.reaction_event(ts="1700000000.000100", item_user="U0SOMEONE")
    body = p.event_callback_payload(event)

    assert inbound.parse_reaction(body, received_at=AT, bot_user_id=p.BOT_USER_ID) is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event": "not a dict"},
        {"event_id": "Ev1", "event": {"type": "message", "text": "hi"}},
        {"event": {"type": "reaction_added", "user": "U1", "reaction": "eyes", "item": {}}},
    ],
)
def test_unexpected_event_shapes_are_ignored(body: dict):
    """Anything that is not a complete reaction envelope gives None, never an exception."""
    assert inbound.parse_reaction(body, received_at=AT) is None


def test_block_action_becomes_button_pressed():
    """A Done click names the request, the post and the clicker; its reply goes out later."""
    body = p.block_actions_payload(
        "review_done", "42", user_id="U0BOB", user_name="bob", message_ts="1700000000.000100"
    )

    parsed = inbound.parse_block_action(body, received_at=AT)

    assert parsed is not None
    assert (parsed.action, parsed.request_id) == (ButtonAction.DONE, 42)
    assert (parsed.channel_id, parsed.message_id) == (p.CHANNEL_ID, "1700000000.000100")
    assert (parsed.member.user_id, parsed.member.display_name) == ("U0BOB", "bob")
    assert parsed.event_key == f"slack:action:{body['trigger_id']}"
    assert parsed.reply_inline is False


@pytest.mark.parametrize(
    ("action_id", "value"),
    [("review_claim", "not-a-number"), ("other_button", "42"), ("review_claim", "1" * 12)],
)
def test_foreign_or_malformed_block_actions_are_ignored(action_id: str, value: str):
    """Buttons that are not ours, or carry no request id, give None."""
    body = p.block_actions_payload(action_id, value, message_ts="1700000000.000100")

    assert inbound.parse_block_action(body, received_at=AT) is None


def test_every_button_action_has_an_action_id():
    """Each ButtonAction maps to a review_* action_id, and back."""
    for action in ButtonAction:
        body = p.block_actions_payload(
            inbound.ACTION_IDS[action], "7", message_ts="1700000000.000100"
        )
        parsed = inbound.parse_block_action(body, received_at=AT)
        assert parsed is not None
        assert parsed.action is action


def done_form(metadata: str, value: str | None, **kwargs) -> dict:
    values = {"response": {"response": {"type": "plain_text_input", "value": value}}}
    return p.view_submission_payload(
        "review_done", values, private_metadata=metadata, view_id="V0FORM01", **kwargs
    )


def test_done_form_becomes_a_done_press_with_the_response():
    """The submitted form is a DONE for the request and post its metadata names, keyed by view."""
    body = done_form(
        '{"request_id":42,"channel":"C0REVIEW","ts":"1700000000.000100"}',
        "See my comments:\n\u202ehttps://docs.example/c1\u202c\n",
        user_id="U0BOB",
        user_name="bob",
    )

    parsed = inbound.parse_view_submission(body, received_at=AT)

    assert parsed is not None
    assert (parsed.action, parsed.request_id) == (ButtonAction.DONE, 42)
    assert (parsed.channel_id, parsed.message_id) == ("C0REVIEW", "1700000000.000100")
    assert parsed.response == "See my comments: https://docs.example/c1"
    assert (parsed.member.user_id, parsed.member.display_name) == ("U0BOB", "bob")
    assert parsed.event_key == "slack:view:V0FORM01"
    assert parsed.reply_inline is False


def test_blank_done_form_has_an_empty_response():
    """Slack sends null for an optional input left empty."""
    body = done_form('{"request_id":1,"channel":"C0REVIEW","ts":"1.2"}', None)

    parsed = inbound.parse_view_submission(body, received_at=AT)

    assert parsed is not None
    assert parsed.response == ""


def test_long_response_is_cut_to_the_limit():
    """Slack enforces max_length in the form; the parser bounds it anyway."""
    body = done_form('{"request_id":1,"channel":"C0REVIEW","ts":"1.2"}', "x" * 5000)

    parsed = inbound.parse_view_submission(body, received_at=AT)

    assert parsed is not None
    assert len(parsed.response) == 1000


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "not json",
        "[1, 2]",
        '{"request_id":"1","channel":"C0REVIEW","ts":"1.2"}',
        '{"request_id":true,"channel":"C0REVIEW","ts":"1.2"}',
        '{"request_id":0,"channel":"C0REVIEW","ts":"1.2"}',
        '{"request_id":1,"ts":"1.2"}',
    ],
)
def test_done_form_without_a_valid_request_is_ignored(metadata: str):
    """Metadata that does not name a request (never ours) gives None."""
    assert inbound.parse_view_submission(done_form(metadata, "hi"), received_at=AT) is None


def test_other_forms_are_ignored():
    """A view with another callback_id is not the Done form."""
    body = p.view_submission_payload("something_else", {}, private_metadata='{"request_id":1}')

    assert inbound.parse_view_submission(body, received_at=AT) is None
