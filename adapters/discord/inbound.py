"""Discord events to the core's events: raw reactions, slash commands, buttons and the Done form.

Pure functions: they read discord.py objects, never call Discord, and return `None` for "not
ours" (the bot's own reactions, DMs). Snowflakes become strings here, once.

Reaction event keys. Design §7 suggests message+user+emoji+added, but then 👀 added, removed and
added again would make the third event look like a replay of the first and be dropped. A
reaction event has no id of its own; the gateway frame that carries it has one: its sequence
number within its session. Discord replays a frame on RESUME with the same session and sequence,
and a new session starts a new session id, so `discord:rx:<session>:<seq>` is the same for a
replay and different for every real change (see `GatewayPosition`, filled in by the client).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import discord

from adapters.discord.render import FORM_ID, RESPONSE_INPUT
from bot.commands import MAX_RESPONSE, clean_text
from bot.model import (
    ButtonAction,
    ButtonPressed,
    CommandReceived,
    Member,
    Platform,
    ReactionChanged,
)

# Unicode reactions by the names the core's CLAIM_EMOJI / DONE_EMOJI settings use.
EMOJI_NAMES: Final = {
    "👀": "eyes",
    "✅": "white_check_mark",
    "✔": "heavy_check_mark",
    "☑": "ballot_box_with_check",
    "👍": "+1",
    "🙋": "raising_hand",
    "✋": "raised_hand",
    "🙏": "pray",  # THANKS_EMOJI
}
# Variation selectors and skin tones do not change what a reaction means (🙏🏽 is 🙏).
_MODIFIERS = dict.fromkeys([0xFE0E, 0xFE0F, *range(0x1F3FB, 0x1F400)])


@dataclass(frozen=True, slots=True)
class GatewayPosition:
    """Where a gateway dispatch sat in its session: the identity of that event."""

    session_id: str
    sequence: int


def emoji_name(emoji: discord.PartialEmoji | discord.Emoji | str) -> str:
    """The name the core compares: "eyes" for 👀; a custom emoji's own name."""
    if isinstance(emoji, str):
        raw = emoji
    elif emoji.id is not None:
        return emoji.name or str(emoji.id)
    else:
        raw = emoji.name or ""
    bare = raw.translate(_MODIFIERS)
    return EMOJI_NAMES.get(bare, bare)


def member(community_id: int | str, user_id: int | str, display_name: str) -> Member:
    return Member(
        platform=Platform.DISCORD,
        community_id=str(community_id),
        user_id=str(user_id),
        display_name=display_name,
    )


def parse_raw_reaction(
    payload: discord.RawReactionActionEvent,
    *,
    bot_user_id: int,
    received_at: datetime,
    position: GatewayPosition,
) -> ReactionChanged | None:
    """A reaction added or removed in a guild; None for bots' reactions and for DMs."""
    if payload.user_id == bot_user_id or payload.guild_id is None:
        return None
    if payload.member is not None and payload.member.bot:
        # Triage and bridge bots react to every message; reconcile skips bots for the same
        # reason. A removal carries no member, and a bot that never claimed releases nothing.
        return None
    added = payload.event_type == "REACTION_ADD"
    name = payload.member.display_name if payload.member is not None else ""
    return ReactionChanged(
        event_key=(
            f"discord:rx:{position.session_id}:{position.sequence}:"
            f"{payload.message_id}:{payload.user_id}:{'+' if added else '-'}"
        ),
        member=member(payload.guild_id, payload.user_id, name),
        channel_id=str(payload.channel_id),
        message_id=str(payload.message_id),
        emoji=emoji_name(payload.emoji),
        added=added,
        received_at=received_at,
        reply_inline=False,  # a reaction has nowhere to answer: refusals arrive as a DM
    )


def _is_admin(interaction: discord.Interaction[Any]) -> bool:
    # "Manage Server" is what Discord itself asks of people who configure a guild's bots.
    return interaction.permissions.manage_guild


def _interaction_member(interaction: discord.Interaction[Any]) -> Member | None:
    if interaction.guild_id is None:
        return None
    user = interaction.user
    return member(interaction.guild_id, user.id, user.display_name)


