"""Slack: slash commands, reaction events and buttons in; Block Kit posts, DMs and ephemerals out.

`build_slack(settings, clock)` returns the `SlackAdapter` that `bot.app` runs. Modules: `adapter`
(lifecycle: auth.test, Socket Mode or HTTP routes), `app` (the bolt listeners, the Done form),
`web` (aiohttp in front of bolt), `inbound` (payloads to events), `render` (notices and the Done
form to Block Kit), `send` (the outbox's sender), `users` (cached users.info: admin rights, names).
"""

from __future__ import annotations

from adapters.slack.adapter import SlackAdapter, build_slack
from adapters.slack.send import SlackSender

__all__ = ["SlackAdapter", "SlackSender", "build_slack"]
