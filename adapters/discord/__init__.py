"""Discord: `/review` app commands, raw reaction events and buttons in; embeds, edits and DMs out.

`build_discord(settings, clock)` returns the `DiscordAdapter` that `bot.app` runs. Modules:
`adapter` (lifecycle: login, gateway task, ready, stop), `client` (the discord.py client and its
handlers), `slash` (the `/review` subcommands), `sync` (command sync only when changed),
`inbound` (discord.py objects to events), `render` (notices to embeds and buttons), `send` (the
outbox's sender), `reconcile` (reactions missed while disconnected), `backoff` (crash-loop
backoff across restarts), `invite` (the OAuth2 invite URL).
"""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter, DiscordStartError, build_discord
from adapters.discord.send import DiscordSender

__all__ = ["DiscordAdapter", "DiscordSender", "DiscordStartError", "build_discord"]
