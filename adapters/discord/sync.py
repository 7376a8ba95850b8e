"""Command sync only when the definitions changed.

A sync is a full overwrite (`PUT .../commands`) and Discord allows about 200 a day per guild, so
syncing blindly on every start turns a crash loop into a lockout. The adapter has no store to keep
a hash in, and a hash in a file would miss commands deleted or changed from elsewhere: instead it
reads the commands Discord has (one GET) and compares them with ours, field by field, after
filling in the defaults Discord leaves out of its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)

_OPTION_DEFAULTS: dict[str, Any] = {
    "required": False,
    "autocomplete": False,
    "choices": [],
    "options": [],
    "channel_types": [],
    "min_value": None,
    "max_value": None,
    "min_length": None,
    "max_length": None,
}


def _option(option: Mapping[str, Any]) -> dict[str, Any]:
    data = {"type": option.get("type"), "name": option.get("name")}
    data["description"] = option.get("description", "")
    for key, default in _OPTION_DEFAULTS.items():
        value = option.get(key)
        data[key] = default if value is None else value
    data["choices"] = [(c.get("name"), c.get("value")) for c in data["choices"] or []]
    data["options"] = [_option(o) for o in data["options"] or []]
    return data


def canonical(command: Mapping[str, Any], *, global_scope: bool) -> dict[str, Any]:
    """The fields of a command definition that matter, with Discord's defaults filled in."""
    permissions = command.get("default_member_permissions")
    data: dict[str, Any] = {
        "name": command.get("name"),
        "type": command.get("type") or 1,
        "description": command.get("description", ""),
        "options": [_option(o) for o in command.get("options") or []],
        "default_member_permissions": None if permissions is None else str(permissions),
        "nsfw": bool(command.get("nsfw")),
    }
    if global_scope:
        # Only global commands honour these; Discord may echo anything for guild commands.
        for key in ("contexts", "integration_types"):
            value = command.get(key)
            data[key] = sorted(value) if value is not None else None
    return data


def same_commands(
    ours: Iterable[Mapping[str, Any]], theirs: Iterable[Mapping[str, Any]], *, global_scope: bool
) -> bool:
    """Whether Discord already has exactly our definitions (order of commands aside)."""

    def keyed(items: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, Any], dict[str, Any]]:
        return {
            (c.get("type") or 1, c.get("name")): canonical(c, global_scope=global_scope)
            for c in items
        }

    return keyed(ours) == keyed(theirs)


async def sync_if_changed(
    client: discord.Client, tree: app_commands.CommandTree[Any], guild: discord.Object | None
) -> bool:
    """Sync the commands for `guild` (None: global) unless Discord has them; True if it synced."""
    application_id = client.application_id
    if application_id is None:
        msg = "discord: no application id; log in before syncing commands"
        raise RuntimeError(msg)
    ours = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    if guild is None:
        theirs = await client.http.get_global_commands(application_id)
    else:
        theirs = await client.http.get_guild_commands(application_id, guild.id)
    scope = "globally" if guild is None else f"to guild {guild.id}"
    if same_commands(ours, theirs, global_scope=guild is None):
        log.info("discord commands unchanged; not syncing %s", scope)
        return False
    await tree.sync(guild=guild)
    log.info("discord commands synced %s (%d)", scope, len(ours))
    return True
