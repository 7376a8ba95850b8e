"""What a state change owes everyone else: post edits, digest edits and DMs, as outbox rows.

Shared by the dispatcher (people acting) and the reminders (the bot acting: expiry, auto-release),
so a request changes state one way only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from bot import texts
from bot.model import Member, NoticeKind, Outgoing, Platform, Request
from bot.transitions import Action, Transition
from storage.base import Transaction

DIGEST_MAX_ITEMS = 25
DIGEST_EDIT_WINDOW = timedelta(hours=24)  # a digest is edited while it is today's news


def direct(member: Member, text: str) -> Outgoing:
    return Outgoing(
        kind=NoticeKind.DIRECT,
        platform=member.platform,
        community_id=member.community_id,
        user_id=member.user_id,
        text=text,
    )


def digest_text(
    requests: list[Request], now: datetime, *, more: int = 0, viewer: tuple[str, str] | None = None
) -> str:
    lines = [texts.DIGEST_HEAD.format(count=len(requests) + more)]
    lines += [texts.request_line(r, now, viewer) for r in requests]
    if more:
        lines.append(texts.DIGEST_MORE.format(count=more))
    return "\n".join(lines)


def _messages(
    action: Action, before: Request, after: Request, actor: Member | None, response: str
) -> list[tuple[Member, str]]:
    """Who hears about a transition, and what. `actor` None means the bot itself acted."""
    requester = before.requester
    ended = [m for m in before.holding if not after.holds(m.person_id)]  # claims this ended
    # Named as seen from the requester's community: "bob · Discord: Writers" on Slack.
    seen_by_requester = (requester.platform, requester.community_id)
    name = texts.who(actor, seen_by_requester) if actor else "reviewrelay"
    several = after.wanted > 1
    # Claims the actor ended that were not their own: an admin's override, told to the reviewer.
    overridden = [m for m in ended if actor is not None and m.person_id != actor.person_id]
    match action:
        case Action.CLAIM if several:
            text = texts.DM_CLAIMED_SLOT.format(
                name=name,
                id=after.id,
                link=after.link,
                taken=len(after.claimers),
                wanted=after.wanted,
            )
            return [(requester, text)]
        case Action.CLAIM:
            return [(requester, texts.DM_CLAIMED.format(name=name, id=after.id, link=after.link))]
        case Action.RELEASE if actor is None and ended:
            return [
                *((m, texts.AUTO_RELEASED_CLAIMER.format(id=after.id)) for m in ended),
                (requester, texts.AUTO_RELEASED_REQUESTER.format(id=after.id)),
            ]
        case Action.RELEASE:
            return [
                (requester, texts.DM_RELEASED.format(name=name, id=after.id)),
                *(
                    (m, texts.DM_RELEASED_YOURS.format(name=_seen_by(actor, m), id=after.id))
                    for m in overridden
                ),
            ]
        case Action.DONE if overridden:
            # An admin closed someone's review: the words (if any) are the admin's, not theirs.
            reviewers = texts.names(ended, seen_by_requester)
            template = texts.DM_DONE_BY_RESPONSE if response else texts.DM_DONE_BY
            text = template.format(
                name=name, id=after.id, link=after.link, reviewers=reviewers, response=response
            )
            return [
                (requester, text),
                *(
                    (m, texts.DM_DONE_YOURS.format(name=_seen_by(actor, m), id=after.id))
                    for m in overridden
                ),
            ]
        case Action.DONE:
            reviewer = texts.names(ended, seen_by_requester) or name
            if several:
                template = texts.DM_DONE_SLOT_RESPONSE if response else texts.DM_DONE_SLOT
            else:
                template = texts.DM_DONE_RESPONSE if response else texts.DM_DONE
            text = template.format(
                name=reviewer,
                id=after.id,
                link=after.link,
                response=response,
                done=len(after.finished),
                wanted=after.wanted,
            )
            return [(requester, text)]
        case Action.CANCEL if actor is not None and actor.person_id != requester.person_id:
            # An admin cancelled: the reviewers hear who, not that the requester did.
            return [
                (m, texts.DM_CANCELLED_CLAIMER_BY.format(name=_seen_by(actor, m), id=after.id))
                for m in ended
            ]
        case Action.CANCEL:
            return [(m, texts.DM_CANCELLED_CLAIMER.format(id=after.id)) for m in ended]
        case Action.EXPIRE:
            days = max(1, (after.updated_at - before.created_at).days)
            # An x2 request can expire with a review done: "without a reviewer" would deny it.
            template = texts.EXPIRED_REQUESTER_PARTLY if after.finished else texts.EXPIRED_REQUESTER
            text = template.format(
                id=after.id,
                link=after.link,
                days=days,
                done=len(after.finished),
                wanted=after.wanted,
            )
            return [(requester, text)]
    return []


def _seen_by(actor: Member | None, member: Member) -> str:
    return texts.who(actor, (member.platform, member.community_id)) if actor else "reviewrelay"


async def post_updates(tx: Transaction, request_id: int, now: datetime) -> list[Outgoing]:
    """Edits for every relay post of the request, and for today's digests that list it."""
    notices = [
        Outgoing(
            kind=NoticeKind.POST_UPDATE,
            platform=t.platform,
            community_id=t.community_id,
            channel_id=t.channel_id,
            request_id=request_id,
        )
        for t in await tx.relay_targets(request_id)
    ]
    for digest in await tx.digests_with(request_id, since=now - DIGEST_EDIT_WINDOW):
        listed = await tx.requests_by_ids(digest.request_ids)
        notices.append(
            Outgoing(
                kind=NoticeKind.TEXT_UPDATE,
                platform=digest.platform,
                community_id=digest.community_id,
                channel_id=digest.channel_id,
                text=digest_text(listed, now, viewer=(digest.platform, digest.community_id)),
                digest_id=digest.id,
            )
        )
    return notices


async def apply(
    tx: Transaction,
    request: Request,
    action: Action,
    decision: Transition,
    *,
    actor: Member | None,
    now: datetime,
    platforms: Collection[Platform],
    response: str = "",
) -> Request | None:
    """Change the request's state and enqueue what that owes; None if it changed meanwhile."""
    if action is Action.CLAIM and actor is not None:
        updated = await tx.claim(request.id, actor, now)
    elif decision.only is not None:
        updated = await tx.end_claim(
            request.id,
            decision.only,
            decision.before,
            decision.after,
            done=action is Action.DONE,
            at=now,
            response=response,
        )
    else:
        updated = await tx.change_status(
            request.id, decision.before, decision.after, actor=actor, at=now, response=response
        )
    if updated is None:
        return None
    notices = await post_updates(tx, request.id, now)
    notices += [
        direct(member, text)
        for member, text in _messages(action, request, updated, actor, response)
        if (actor is None or member.person_id != actor.person_id) and member.platform in platforms
    ]
    await tx.enqueue(notices, now)
    return updated
