"""The single entry point for adapters: one inbound event in, one Reply out.

Each event runs in one unit of work (`Store.run`) together with everything it causes: the state
change, the notices (relay posts, post edits, DMs) as outbox rows the delivery worker sends later,
and the event's key, so a platform's retry is a no-op. A refusal rolls the unit back, so bad input
changes nothing. The use cases themselves live in `bot.usecases`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Collection
from datetime import datetime

from bot import commands, logs, texts
from bot.commands import Command, UsageError
from bot.inflight import InFlight
from bot.model import (
    ButtonAction,
    ButtonPressed,
    CommandReceived,
    Community,
    InboundEvent,
    NoticeKind,
    OpenPost,
    Outgoing,
    Platform,
    ReactionChanged,
    Reply,
)
from bot.ports import Clock
from bot.transitions import Action
from bot.usecases import asking, people, reviewing
from bot.usecases.base import Context, Refused, Rules
from storage.base import Store, Transaction

__all__ = ["Dispatcher", "Rules"]

log = logging.getLogger(__name__)

OPEN_POSTS_PAGE = 200  # requests (with their posts) per transaction when an adapter walks them

_BUTTON_ACTIONS = {
    ButtonAction.CLAIM: Action.CLAIM,
    ButtonAction.RELEASE: Action.RELEASE,
    ButtonAction.DONE: Action.DONE,
}
_ACTIONS: dict[type, Action] = {
    commands.Claim: Action.CLAIM,
    commands.Release: Action.RELEASE,
    commands.Cancel: Action.CANCEL,
    commands.Reopen: Action.REOPEN,
    commands.Done: Action.DONE,
}


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        rules: Rules,
        platforms: Collection[Platform],
        on_enqueue: Callable[[], None] = lambda: None,
        inflight: InFlight | None = None,
    ) -> None:
        self._store = store
        self._inflight = inflight or InFlight()
        self._clock = clock
        self._rules = rules
        self._platforms = frozenset(platforms)  # only these have a sender: relay to them alone
        self._on_enqueue = on_enqueue

    @property
    def platforms(self) -> frozenset[Platform]:
        return self._platforms

    async def handle(self, event: InboundEvent) -> Reply:
        """Apply one inbound event; the only entry point for adapters."""
        with (
            self._inflight.handling(),
            logs.bind(platform=str(event.member.platform), event=event.event_key),
        ):
            return await self._handle(event)

    async def _handle(self, event: InboundEvent) -> Reply:
        async def apply(tx: Transaction) -> Reply:
            reply = await self._route(tx, event)
            # A reaction that worked shows in the edited post; only a refusal needs words
            # (on Discord they would be DMs, which Discord rations for bots).
            if reply and not event.reply_inline and not isinstance(event, ReactionChanged):
                await tx.enqueue([self._ephemeral(event, reply)], self._clock.now())
            return reply

        async def tell(tx: Transaction, refusal: Reply) -> None:
            if not await tx.seen_event(event.event_key, event.received_at):
                if isinstance(event, ReactionChanged):
                    # Refused or not, it is now the newest state of that reaction.
                    await tx.reaction_in_order(event)
                await tx.enqueue([self._ephemeral(event, refusal)], self._clock.now())

        try:
            reply = await self._store.run(apply)
        except Refused as refused:
            reply = refused.reply
            if not event.reply_inline:
                # The refusal rolled back with its event key; record the key with the notice so
                # a platform retry of this event is not refused (and told) twice.
                await self._store.run(functools.partial(tell, refusal=refused.reply))
        self._on_enqueue()
        return reply

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int | None = None
    ) -> list[OpenPost]:
        """Delivered relay posts of active requests on `platform`, newest first, those of at most
        `limit` requests at a time (older than `before`), for an adapter's reconcile."""
        page = OPEN_POSTS_PAGE if limit is None else min(limit, OPEN_POSTS_PAGE)
        return await self._store.run(lambda tx: tx.open_posts(platform, before=before, limit=page))

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool:
        """Whether a relay post to `platform` due at `at` is not delivered yet, for an adapter's
        reconcile (see `adapters.discord.reconcile`)."""
        return await self._store.run(lambda tx: tx.relay_posts_due(platform, at))

    async def connect_community(self, community: Community) -> None:
        """Register a community an adapter serves, keeping any review channel set up before.

        A new one is stored with the operator's TIMEZONE and REMINDER_TIME (adapters know
        neither); `/review setup` changes them, a later change of the settings does not.
        """
        new = dataclasses.replace(
            community, timezone=self._rules.timezone, reminder_time=self._rules.reminder_time
        )

        async def connect(tx: Transaction) -> None:
            known = await tx.community(community.platform, community.community_id)
            if known is None:
                await tx.save_community(new)
            elif not known.review_channel_id and community.review_channel_id:
                await tx.save_community(
                    Community(
                        platform=known.platform,
                        community_id=known.community_id,
                        name=community.name or known.name,
                        review_channel_id=community.review_channel_id,
                        timezone=known.timezone,
                        reminder_time=known.reminder_time,
                        share=known.share,
                        recognition=known.recognition,
                    )
                )

        await self._store.run(connect)

    @staticmethod
    def _ephemeral(event: InboundEvent, reply: Reply) -> Outgoing:
        return Outgoing(
            kind=NoticeKind.EPHEMERAL,
            platform=event.member.platform,
            community_id=event.member.community_id,
            channel_id=event.channel_id,
            user_id=event.member.user_id,
            text=reply.text,
        )

    async def _context(self, tx: Transaction, event: InboundEvent) -> Context:
        """The acting member, stored (with their person id), and the event's moment."""
        # Names come from platforms and people: no bidi tricks or line breaks into posts.
        name = commands.clean_text(event.member.display_name, commands.MAX_NAME)
        named = event.member
        if name != named.display_name:
            named = dataclasses.replace(named, display_name=name)
        return Context(
            tx=tx,
            member=await tx.member(named, event.received_at),
            now=event.received_at,
            rules=self._rules,
            platforms=self._platforms,
            channel_id=event.channel_id,
            is_admin=event.is_admin,
        )

    async def _route(self, tx: Transaction, event: InboundEvent) -> Reply:
        match event:
            case CommandReceived():
                return await self._on_command(tx, event)
            case ReactionChanged():
                return await self._on_reaction(tx, event)
            case ButtonPressed():
                if await tx.seen_event(event.event_key, event.received_at):
                    return Reply.none()
                ctx = await self._context(tx, event)
                # Adapters clean form input too; the core does not rely on it.
                response = commands.clean_text(event.response, commands.MAX_RESPONSE)
                return await reviewing.transition(
                    ctx, event.request_id, _BUTTON_ACTIONS[event.action], response
                )

    async def _on_command(self, tx: Transaction, event: CommandReceived) -> Reply:
        if event.options is None:
            command = commands.parse(event.text)
        else:
            command = commands.parse_options(event.text, dict(event.options))
        if isinstance(command, UsageError):
            raise Refused(command.message)
        if isinstance(command, commands.Help):
            return Reply(texts.HELP)
        if await tx.seen_event(event.event_key, event.received_at):
            return Reply.none()
        return await _run(await self._context(tx, event), command)

    async def _on_reaction(self, tx: Transaction, event: ReactionChanged) -> Reply:
        rules = self._rules
        if event.emoji not in (rules.claim_emoji, rules.done_emoji, rules.thanks_emoji):
            return Reply.none()
        request_id = await tx.request_for_post(
            event.member.platform, event.channel_id, event.message_id
        )
        if request_id is None or await tx.seen_event(event.event_key, event.received_at):
            return Reply.none()  # not a relay post (nothing recorded), or a repeat
        if not await tx.reaction_in_order(event):
            return Reply.none()  # overtaken by a later change of the same reaction: seen, no-op
        ctx = await self._context(tx, event)
        request = await tx.request(request_id)
        assert request is not None  # noqa: S101 - relay posts reference existing requests
        return await reviewing.reaction(
            ctx, request, event.emoji, added=event.added, snapshot=event.snapshot
        )


