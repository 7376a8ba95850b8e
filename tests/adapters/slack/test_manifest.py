"""slack/manifest.yml and the adapter agree: the events, the command and the URL path."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.slack import app

MANIFEST = (Path(__file__).resolve().parents[3] / "slack" / "manifest.yml").read_text("utf-8")


def _list_under(key: str) -> list[str]:
    """The `- item` lines right under `key:` (the manifest is plain YAML; no parser needed)."""
    block = re.search(rf"^(\s*){key}:\n((?:\1\s+(?:-.*|#.*)\n)+)", MANIFEST, re.MULTILINE)
    assert block is not None, key
    return re.findall(r"^\s+-\s+([\w:.]+)", block.group(2), re.MULTILINE)


def test_every_subscribed_event_has_a_listener():
    """An event without a listener gets a 404, which Slack retries: the lists must match."""
    assert sorted(_list_under("bot_events")) == sorted(app.EVENTS)


def test_command_and_urls_point_at_the_adapter():
    """The slash command is /review and every request URL is the adapter's one route."""
    assert f"- command: {app.COMMAND}\n" in MANIFEST
    urls = re.findall(r"(?:url|request_url): (\S+)", MANIFEST)
    assert len(urls) == 3
    assert all(u == f"https://YOUR-HOST{app.EVENTS_PATH}" for u in urls)


def test_scopes_are_the_few_the_adapter_uses():
    """Only the scopes the adapter needs are requested."""
    assert sorted(_list_under("bot")) == [
        "channels:history",
        "chat:write",
        "commands",
        "groups:history",
        "im:history",
        "im:write",
        "reactions:read",
        "users:read",
    ]
