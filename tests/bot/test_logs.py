"""Logging: secrets never reach a log line, context fields ride along, JSON on request."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot import logs


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.configure(level="DEBUG", json_lines=True, secrets=["s3cr3t-signing"], stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


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
