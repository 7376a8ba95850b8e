"""Logging: no secret and no user text reaches a log line; context fields ride along; JSON lines."""

from __future__ import annotations

import functools
import io
import json
import logging
from dataclasses import dataclass

import pytest

from bot import logs
from bot.model import Platform
from tests.logcapture import root_logging_kept


@pytest.fixture
def captured():
    stream = io.StringIO()
    with root_logging_kept():
        logs.configure(level="DEBUG", json_lines=True, secrets=["s3cr3t-signing"], stream=stream)
        yield stream


def test_interaction_tokens_in_discord_urls_are_redacted(captured):
    """discord.py logs the callback URL at DEBUG; the token in its path answers for anyone."""
    logging.getLogger("discord.http").warning(
        "POST https://discord.com/api/v10/interactions/1180000000000000001/aW50ZXJhY3Rpb246MTE4/"
        "callback with None has returned 204; PATCH /webhooks/1180000000000000002/"
        "aW50ZXJhY3Rpb246MTE5?wait=true"
    )
    text = captured.getvalue()
    assert "aW50ZXJhY3Rpb246" not in text
    assert "/interactions/1180000000000000001/[redacted]/callback" in text
    assert "/webhooks/1180000000000000002/[redacted]?wait=true" in text


def test_secrets_and_token_shapes_are_redacted(captured):
    """Configured secrets and anything shaped like a Slack or Discord token are replaced."""
    log = logging.getLogger("test")
    log.warning("secret %s and token xoxb-1234567890-abcdef", "s3cr3t-signing")
    try:
        raise ValueError("xapp-1-A0-123456-deadbeef in a traceback")
    except ValueError:
        log.exception("failed with s3cr3t-signing")
    text = captured.getvalue()
    assert "s3cr3t-signing" not in text
    assert "xoxb-1234567890" not in text
    assert "xapp-1-A0" not in text
    assert text.count(logs.REDACTED) >= 4


def test_bound_context_is_in_every_json_line(captured):
    """Fields bound around a handler (platform, event key) appear in its lines, as JSON."""
    with logs.bind(platform="slack", event_key="Ev1"):
        logging.getLogger("test").info("handled")
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert (line["message"], line["platform"], line["event_key"]) == ("handled", "slack", "Ev1")


def _messages(stream) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


def test_library_payload_keeps_keys_ids_and_codes_but_not_text(captured):
    """A library's DEBUG payload keeps keys, ids and error codes; text values become [text]."""
    body = {
        "ok": False,
        "error": "channel_not_found",
        "channel": "C0REVIEW",
        "ts": "1700000000.000100",
        "text": "Review https://example.com/SECRETDRAFT-123",
        "user": {"id": "U0ZARA", "name": "zara", "profile": {"display_name": "Zara Z"}},
        "headers": {"x-slack-req-id": "3b0f7c1e", "retry-after": "30"},
    }
    logging.getLogger("slack_sdk.web.async_base_client").debug(f"Received: 200, body: {body}")
    (message,) = _messages(captured)
    assert "SECRETDRAFT" not in message
    assert "zara" not in message
    assert "Zara" not in message
    for kept in ("'error': 'channel_not_found'", "'channel': 'C0REVIEW'", "'id': 'U0ZARA'"):
        assert kept in message
    assert "'ts': '1700000000.000100'" in message
    assert "'x-slack-req-id': '3b0f7c1e'" in message
    assert "'text': '[text]'" in message


def test_discord_json_arguments_are_hidden(captured):
    """discord.py's DEBUG lines (a JSON body as an argument, a gateway dict) keep ids only."""
    log = logging.getLogger("discord.http")
    body = json.dumps({"content": "it's https://example.com/x", "allowed_mentions": {"parse": []}})
    log.debug("%s %s with %s has returned %s", "POST", "/channels/123/messages", body, 200)
    event = {"t": "INTERACTION_CREATE", "d": {"id": "1190", "data": {"value": "my note"}}}
    logging.getLogger("discord.gateway").debug("For Shard ID %s: WebSocket Event: %s", None, event)
    http, gateway = _messages(captured)
    assert "example.com" not in http
    assert http.startswith("POST /channels/123/messages with {")
    assert http.endswith("has returned 200")
    assert "my note" not in gateway
    assert "'t': 'INTERACTION_CREATE'" in gateway
    assert "'id': '1190'" in gateway


