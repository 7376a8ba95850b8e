"""Small factories for model values, so tests state only what matters to them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from bot.model import (
    CommandReceived,
    Member,
    NoticeKind,
    Outgoing,
    Platform,
    ReactionChanged,
    Request,
    Status,
)
from storage.base import Store

_keys = itertools.count(1)
MONDAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REQUEST_ID = 42


def member(name: str, *, platform: Platform = Platform.CONSOLE, community: str = "local") -> Member:
    return Member(platform=platform, community_id=community, user_id=name, display_name=name)


def person(name: str, person_id: int) -> Member:
    """A member with the person id a store would have given (for code that needs no store)."""
    return replace(member(name), person_id=person_id)


def request(
    status: Status,
    *claimers: Member,
    requester: Member,
    wanted: int = 1,
    finished: Iterable[Member] = (),
) -> Request:
    """Request #42 (a draft on #python) by `requester` at MONDAY, held by `claimers` in claim
    order, those in `finished` done with their review."""
    return Request(
        id=REQUEST_ID,
        link="https://example.com/draft",
        topics=("python",),
        note="",
        requester=requester,
        origin_channel_id="reviews",
        status=status,
        created_at=MONDAY,
        updated_at=MONDAY,
        claimed_at=MONDAY if claimers else None,
        wanted=wanted,
        claimers=claimers,
        finished=frozenset(m.person_id for m in finished),
    )


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
