"""`reviewrelay discord-invite`: the OAuth2 URL adding the bot to a server, with the least rights.

Permissions, and why: View Channel and Read Message History (read the review channel and fetch a
relay post's reactions when reconciling), Send Messages and Embed Links (relay posts are embeds),
Use Application Commands (`/review`). Not Add Reactions: the bot never reacts itself (people
react; buttons do the rest). Not Mention Everyone: the bot pings individual volunteers only.
DMs need no guild permission. The application id comes from logging in over HTTP (no gateway).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

import discord
import discord.http

from bot.errors import ConfigError
from bot.settings import Settings

AUTHORIZE_URL: Final = "https://discord.com/oauth2/authorize"
SCOPES: Final = ("bot", "applications.commands")
PERMISSIONS: Final = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    read_message_history=True,
    use_application_commands=True,
)


def invite_url(application_id: int, permissions: discord.Permissions = PERMISSIONS) -> str:
    query = urlencode(
        {"client_id": application_id, "scope": " ".join(SCOPES), "permissions": permissions.value}
    )
    return f"{AUTHORIZE_URL}?{query}"


async def fetch_application_id(settings: Settings) -> int:
    """Log in over REST only (GET /users/@me, /oauth2/applications/@me) and return the app id."""
    token = settings.discord_bot_token
    if token is None:
        msg = "DISCORD_BOT_TOKEN: required for discord-invite"
        raise ConfigError(msg)
    previous = discord.http.Route.BASE
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(token.get_secret_value())
    except discord.LoginFailure:
        msg = "DISCORD_BOT_TOKEN: Discord rejected the token (401)"
        raise ConfigError(msg) from None
    finally:
        await client.close()
        discord.http.Route.BASE = previous
    if client.application_id is None:
        msg = "DISCORD_BOT_TOKEN: Discord returned no application for this token"
        raise ConfigError(msg)
    return client.application_id


async def discord_invite(settings: Settings) -> str:
    """The invite URL for the bot the settings' token belongs to."""
    return invite_url(await fetch_application_id(settings))
