"""Asking for reviews: open a request, relay it everywhere, notify the right volunteers, and
re-notify on the requester's nudge."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import commands, effects, matching, reciprocity, texts
from bot.model import NoticeKind, Outgoing, Reply, Request, Status, Volunteer
from bot.usecases.base import Context, Refused

AUTO_PAUSE = timedelta(days=365)  # until they say /review resume
RENOTIFY_EVERY = timedelta(days=1)
QUOTA_WINDOW = timedelta(hours=1)


def _next_minute(at: datetime) -> datetime:
    """`at` in whole minutes, rounded up: cut down to 09:00 from 09:00:30, a refusal would name
    a time at which the same refusal comes back."""
    if at.second or at.microsecond:
        return at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at


async def ask(ctx: Context, command: commands.Ask) -> Reply:
    """Open a request (within the quota, not a duplicate), relay it and notify volunteers."""
    tx, member, now, rules = ctx.tx, ctx.member, ctx.now, ctx.rules
    limit = rules.requests_per_hour
    # Once the oldest of the last `limit` requests leaves the window, one more fits.
    oldest = await tx.nth_newest_request(member.person_id, now - QUOTA_WINDOW, limit)
    if oldest is not None:
        raise Refused(
            texts.RATE_LIMITED.format(limit=limit, at=_next_minute(oldest + QUOTA_WINDOW))
        )
    duplicate = await tx.active_request_for(
        member.person_id, command.link, now - rules.duplicate_window
    )
    if duplicate is not None:
        raise Refused(texts.DUPLICATE.format(id=duplicate))
    request = await tx.add_request(
        link=command.link,
        topics=command.topics,
        note=command.note,
        requester=member,
        origin_channel_id=ctx.channel_id,
        at=now,
        local=command.local,
        reviewers=command.reviewers,
    )
    chosen, paused = await choose(ctx, request)
    communities = [
        c
        for c in await tx.communities()
        if c.review_channel_id
        and c.platform in ctx.platforms
        and ((c.platform, c.community_id) == ctx.viewer or (c.share and not command.local))
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
            v.member, texts.relay_post_text(request, (v.member.platform, v.member.community_id))
        )
        for v in chosen
        if (v.member.platform, v.member.community_id) not in posted
        and v.member.platform in ctx.platforms
    ]
    await tx.enqueue(notices + paused, now)
    if chosen:
        await tx.mark_notified([v.person_id for v in chosen], now, request.id)
    if not request.topics:
        text = texts.ASKED_NO_TOPICS.format(id=request.id, s=texts.plural(len(communities)))
    elif request.wanted > 1:
        text = texts.ASKED_SEVERAL.format(
            id=request.id, wanted=request.wanted, count=len(chosen), s=texts.plural(len(chosen))
        )
    else:
        text = texts.ASKED.format(id=request.id, count=len(chosen), s=texts.plural(len(chosen)))
    if command.local:
        text += " " + texts.ASKED_LOCAL
    if command.note_cut:
        text += " " + texts.NOTE_CUT.format(limit=commands.MAX_NOTE)
    hint = await reciprocity.hint(tx, member, request, now) if rules.reciprocity else ""
    return Reply(f"{text}\n{hint}" if hint else text)


async def choose(
    ctx: Context, request: Request, exclude: frozenset[int] = frozenset()
) -> tuple[list[Volunteer], list[Outgoing]]:
    """The volunteers to notify, and DMs to those paused for ignoring too many in a row."""
    tx, now, rules = ctx.tx, ctx.now, ctx.rules
    since = reciprocity.load_window_start(now)
    ignoring = [
        v
        for v in await tx.candidates(request.topics, since, ignored_at_least=rules.auto_pause_after)
        if v.person_id not in exclude
    ]
    silent = reciprocity.silent(ignoring, request, now, after=rules.auto_pause_after)
    told = []
    for volunteer in silent:  # paused from here on, so the store passes over them below
        await tx.save_volunteer(volunteer.member, volunteer.topics, now + AUTO_PAUSE)
        if volunteer.member.platform in ctx.platforms:
            text = texts.AUTO_PAUSED.format(count=volunteer.ignored_streak)
            told.append(effects.direct(volunteer.member, text))
    # The store hands over the best available volunteers in rank's own order; rank applies quiet
    # hours and has the last word. Only if quiet hours left too few of a full batch, fetch more.
    # Each slot of a request gets its share of notifications (x2: twice as many).
    limit = rules.notify_limit * request.wanted
    batch = max(limit, 1) * matching.OVERFETCH
    while True:
        found = await tx.rank_candidates(
            request.topics,
            requester_person_id=request.requester.person_id,
            now=now,
            recent_since=since,
            limit=batch,
            exclude=exclude,
        )
        # No sender, no notice: counted and marked notified, such a volunteer would be
        # auto-paused for requests they never heard of.
        reachable = [v for v in found if v.member.platform in ctx.platforms]
        chosen = matching.rank(
            reachable,
            topics=request.topics,
            requester_person_id=request.requester.person_id,
            now=now,
            limit=limit,
        )
        if len(chosen) >= limit or len(found) < batch:
            return chosen, told
        batch *= matching.OVERFETCH


async def own_request(ctx: Context, request_id: int) -> Request:
    request = await ctx.tx.request(request_id)
    if request is None:
        raise Refused(texts.UNKNOWN_REQUEST.format(id=request_id))
    if request.requester.person_id != ctx.member.person_id:
        raise Refused(texts.NOT_YOUR_REQUEST.format(id=request_id))
    return request


async def renotify(ctx: Context, request_id: int) -> Reply:
    """`nudge <id>`: ask volunteers not asked yet, once a day, for the requester only."""
    tx, now = ctx.tx, ctx.now
    request = await own_request(ctx, request_id)
    if request.status is not Status.OPEN:
        raise Refused(texts.NOT_OPEN_NUDGE.format(id=request_id, status=texts.state(request)))
    if not await tx.claim_renotify(request_id, now - RENOTIFY_EVERY, now):
        # A day after the last nudge, not the next calendar day: "tomorrow" was wrong the
        # morning after an evening nudge, and told a time too late the evening after a morning one.
        last = request.renotified_at or now
        raise Refused(
            texts.RENOTIFY_DAILY.format(id=request_id, at=_next_minute(last + RENOTIFY_EVERY))
        )
    already = frozenset(await tx.notified_for(request_id))
    chosen, paused = await choose(ctx, request, exclude=already)
    if not chosen:  # a refusal changes nothing: the day's nudge is not used up
        raise Refused(texts.RENOTIFY_NOBODY.format(id=request_id))
    topics = " ".join(f"#{t}" for t in request.topics)
    text = texts.RENOTIFY_DM.format(id=request_id, link=request.link, topics=topics)
    notices = [effects.direct(v.member, text) for v in chosen if v.member.platform in ctx.platforms]
    await tx.enqueue(notices + paused, now)
    await tx.mark_notified([v.person_id for v in chosen], now, request_id)
    return Reply(
        texts.RENOTIFIED.format(id=request_id, count=len(chosen), s=texts.plural(len(chosen)))
    )
