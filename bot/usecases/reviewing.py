"""Working on a request: claim, release, done, cancel, reopen, close, snooze, thanks."""

from __future__ import annotations

from bot import effects, texts
from bot.model import ACTIVE_STATUSES, Reply, Request, Status
from bot.transitions import Action, Refusal, decide
from bot.usecases.base import Context, Refused

_REPLIES = {
    Action.REOPEN: texts.REOPENED,
    Action.CLAIM: texts.CLAIMED,
    Action.RELEASE: texts.RELEASED,
    Action.DONE: texts.COMPLETED,
    Action.CANCEL: texts.CANCELLED,
}


async def transition(ctx: Context, request_id: int, action: Action, response: str = "") -> Reply:
    """Apply a state change the acting member asked for, if the rules allow it."""
    request = await ctx.tx.request(request_id)
    if request is None:
        raise Refused(texts.UNKNOWN_REQUEST.format(id=request_id))
    decision = decide(request, action, actor_person_id=ctx.member.person_id, is_admin=ctx.is_admin)
    if isinstance(decision, Refusal):
        raise Refused(decision.reason)
    updated = await effects.apply(
        ctx.tx,
        request,
        action,
        decision,
        actor=ctx.member,
        now=ctx.now,
        platforms=ctx.platforms,
        response=response,
    )
    if updated is None:
        raise Refused(texts.CHANGED_MEANWHILE.format(id=request_id))
    if action is Action.DONE and updated.status is not Status.DONE:
        return Reply(texts.COMPLETED_YOURS.format(id=request_id))  # others still reviewing
    return Reply(_REPLIES[action].format(id=request_id, link=request.link))


async def close_enough(ctx: Context, request_id: int) -> Reply:
    """`close <id> enough`: the requester got enough feedback."""
    await transition(ctx, request_id, Action.CANCEL, response=texts.ENOUGH)
    return Reply(texts.CLOSED_ENOUGH.format(id=request_id))


async def snooze(ctx: Context, request_id: int) -> Reply:
    """ "Still on it": restart the claimer's nudge clock."""
    if not await ctx.tx.snooze(request_id, ctx.member.person_id, ctx.now):
        if await ctx.tx.request(request_id) is None:
            raise Refused(texts.UNKNOWN_REQUEST.format(id=request_id))
        raise Refused(texts.NOT_YOURS_TO_SNOOZE.format(id=request_id))
    return Reply(texts.SNOOZED.format(id=request_id))


async def thank(ctx: Context, request: Request) -> Reply:
    """The requester's 🙏 on a done post thanks each reviewer who finished (once per reviewer)."""
    member = ctx.member
    if request.status is not Status.DONE or request.requester.person_id != member.person_id:
        return Reply.none()
    reviewers = [m for m in request.claimers if m.person_id in request.finished]
    if not reviewers and request.claimer is not None:
        reviewers = [request.claimer]
    thanked = []
    for reviewer in reviewers:
        if not await ctx.tx.add_thanks(request.id, member.person_id, reviewer.person_id, ctx.now):
            continue
        thanked.append(reviewer)
        if reviewer.platform in ctx.platforms:
            viewer = (reviewer.platform, reviewer.community_id)
            text = texts.THANKED.format(name=texts.who(member, viewer), id=request.id)
            await ctx.tx.enqueue([effects.direct(reviewer, text)], ctx.now)
    if not thanked:
        return Reply.none()
    return Reply(texts.THANKS_SENT.format(name=texts.names(thanked)))


async def reaction(
    ctx: Context, request: Request, emoji: str, *, added: bool, snapshot: bool = False
) -> Reply:
    """👀 claims (removing it releases your own claim), ✅ by the claimer completes, 🙏 thanks."""
    rules = ctx.rules
    holds = request.holds(ctx.member.person_id) and request.status in ACTIVE_STATUSES
    if emoji == rules.claim_emoji:
        if added:
            if snapshot and await ctx.tx.gave_back(request.id, ctx.member.person_id):
                # Most likely the 👀 they claimed with, left standing when they released by
                # button or command (or the reminders released it): not a new claim.
                return Reply.none()
            return await transition(ctx, request.id, Action.CLAIM)
        if holds:
            return await transition(ctx, request.id, Action.RELEASE)
        return Reply.none()  # taking back a 👀 that never won is not a release
    if emoji == rules.thanks_emoji:
        return await thank(ctx, request) if added else Reply.none()
    if emoji == rules.done_emoji and added and holds:
        return await transition(ctx, request.id, Action.DONE)
    return Reply.none()
