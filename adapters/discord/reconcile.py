"""Catch up on reactions made while no gateway session was listening (design §7).

Discord replays missed events only on RESUME; a new session (a restart, an invalidated session)
starts blind. So after each new session the adapter re-reads the reactions on the relay posts of
active requests and feeds what it finds to the core as ReactionChanged events:

- an open request: every 👀 (claim emoji), in the order Discord lists reactors, which is by user
  id (its pagination is `after=<user id>`; it keeps no reaction times), so the lowest user id wins
  and the others hear it is taken; then every ✅, so a claim and a done made while away both land;
- a claimed request: every ✅ (done emoji); the core ignores those that are not the claimer's;
- a missing 👀 is never read as a release: a snapshot cannot tell a removed 👀 from a claim
  made with the button or a command, which never had one. Releasing stays explicit;
- a standing 👀 of someone who released the request (by button or command, or the reminders
  for them) is not a new claim: it is most likely the one they claimed with. Taken off and put
  back while the bot was away, it does not claim either; the button does.

A post the bot sent just before a crash may be on Discord, and reacted to, while the store still
holds it as pending: it has no message id to read yet. The delivery worker sends it again, Discord
answers with the message it has (by nonce), and the post is recorded; so the walk waits (a few
seconds at most) for the relay posts that were due when the session began.

The core decides everything, as for live events. Event keys are built from the post, the user,
the emoji and the request's `updated_at`: a second reconcile of an unchanged request is a no-op
(no repeated refusal DMs on every restart), while a change of state makes the reaction count anew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import discord

from adapters.discord import inbound
from bot.model import OpenPost, Platform, ReactionChanged, Status
from bot.ports import Inbox

log = logging.getLogger(__name__)

MAX_REACTORS = 100  # one page of the users endpoint per emoji and post
CATCH_UP_WAIT = 10.0  # seconds the walk waits for relay posts due at the session's start
CATCH_UP_POLL = 0.05


@runtime_checkable
class OpenPosts(Protocol):
    """What reconcile needs from the core besides `Inbox.handle`: the posts still in play."""

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int | None = None
    ) -> Sequence[OpenPost]: ...

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool: ...


class ReconcilingInbox(Inbox, OpenPosts, Protocol):
    """An Inbox that can also list open posts (the Dispatcher)."""


@dataclass(frozen=True, slots=True)
class Reactor:
    user_id: int
    display_name: str


def plan(
    post: OpenPost,
    reactors: Mapping[str, Sequence[Reactor]],
    *,
    claim_emoji: str,
    done_emoji: str,
    received_at: datetime,
) -> list[ReactionChanged]:
    """The reaction events to feed for one post, in order (pure)."""
    emojis = [claim_emoji, done_emoji] if post.status is Status.OPEN else [done_emoji]
    version = post.updated_at.isoformat()
    return [
        ReactionChanged(
            event_key=f"discord:reconcile:{post.message_id}:{reactor.user_id}:{emoji}:{version}",
            member=inbound.member(post.community_id, reactor.user_id, reactor.display_name),
            channel_id=post.channel_id,
            message_id=post.message_id,
            emoji=emoji,
            added=True,
            received_at=received_at,
            reply_inline=False,
            snapshot=True,
        )
        for emoji in emojis
        for reactor in sorted(reactors.get(emoji, ()), key=lambda r: r.user_id)
    ]


async def read_reactors(message: discord.Message, wanted: set[str]) -> dict[str, list[Reactor]]:
    """The human reactors of the wanted emojis on a message (normal reactions, one page each)."""
    found: dict[str, list[Reactor]] = {}
    for reaction in message.reactions:
        name = inbound.emoji_name(reaction.emoji)
        if name not in wanted or reaction.normal_count <= int(reaction.me):
            continue
        users = [user async for user in reaction.users(limit=MAX_REACTORS) if not user.bot]
        found[name] = [Reactor(user.id, user.display_name) for user in users]
    return found


async def _every_open_post(inbox: OpenPosts) -> AsyncIterator[OpenPost]:
    """All open posts, newest first, because a reaction made while the bot was away is likeliest
    on a recent post, and a rate limit may end the walk early.

    Read one request at a time, just before its posts are: the walk takes a while (a GET or more
    per post), live events change requests meanwhile, and a state read a page earlier would
    feed a claim handled live as new (its claimer told "you already hold it", the others told
    "taken" twice)."""
    before = None
    while posts := await inbox.open_posts(Platform.DISCORD, before=before, limit=1):
        for post in posts:
            yield post
        before = posts[-1].request_id


async def reconcile(
    client: discord.Client,
    inbox: ReconcilingInbox,
    *,
    claim_emoji: str,
    done_emoji: str,
    now: datetime,
) -> int:
    """Re-read every open post once, newest first; returns how many reaction events were fed."""
    deadline = time.monotonic() + CATCH_UP_WAIT
    # Polled: the worker records posts in the store, which has no event to await.
    while await inbox.relay_posts_due(Platform.DISCORD, now):
        if time.monotonic() >= deadline:
            log.warning("reconcile: relay posts still pending; reading the posts known so far")
            break
        await asyncio.sleep(CATCH_UP_POLL)
    fed = 0
    async for post in _every_open_post(inbox):
        channel = client.get_partial_messageable(int(post.channel_id))
        try:
            message = await channel.fetch_message(int(post.message_id))
            reactors = await read_reactors(message, {claim_emoji, done_emoji})
        except discord.RateLimited:
            log.warning("reconcile: rate limited; the rest waits for the next session")
            break
        except discord.HTTPException as exc:  # deleted post, lost access, Discord trouble
            log.info("reconcile: post of request #%s unreadable (%s)", post.request_id, exc.status)
            continue
        for event in plan(
            post, reactors, claim_emoji=claim_emoji, done_emoji=done_emoji, received_at=now
        ):
            await inbox.handle(event)
            fed += 1
    if fed:
        log.info("reconcile: fed %d reaction(s) made while disconnected", fed)
    return fed
