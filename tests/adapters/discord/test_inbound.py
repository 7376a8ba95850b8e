"""Raw reaction payloads (as discord.py builds them from gateway data) to ReactionChanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from adapters.discord.inbound import GatewayPosition, emoji_name, parse_raw_reaction
from bot.model import Platform

BOT, ALICE, GUILD, CHANNEL, MESSAGE = 900, 101, 500, 600, 700
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
AT = GatewayPosition("session-a", 42)


def raw(
    emoji: str = "👀",
    *,
    user: int = ALICE,
    guild: int | None = GUILD,
    add: bool = True,
    emoji_id: str | None = None,
) -> discord.RawReactionActionEvent:
    """A raw reaction event built by discord.py from a MESSAGE_REACTION_* payload."""
    data: dict[str, Any] = {
        "user_id": str(user),
        "channel_id": str(CHANNEL),
        "message_id": str(MESSAGE),
        "emoji": {"id": emoji_id, "name": emoji},
        "burst": False,
        "type": 0,
    }
    if guild is not None:
        data["guild_id"] = str(guild)
    partial = discord.PartialEmoji.from_dict(data["emoji"])
    return discord.RawReactionActionEvent(
        data,  # type: ignore[arg-type]
        partial,
        "REACTION_ADD" if add else "REACTION_REMOVE",
    )


def parse(payload: discord.RawReactionActionEvent, position: GatewayPosition = AT):
    return parse_raw_reaction(payload, bot_user_id=BOT, received_at=NOW, position=position)


def test_reaction_becomes_event() -> None:
    """A 👀 in a guild becomes a ReactionChanged on that message, by that member, answered by DM."""
    event = parse(raw("👀"))
    assert event is not None
    assert (event.channel_id, event.message_id, event.emoji, event.added) == (
        str(CHANNEL),
        str(MESSAGE),
        "eyes",
        True,
    )
    assert event.member.platform is Platform.DISCORD
    assert (event.member.community_id, event.member.user_id) == (str(GUILD), str(ALICE))
    assert event.received_at == NOW
    assert not event.reply_inline


def test_own_reaction_is_ignored() -> None:
    """The bot's own reactions are not claims."""
    assert parse(raw(user=BOT)) is None


def test_dm_reaction_is_ignored() -> None:
    """A reaction in a DM (no guild) belongs to no community: ignored."""
    assert parse(raw(guild=None)) is None


@pytest.mark.parametrize(
    ("emoji", "emoji_id", "name"),
    [
        ("👀", None, "eyes"),
        ("✅", None, "white_check_mark"),
        ("✔️", None, "heavy_check_mark"),  # with the emoji variation selector
        ("✔", None, "heavy_check_mark"),
        ("🙏", None, "pray"),
        ("🙏🏽", None, "pray"),  # with a skin tone
        ("🎉", None, "🎉"),  # unknown unicode: itself, so it matches nothing by accident
        ("claim", "123456", "claim"),  # a custom emoji: its own name
    ],
)
def test_emoji_names_match_the_core(emoji: str, emoji_id: str | None, name: str) -> None:
    """Unicode reactions map to the names CLAIM_EMOJI / DONE_EMOJI use."""
    assert (
        emoji_name(discord.PartialEmoji(name=emoji, id=int(emoji_id) if emoji_id else None)) == name
    )
    event = parse(raw(emoji, emoji_id=emoji_id))
    assert event is not None
    assert event.emoji == name


def test_replayed_frame_has_the_same_key() -> None:
    """The same gateway frame (same session and sequence, as on RESUME) gives the same key."""
    first, again = parse(raw()), parse(raw())
    assert first is not None
    assert again is not None
    assert first.event_key == again.event_key


def test_add_remove_add_are_three_events() -> None:
    """👀 added, removed and added again: three keys; the second add is no replay of the first."""
    keys = [
        event.event_key
        for event in (
            parse(raw(add=True), GatewayPosition("s", 10)),
            parse(raw(add=False), GatewayPosition("s", 11)),
            parse(raw(add=True), GatewayPosition("s", 12)),
        )
        if event is not None
    ]
    assert len(set(keys)) == 3


def test_new_session_gives_new_keys() -> None:
    """Sequence numbers restart with each session; the session id keeps keys apart."""
    one = parse(raw(), GatewayPosition("session-a", 5))
    two = parse(raw(), GatewayPosition("session-b", 5))
    assert one is not None
    assert two is not None
    assert one.event_key != two.event_key


def test_removal_has_no_member_name() -> None:
    """Discord sends no member with a removal: the name is left empty (the store keeps the old)."""
    event = parse(raw(add=False))
    assert event is not None
    assert not event.added
    assert event.member.display_name == ""
