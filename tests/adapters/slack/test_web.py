"""The request translation in front of bolt: form bodies are parsed by field name, not substring."""

from __future__ import annotations

import json

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.slack.web import FormSafeBoltRequest, form_fields
from tests.fakes import slack_payloads as p
from tests.fakes.fake_slack import sign

FORM = "application/x-www-form-urlencoded"


def test_bolt_itself_loses_a_command_mentioning_payload():
    """The bug being worked around: bolt parses such a slash command as an empty body."""
    body = p.slash_command_body("https://example.com/payload-design").decode()

    assert AsyncBoltRequest(body=body, headers=sign(body.encode(), "s")).body == {}


@pytest.mark.parametrize(
    "text", ["https://example.com/payload-design", "payload", "the payload=1 part", "PAYLOAD?"]
)
def test_command_mentioning_payload_keeps_its_fields(text: str):
    """The corrected request has the slash command's fields and a context built from them."""
    raw = p.slash_command_body(text, trigger_id="1.2.t").decode()

    request = FormSafeBoltRequest(body=raw, headers=sign(raw.encode(), "s"))

    assert request.body["text"] == text
    assert request.body["command"] == "/review"
    assert request.raw_body == raw  # what signature verification checks is untouched
    assert request.context.team_id == p.TEAM_ID
    assert request.context.user_id == p.USER_ID
    assert request.to_copyable().body == request.body


def test_interactive_payload_is_left_to_bolt():
    """A real `payload=` form (a button click) is parsed by bolt as before."""
    raw = p.block_actions_body("review_claim", "1", message_ts="1.2").decode()

    request = FormSafeBoltRequest(body=raw, headers=sign(raw.encode(), "s"))

    assert request.body["type"] == "block_actions"
    assert form_fields(raw, FORM) is None


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (json.dumps({"type": "event_callback", "text": "payload"}), "application/json"),
        ('{"payload": 1}', FORM),
        ("text=no+special+word", FORM),
        ("", FORM),
    ],
)
def test_other_bodies_are_not_touched(raw: str, content_type: str):
    """JSON bodies, and forms without the word, are bolt's business alone."""
    assert form_fields(raw, content_type) is None


def test_socket_mode_bodies_are_not_touched():
    """Socket Mode hands bolt a dict: nothing to correct."""
    payload = p.slash_command_payload("payload")

    request = FormSafeBoltRequest(body=payload, mode="socket_mode")

    assert request.body == payload
