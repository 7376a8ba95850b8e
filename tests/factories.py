"""Small factories for model values, so tests state only what matters to them."""

from __future__ import annotations

import itertools
from datetime import datetime

from bot.model import CommandReceived, Member, NoticeKind, Outgoing, Platform, ReactionChanged
from storage.base import Store

_keys = itertools.count(1)


def member(name: str, *, platform: Platform = Platform.CONSOLE, community: str = "local") -> Member:
    return Member(platform=platform, community_id=community, user_id=name, display_name=name)


def command(
    text: str,
    who: Member | str = "you",
    *,
    at: datetime,
    admin: bool = False,
    key: str | None = None,
) -> CommandReceived:
    actor = member(who) if isinstance(who, str) else who
    return CommandReceived(
        event_key=key or f"k{next(_keys)}",
        member=actor,
        channel_id="reviews",
        text=text,
        received_at=at,
        is_admin=admin,
    )


def reaction(
    message_id: str, emoji: str, who: str, *, at: datetime, added: bool = True
) -> ReactionChanged:
    return ReactionChanged(
        event_key=f"r{next(_keys)}",
        member=member(who),
        channel_id="reviews",
        message_id=message_id,
        emoji=emoji,
        added=added,
        received_at=at,
    )


def channel_text(channel: str, text: str) -> Outgoing:
    """A plain message to a console channel."""
    return Outgoing(
        kind=NoticeKind.CHANNEL_TEXT,
        platform=Platform.CONSOLE,
        community_id="local",
        channel_id=channel,
        text=text,
    )


def direct(user: str, text: str) -> Outgoing:
    """A direct message to a console user."""
    return Outgoing(
        kind=NoticeKind.DIRECT,
        platform=Platform.CONSOLE,
        community_id="local",
        user_id=user,
        text=text,
    )


async def enqueue(store: Store, at: datetime, *notices: Outgoing) -> None:
    """Queue `notices` in a transaction of their own, as a change would."""
    await store.run(lambda tx: tx.enqueue(list(notices), at))
