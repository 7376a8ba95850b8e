"""Slack: slash commands, reaction events and buttons in; Block Kit posts, DMs and ephemerals out.

`build_slack(settings, clock)` returns the `SlackAdapter` that `bot.app` runs. Modules: `app`
(bolt wiring and the adapter), `web` (aiohttp in front of bolt), `inbound` (payloads to events),
`render` (notices to Block Kit), `send` (the outbox's sender), `admins` (the setup admin check).
"""

from __future__ import annotations

from adapters.slack.app import SlackAdapter, build_slack
from adapters.slack.send import SlackSender

__all__ = ["SlackAdapter", "SlackSender", "build_slack"]
