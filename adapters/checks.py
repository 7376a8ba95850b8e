"""`reviewrelay check`: can the bot reach what its settings point at? One row per check.

Plain HTTP calls (Slack `auth.test`, Discord `users/@me`) with the configured tokens, so the check
needs neither SDK's start-up and never logs a token.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def check_slack(settings: Settings) -> CheckRow:
    if settings.slack_bot_token is None:
        return CheckRow("slack", True, "not configured (SLACK_BOT_TOKEN unset)")
    url = settings.slack_api_url.rstrip("/") + "/auth.test"
    token = settings.slack_bot_token.get_secret_value()
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(url, headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return CheckRow(
            "slack",
            False,
            f"cannot reach {url}: {type(exc).__name__}",
            "check SLACK_API_URL and the network",
        )
    if not body.get("ok"):
        error = body.get("error", f"HTTP {response.status}")
        return CheckRow(
            "slack",
            False,
            f"auth.test said {error}",
            "copy the Bot User OAuth Token (xoxb-...) into SLACK_BOT_TOKEN",
        )
    return CheckRow("slack", True, f"workspace {body.get('team')} as {body.get('user')}")


async def check_discord(settings: Settings) -> CheckRow:
    if settings.discord_bot_token is None:
        return CheckRow("discord", True, "not configured (DISCORD_BOT_TOKEN unset)")
    url = settings.discord_api_url.rstrip("/") + "/users/@me"
    token = settings.discord_bot_token.get_secret_value()
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.get(url, headers={"Authorization": f"Bot {token}"}) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return CheckRow(
            "discord",
            False,
            f"cannot reach {url}: {type(exc).__name__}",
            "check DISCORD_API_URL and the network",
        )
    if response.status != 200:  # noqa: PLR2004 - HTTP OK
        return CheckRow(
            "discord",
            False,
            f"users/@me answered {response.status}",
            "reset the bot token in the Developer Portal and set DISCORD_BOT_TOKEN",
        )
    return CheckRow("discord", True, f"logged in as {body.get('username')}")