async def _run(ctx: Context, command: Command) -> Reply:
    """One parsed command, to the use case that serves it."""
    match command:
        case commands.Ask():
            return await asking.ask(ctx, command)
        case commands.Renotify(request_id):
            return await asking.renotify(ctx, request_id)
        case commands.Claim() | commands.Release() | commands.Cancel() | commands.Reopen():
            return await reviewing.transition(ctx, command.request_id, _ACTIONS[type(command)])
        case commands.Done(request_id, response):
            return await reviewing.transition(ctx, request_id, Action.DONE, response)
        case commands.Close(request_id):
            return await reviewing.close_enough(ctx, request_id)
        case commands.Snooze(request_id):
            return await reviewing.snooze(ctx, request_id)
        case (
            commands.VolunteerFor()
            | commands.Unvolunteer()
            | commands.Pause()
            | commands.Resume()
            | commands.Quiet()
        ):
            return await people.volunteering(ctx, command)
        case commands.ListOpen() | commands.Mine() | commands.Stats():
            return await people.listing(ctx, command)
        case commands.Link(code):
            return await people.link(ctx, code)
        case commands.Unlink():
            return await people.unlink(ctx)
        case commands.ForgetMe() | commands.ExportMe():
            return await people.own_data(ctx, command)
        case commands.Setup():
            return await people.setup(ctx, command)
        case commands.Help():
            return Reply(texts.HELP)
