"""The use cases: one inbound event in, one Reply out, every effect in one store transaction.

A refusal rolls the transaction back, so bad input changes nothing; the notices a change causes
(relay posts, post edits, DMs) are outbox rows committed with it and sent later by the delivery
worker, so no handler waits on a platform.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import commands, effects, logs, matching, privacy, reciprocity, texts
from bot.commands import Command, UsageError
from bot.model import (
    ButtonAction,
    ButtonPressed,
    CommandReceived,
    Community,
    InboundEvent,
    Member,
    NoticeKind,
    OpenPost,
    Outgoing,
    Platform,
    ReactionChanged,
    Reply,
    Request,
    Status,
    Volunteer,
)
from bot.ports import Clock
from bot.transitions import Action, Refusal, decide
from storage.base import Store, Transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """The community policy knobs the use cases read (filled from Settings)."""

    notify_limit: int = 3
    requests_per_hour: int = 10
    duplicate_window: timedelta = timedelta(minutes=1)
    claim_emoji: str = "eyes"
    done_emoji: str = "white_check_mark"
    thanks_emoji: str = "pray"
    reciprocity: bool = True  # RECIPROCITY=soft: suggest giving back to those who take a lot
    auto_pause_after: int = 3  # notifications ignored in a row before a volunteer is paused
    timezone: str = "UTC"
    reminder_time: str = "09:00"


LINK_CODE_TTL = timedelta(minutes=10)
AUTO_PAUSE = timedelta(days=365)  # until they say /review resume
RENOTIFY_EVERY = timedelta(days=1)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
_CODE_LENGTH = 8
_LINKED = 2


class _Refused(Exception):  # noqa: N818 - control flow inside a transaction, never escapes
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = Reply(reply)


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
_REPLIES = {
    Action.REOPEN: texts.REOPENED,
    Action.CLAIM: texts.CLAIMED,
    Action.RELEASE: texts.RELEASED,
    Action.DONE: texts.COMPLETED,
    Action.CANCEL: texts.CANCELLED,
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
    ) -> None:
        self._store = store
        self._clock = clock
        self._rules = rules
        self._platforms = frozenset(platforms)  # only these have a sender: relay to them alone
        self._on_enqueue = on_enqueue

    @property
    def platforms(self) -> frozenset[Platform]:
        return self._platforms

    async def handle(self, event: InboundEvent) -> Reply:
        """Apply one inbound event; the only entry point for adapters."""
        with logs.bind(platform=str(event.member.platform), event=event.event_key):
            return await self._handle(event)

    async def _handle(self, event: InboundEvent) -> Reply:
        try:
            async with self._store.transaction() as tx:
                reply = await self._route(tx, event)
                if reply and not event.reply_inline:
                    await tx.enqueue([self._ephemeral(event, reply)], self._clock.now())
        except _Refused as refused:
            reply = refused.reply
            if not event.reply_inline:
                # The refusal rolled back with its event key; record the key with the notice so
                # a platform retry of this event is not refused (and told) twice.
                async with self._store.transaction() as tx:
                    if not await tx.seen_event(event.event_key, event.received_at):
                        await tx.enqueue([self._ephemeral(event, reply)], self._clock.now())
        self._on_enqueue()
        return reply

    async def open_posts(self, platform: Platform) -> list[OpenPost]:
        """Delivered relay posts of active requests on `platform`, for an adapter's reconcile."""
        async with self._store.transaction() as tx:
            return await tx.open_posts(platform)

    async def connect_community(self, community: Community) -> None:
        """Register a community an adapter serves, keeping any review channel set up before."""
        async with self._store.transaction() as tx:
            known = await tx.community(community.platform, community.community_id)
            if known is None:
                await tx.save_community(community)
            elif not known.review_channel_id and community.review_channel_id:
                await tx.save_community(
                    Community(
                        platform=known.platform,
                        community_id=known.community_id,
                        name=community.name or known.name,
                        review_channel_id=community.review_channel_id,
                        timezone=known.timezone,
                        reminder_time=known.reminder_time,
                    )
                )

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

    async def _route(self, tx: Transaction, event: InboundEvent) -> Reply:
        match event:
            case CommandReceived():
                return await self._on_command(tx, event)
            case ReactionChanged():
                return await self._on_reaction(tx, event)
            case ButtonPressed():
                if await tx.seen_event(event.event_key, event.received_at):
                    return Reply.none()
                member = await tx.member(event.member, event.received_at)
                return await self._transition(
                    tx,
                    member,
                    event.request_id,
                    _BUTTON_ACTIONS[event.action],
                    is_admin=event.is_admin,
                    response=event.response,
                )

    async def _on_command(self, tx: Transaction, event: CommandReceived) -> Reply:
        if event.options is None:
            command = commands.parse(event.text)
        else:
            command = commands.parse_options(event.text, dict(event.options))
        if isinstance(command, UsageError):
            raise _Refused(command.message)
        if isinstance(command, commands.Help):
            return Reply(texts.HELP)
        if await tx.seen_event(event.event_key, event.received_at):
            return Reply.none()
        member = await tx.member(event.member, event.received_at)
        return await self._run(tx, event, member, command)

    async def _run(
        self, tx: Transaction, event: CommandReceived, member: Member, command: Command
    ) -> Reply:
        now = event.received_at
        viewer = (member.platform, member.community_id)
        match command:
            case commands.Ask():
                return await self._ask(tx, event, member, command)
            case (
                commands.Claim()
                | commands.Release()
                | commands.Cancel()
                | commands.Reopen()
                | commands.Done()
            ):
                response = command.response if isinstance(command, commands.Done) else ""
                return await self._transition(
                    tx,
                    member,
                    command.request_id,
                    _ACTIONS[type(command)],
                    is_admin=event.is_admin,
                    response=response,
                )
            case (
                commands.VolunteerFor()
                | commands.Unvolunteer()
                | commands.Pause()
                | commands.Resume()
                | commands.Quiet()
            ):
                return await self._volunteering(tx, member, command, now)
            case commands.ListOpen(topic):
                found = await tx.open_requests(topic)
                if not found:
                    return Reply(texts.NO_OPEN.format(on=f" on #{topic}" if topic else ""))
                return Reply("\n".join(texts.request_line(r, now, viewer) for r in found))
            case commands.Mine():
                found = await tx.requests_of(member.person_id)
                if not found:
                    return Reply(texts.NOTHING_MINE)
                return Reply("\n".join(texts.request_line(r, now, viewer) for r in found))
            case commands.Snooze(request_id):
                if not await tx.snooze(request_id, member.person_id, now):
                    raise _Refused(texts.NOT_YOURS_TO_SNOOZE.format(id=request_id))
                return Reply(texts.SNOOZED.format(id=request_id))
            case commands.ForgetMe(confirmed):
                if not confirmed:
                    return Reply(texts.FORGET_CONFIRM)
                ended = await privacy.forget(tx, member.person_id, now, self._platforms)
                return Reply(texts.FORGOTTEN.format(ended=ended, s=texts.plural(ended)))
            case commands.ExportMe():
                text = texts.EXPORT_DM.format(json=await privacy.export(tx, member.person_id))
                await tx.enqueue([effects.direct(member, text)], now)
                return Reply(texts.EXPORT_SENT)
            case commands.Stats():
                return await self._stats(tx, member, now)
            case commands.Renotify(request_id):
                return await self._renotify(tx, member, request_id)
            case commands.Close(request_id):
                return await self._close(tx, member, request_id, is_admin=event.is_admin)
            case commands.Link(code):
                return await self._link(tx, member, code)
            case commands.Unlink():
                return await self._unlink(tx, member)
            case commands.Setup():
                return await self._setup(tx, event, command)
            case commands.Help():
                return Reply(texts.HELP)

    async def _volunteering(
        self,
        tx: Transaction,
        member: Member,
        command: commands.VolunteerFor
        | commands.Unvolunteer
        | commands.Pause
        | commands.Resume
        | commands.Quiet,
        now: datetime,
    ) -> Reply:
        if isinstance(command, commands.VolunteerFor):
            known = await tx.volunteer(member.person_id)
            merged = (known.topics if known else frozenset()) | frozenset(command.topics)
            await tx.save_volunteer(member, merged, known.paused_until if known else None)
            return Reply(texts.VOLUNTEERED.format(topics=", ".join(sorted(merged))))
        known = await self._volunteer(tx, member)
        match command:
            case commands.Unvolunteer(topics):
                left = known.topics - frozenset(topics) if topics else frozenset()
                if not left:
                    await tx.remove_volunteer(member.person_id)
                    return Reply(texts.UNVOLUNTEERED_ALL)
                await tx.save_volunteer(member, left, known.paused_until)
                return Reply(texts.UNVOLUNTEERED_SOME.format(topics=", ".join(sorted(left))))
            case commands.Pause(days):
                until = now + timedelta(days=days)
                await tx.save_volunteer(member, known.topics, until)
                return Reply(texts.PAUSED.format(until=until))
            case commands.Resume():
                await tx.save_volunteer(member, known.topics, None)
                return Reply(texts.RESUMED.format(topics=", ".join(sorted(known.topics))))
            case commands.Quiet(hours):
                await tx.set_quiet(known.person_id, hours)
                if hours is None:
                    return Reply(texts.QUIET_OFF)
                return Reply(
                    texts.QUIET_ON.format(start=hours.start, end=hours.end, tz=hours.timezone)
                )
        return Reply.none()

    @staticmethod
    async def _volunteer(tx: Transaction, member: Member) -> Volunteer:
        known = await tx.volunteer(member.person_id)
        if known is None:
            raise _Refused(texts.NOT_VOLUNTEER)
        return known

    async def _ask(
        self, tx: Transaction, event: CommandReceived, member: Member, command: commands.Ask
    ) -> Reply:
        now = event.received_at
        recent = await tx.requests_since(member.person_id, now - timedelta(hours=1))
        limit = self._rules.requests_per_hour
        if len(recent) >= limit:
            raise _Refused(
                texts.RATE_LIMITED.format(
                    limit=limit, at=recent[len(recent) - limit] + timedelta(hours=1)
                )
            )
        duplicate = await tx.recent_request(
            member.person_id, command.link, now - self._rules.duplicate_window
        )
        if duplicate is not None:
            raise _Refused(texts.DUPLICATE.format(id=duplicate.id))
        request = await tx.add_request(
            link=command.link,
            topics=command.topics,
            note=command.note,
            requester=member,
            origin_channel_id=event.channel_id,
            at=now,
            local=command.local,
        )
        chosen, paused = await self._choose(tx, request, now)
        origin = (member.platform, member.community_id)
        communities = [
            c
            for c in await tx.communities()
            if c.review_channel_id
            and c.platform in self._platforms
            and ((c.platform, c.community_id) == origin or (c.share and not command.local))
        ]
        notices = [
            Outgoing(
                kind=NoticeKind.RELAY_POST,
                platform=c.platform,
                community_id=c.community_id,
                channel_id=c.review_channel_id or "",
                request_id=request.id,
                mentions=tuple(
                    v.member.user_id
                    for v in chosen
                    if (v.member.platform, v.member.community_id) == (c.platform, c.community_id)
                ),
            )
            for c in communities
        ]
        posted = {(c.platform, c.community_id) for c in communities}
        # A volunteer whose community has no review channel still hears about it, privately.
        notices += [
            effects.direct(
                v.member,
                texts.relay_post_text(request, (v.member.platform, v.member.community_id)),
            )
            for v in chosen
            if (v.member.platform, v.member.community_id) not in posted
            and v.member.platform in self._platforms
        ]
        await tx.enqueue(notices + paused, now)
        if chosen:
            await tx.mark_notified([v.person_id for v in chosen], now, request.id)
        if not request.topics:
            text = texts.ASKED_NO_TOPICS.format(id=request.id, s=texts.plural(len(communities)))
        else:
            text = texts.ASKED.format(id=request.id, count=len(chosen), s=texts.plural(len(chosen)))
        hint = await reciprocity.hint(tx, member, request, now) if self._rules.reciprocity else ""
        return Reply(f"{text}\n{hint}" if hint else text)

    async def _choose(
        self,
        tx: Transaction,
        request: Request,
        now: datetime,
        exclude: frozenset[int] = frozenset(),
    ) -> tuple[list[Volunteer], list[Outgoing]]:
        """The volunteers to notify, and DMs to those paused for ignoring too many in a row."""
        candidates = [
            v
            for v in await tx.candidates(request.topics, now - reciprocity.LOAD_WINDOW)
            if v.person_id not in exclude
        ]
        silent = reciprocity.silent(candidates, request, now, after=self._rules.auto_pause_after)
        told = []
        for volunteer in silent:
            await tx.save_volunteer(volunteer.member, volunteer.topics, now + AUTO_PAUSE)
            if volunteer.member.platform in self._platforms:
                text = texts.AUTO_PAUSED.format(count=volunteer.ignored_streak)
                told.append(effects.direct(volunteer.member, text))
        chosen = matching.rank(
            [v for v in candidates if v not in silent],
            topics=request.topics,
            requester_person_id=request.requester.person_id,
            now=now,
            limit=self._rules.notify_limit,
        )
        return chosen, told

    async def _renotify(self, tx: Transaction, member: Member, request_id: int) -> Reply:
        now = self._clock.now()
        request = await self._own_request(tx, member, request_id)
        if request.status is not Status.OPEN:
            raise _Refused(texts.NOT_OPEN.format(id=request_id, status=request.status))
        if not await tx.claim_renotify(request_id, now - RENOTIFY_EVERY, now):
            raise _Refused(texts.RENOTIFY_DAILY.format(id=request_id))
        already = frozenset(await tx.notified_for(request_id))
        chosen, paused = await self._choose(tx, request, now, exclude=already)
        topics = " ".join(f"#{t}" for t in request.topics)
        notices = [
            effects.direct(
                v.member, texts.RENOTIFY_DM.format(id=request_id, link=request.link, topics=topics)
            )
            for v in chosen
            if v.member.platform in self._platforms
        ]
        await tx.enqueue(notices + paused, now)
        if not chosen:
            return Reply(texts.RENOTIFY_NOBODY.format(id=request_id))
        await tx.mark_notified([v.person_id for v in chosen], now, request_id)
        return Reply(
            texts.RENOTIFIED.format(id=request_id, count=len(chosen), s=texts.plural(len(chosen)))
        )

    async def _own_request(self, tx: Transaction, member: Member, request_id: int) -> Request:
        request = await tx.request(request_id)
        if request is None:
            raise _Refused(texts.UNKNOWN_REQUEST.format(id=request_id))
        if request.requester.person_id != member.person_id:
            raise _Refused(texts.NOT_YOUR_REQUEST.format(id=request_id))
        return request

    async def _close(
        self, tx: Transaction, member: Member, request_id: int, *, is_admin: bool
    ) -> Reply:
        reply = await self._transition(
            tx, member, request_id, Action.CANCEL, is_admin=is_admin, response=texts.ENOUGH
        )
        return Reply(texts.CLOSED_ENOUGH.format(id=request_id)) if reply else reply

    async def _stats(self, tx: Transaction, member: Member, now: datetime) -> Reply:
        ledger = await tx.ledger(member.person_id, now - reciprocity.LOAD_WINDOW)
        helpers = await tx.top_helpers(now - reciprocity.LOAD_WINDOW, now)
        viewer = (member.platform, member.community_id)
        return Reply(reciprocity.stats_text(ledger, helpers, viewer))

    async def _transition(
        self,
        tx: Transaction,
        member: Member,
        request_id: int,
        action: Action,
        *,
        is_admin: bool,
        response: str = "",
    ) -> Reply:
        request = await tx.request(request_id)
        if request is None:
            raise _Refused(texts.UNKNOWN_REQUEST.format(id=request_id))
        decision = decide(request, action, actor_person_id=member.person_id, is_admin=is_admin)
        if isinstance(decision, Refusal):
            raise _Refused(decision.reason)
        updated = await effects.apply(
            tx,
            request,
            action,
            decision,
            actor=member,
            now=self._clock.now(),
            platforms=self._platforms,
            response=response,
        )
        if updated is None:
            raise _Refused(texts.CHANGED_MEANWHILE.format(id=request_id))
        return Reply(_REPLIES[action].format(id=request_id, link=request.link))

    async def _setup(
        self, tx: Transaction, event: CommandReceived, command: commands.Setup
    ) -> Reply:
        if not event.is_admin:
            raise _Refused(texts.SETUP_ADMIN_ONLY)
        member = event.member
        known = await tx.community(member.platform, member.community_id)
        community = Community(
            platform=member.platform,
            community_id=member.community_id,
            name=known.name if known else "",
            review_channel_id=event.channel_id,
            timezone=command.timezone or (known.timezone if known else self._rules.timezone),
            reminder_time=command.reminder_time
            or (known.reminder_time if known else self._rules.reminder_time),
            share=command.share if command.share is not None else (known.share if known else True),
            recognition=command.recognition
            if command.recognition is not None
            else (known.recognition if known else True),
        )
        await tx.save_community(community)
        sharing = texts.SHARING_ON if community.share else texts.SHARING_OFF
        return Reply(
            texts.SETUP_DONE.format(time=community.reminder_time, tz=community.timezone)
            + " "
            + sharing
        )

    async def _link(self, tx: Transaction, member: Member, code: str | None) -> Reply:
        now = self._clock.now()
        if code is None:
            new_code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
            await tx.save_link_code(new_code, member.person_id, now + LINK_CODE_TTL)
            return Reply(texts.LINK_CODE.format(code=new_code))
        owner = await tx.use_link_code(code, now)
        if owner is None:
            raise _Refused(texts.LINK_BAD_CODE)
        if owner == member.person_id:
            raise _Refused(texts.LINK_SAME)
        await tx.merge_persons(keep=owner, merge=member.person_id)
        return Reply(texts.LINKED)

    async def _unlink(self, tx: Transaction, member: Member) -> Reply:
        if await tx.identities(member.person_id) < _LINKED:
            raise _Refused(texts.NOT_LINKED)
        await tx.split_member(member, self._clock.now())
        return Reply(texts.UNLINKED)

    async def _on_reaction(self, tx: Transaction, event: ReactionChanged) -> Reply:
        request_id = await tx.request_for_post(
            event.member.platform, event.channel_id, event.message_id
        )
        if request_id is None or event.emoji not in (
            self._rules.claim_emoji,
            self._rules.done_emoji,
            self._rules.thanks_emoji,
        ):
            return Reply.none()
        if await tx.seen_event(event.event_key, event.received_at):
            return Reply.none()
        member = await tx.member(event.member, event.received_at)
        request = await tx.request(request_id)
        assert request is not None  # noqa: S101 - relay posts reference existing requests
        holds = request.claimer is not None and request.claimer.person_id == member.person_id
        if event.emoji == self._rules.claim_emoji:
            if event.added:
                return await self._transition(tx, member, request_id, Action.CLAIM, is_admin=False)
            if holds and request.status is Status.CLAIMED:
                return await self._transition(
                    tx, member, request_id, Action.RELEASE, is_admin=False
                )
            return Reply.none()  # taking back a 👀 that never won is not a release
        if event.emoji == self._rules.thanks_emoji:
            return await self._thank(tx, member, request, event) if event.added else Reply.none()
        if event.added and holds and request.status is Status.CLAIMED:
            return await self._transition(tx, member, request_id, Action.DONE, is_admin=False)
        return Reply.none()

    async def _thank(
        self, tx: Transaction, member: Member, request: Request, event: ReactionChanged
    ) -> Reply:
        """The requester's 🙏 on a done post thanks the reviewer (once per request)."""
        reviewer = request.claimer
        if (
            request.status is not Status.DONE
            or reviewer is None
            or request.requester.person_id != member.person_id
        ):
            return Reply.none()
        if not await tx.add_thanks(
            request.id, member.person_id, reviewer.person_id, event.received_at
        ):
            return Reply.none()
        if reviewer.platform in self._platforms:
            viewer = (reviewer.platform, reviewer.community_id)
            text = texts.THANKED.format(name=texts.who(member, viewer), id=request.id)
            await tx.enqueue([effects.direct(reviewer, text)], event.received_at)
        return Reply(texts.THANKS_SENT.format(name=texts.who(reviewer)))