def test_sql_statements_are_shown_without_their_parameters(captured):
    """aiosqlite's DEBUG lines keep the statement and drop the values bound to it."""
    call = functools.partial(
        print, "INSERT INTO requests (link, note) VALUES (?, ?)", ("https://x.example/d", "note")
    )
    logging.getLogger("aiosqlite").debug("executing %s", call)
    assert _messages(captured) == [
        "executing print INSERT INTO requests (link, note) VALUES (?, ?)"
    ]


@dataclass(frozen=True)
class _Notice:
    id: int
    text: str


def test_own_lines_show_objects_by_type_and_hide_debug_text(captured):
    """Our objects appear by type name; at DEBUG, a string argument that is not one word is text."""
    log = logging.getLogger("bot.delivery")
    notice = _Notice(7, "zz-private-note-zz")
    log.debug("sending %s", notice)
    log.debug(notice)
    log.debug("note %s for %s (%s)", "zz private note", "slack:Ev1", Platform.SLACK)
    log.debug("link %s", "https://example.com/SECRETDRAFT-123")
    assert _messages(captured) == [
        "sending [_Notice]",
        "[_Notice]",
        "note [text] for slack:Ev1 (slack)",
        "link [text]",
    ]


def test_own_operational_lines_stay_readable(captured):
    """Our INFO and WARNING lines keep their numbers, codes, reasons and exception texts."""
    log = logging.getLogger("bot.delivery")
    log.warning(
        "notice %s (%s to %s %s) dead-lettered: %s",
        5,
        "direct",
        Platform.SLACK,
        "U0ZARA",
        "slack chat.postMessage: channel_not_found (HTTP 200)",
    )
    log.warning("failed: %s", ValueError("The server responded with: {'error': 'not_authed'}"))
    assert _messages(captured) == [
        "notice 5 (direct to slack U0ZARA) dead-lettered: "
        "slack chat.postMessage: channel_not_found (HTTP 200)",
        "failed: The server responded with: {'error': 'not_authed'}",
    ]


def test_log_user_text_lets_text_through_but_not_secrets():
    """With LOG_USER_TEXT=true the payloads are logged whole; secrets are still redacted."""
    stream = io.StringIO()
    with root_logging_kept():
        logs.configure(
            level="DEBUG",
            json_lines=True,
            secrets=["s3cr3t-signing"],
            stream=stream,
            user_text=True,
        )
        body = {"text": "zz-private-note-zz", "token": "s3cr3t-signing"}
        logging.getLogger("slack_sdk").debug("body: %s", body)
    assert _messages(stream) == ["body: {'text': 'zz-private-note-zz', 'token': '[redacted]'}"]


def test_a_repeated_failure_is_logged_first_in_full_then_seldom(caplog):
    """The first failure and one of a new kind with its traceback; then every `every`th in a
    row as one line; and once when the job works again, which starts the count over."""
    failures = logs.RepeatedFailure(logging.getLogger("job"), "the job", every=3)
    caplog.set_level(logging.INFO, logger="job")
    full = OSError("disk full")
    for exc in (full, full, full, full, full, full, ValueError("a bug"), ValueError("a bug")):
        failures.failed(exc)
    failures.worked()
    failures.failed(full)
    assert [(r.getMessage(), r.exc_info is not None) for r in caplog.records] == [
        ("the job failed: disk full", True),
        ("the job still failing, 3 in a row: disk full", False),
        ("the job still failing, 6 in a row: disk full", False),
        ("the job failed: a bug", True),
        ("the job works again after 8 failed", False),
        ("the job failed: disk full", True),
    ]