_THREADS: Final = frozenset(
    {
        discord.ChannelType.public_thread,
        discord.ChannelType.private_thread,
        discord.ChannelType.news_thread,
    }
)


def can_post_here(interaction: discord.Interaction[Any]) -> bool:
    """Whether the bot may send messages where the interaction happened (`app_permissions`)."""
    allowed = interaction.app_permissions
    channel = interaction.channel
    in_thread = channel is not None and getattr(channel, "type", None) in _THREADS
    send = allowed.send_messages_in_threads if in_thread else allowed.send_messages
    return allowed.administrator or (allowed.view_channel and send)


def parse_command(
    interaction: discord.Interaction[Any],
    verb: str,
    options: Mapping[str, object],
    *,
    received_at: datetime,
) -> CommandReceived | None:
    """`/review <verb> ...` with typed options; None outside a guild."""
    who = _interaction_member(interaction)
    if who is None:
        return None
    return CommandReceived(
        event_key=f"discord:{interaction.id}",
        member=who,
        channel_id=str(interaction.channel_id),
        text=verb,
        options=tuple((k, str(v)) for k, v in options.items() if v is not None),
        received_at=received_at,
        is_admin=_is_admin(interaction),
    )


def parse_text_command(
    interaction: discord.Interaction[Any], verb: str, text: str | None, *, received_at: datetime
) -> CommandReceived | None:
    """A verb with no typed options of its own: its text is parsed like Slack's."""
    who = _interaction_member(interaction)
    if who is None:
        return None
    return CommandReceived(
        event_key=f"discord:{interaction.id}",
        member=who,
        channel_id=str(interaction.channel_id),
        text=f"{verb} {text or ''}".strip(),
        received_at=received_at,
        is_admin=_is_admin(interaction),
    )


def parse_button(
    interaction: discord.Interaction[Any],
    action: ButtonAction,
    request_id: int,
    *,
    received_at: datetime,
) -> ButtonPressed | None:
    """A Claim / Done / Release press on a relay post; None outside a guild."""
    who = _interaction_member(interaction)
    if who is None:
        return None
    message = interaction.message
    return ButtonPressed(
        event_key=f"discord:{interaction.id}",
        member=who,
        channel_id=str(interaction.channel_id),
        message_id=str(message.id) if message is not None else "",
        action=action,
        request_id=request_id,
        received_at=received_at,
        is_admin=_is_admin(interaction),
        reply_inline=True,
    )


def _input_value(components: object, custom_id: str) -> str:
    """The value of the text input `custom_id` in a modal submission's component tree."""
    if isinstance(components, Mapping):
        components = [components]
    if not isinstance(components, list):
        return ""
    for component in components:
        if not isinstance(component, Mapping):
            continue
        if component.get("custom_id") == custom_id and isinstance(component.get("value"), str):
            return str(component["value"])
        # An action row (type 1) holds `components`, a label (type 18) one `component`.
        for inner in (component.get("components"), component.get("component")):
            found = _input_value(inner, custom_id)
            if found:
                return found
    return ""


def parse_done_form(
    interaction: discord.Interaction[Any], *, received_at: datetime
) -> ButtonPressed | None:
    """The Done form submitted: a DONE press carrying the response; None if not our form.

    The request and post come from the form's custom id; the response is cleaned as
    `/review done <id> <response>` cleans it: one line, no control characters, 1,000 at most.
    """
    data: Mapping[str, object] = interaction.data or {}
    match = FORM_ID.fullmatch(str(data.get("custom_id", "")))
    who = _interaction_member(interaction)
    if match is None or who is None:
        return None
    response = _input_value(data.get("components"), RESPONSE_INPUT)
    return ButtonPressed(
        event_key=f"discord:{interaction.id}",
        member=who,
        channel_id=str(interaction.channel_id),
        message_id=match["message_id"],
        action=ButtonAction.DONE,
        request_id=int(match["request_id"]),
        received_at=received_at,
        response=clean_text(response, MAX_RESPONSE),
        is_admin=_is_admin(interaction),
        reply_inline=True,
    )
