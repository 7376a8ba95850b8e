"""A person's own things: volunteering, what they see (list, mine, stats), linked identities,
their data (export, forget), and a community admin's setup."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from bot import commands, effects, privacy, reciprocity, texts
from bot.model import Community, Reply, Volunteer
from bot.usecases.base import Context, Refused

LINK_CODE_TTL = timedelta(minutes=10)
LIST_MAX = 20
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
_CODE_LENGTH = 8
_LINKED = 2

Volunteering = (
    commands.VolunteerFor | commands.Unvolunteer | commands.Pause | commands.Resume | commands.Quiet
)


async def _volunteer(ctx: Context) -> Volunteer:
    known = await ctx.tx.volunteer(ctx.member.person_id)
    if known is None:
        raise Refused(texts.NOT_VOLUNTEER)
    return known


def _still_paused(ctx: Context, text: str, paused_until: datetime | None) -> str:
    """`text`, and that a pause still holds: "you will hear about" alone promised notifications
    a paused volunteer (say auto-paused for a year) does not get."""
    if paused_until is None or paused_until <= ctx.now:
        return text
    return f"{text} {texts.STILL_PAUSED.format(until=paused_until)}"


async def volunteering(ctx: Context, command: Volunteering) -> Reply:
    """Topics, pauses and quiet hours of the acting volunteer."""
    tx, member = ctx.tx, ctx.member
    if isinstance(command, commands.VolunteerFor):
        known = await tx.volunteer(member.person_id)
        merged = (known.topics if known else frozenset()) | frozenset(command.topics)
        paused_until = known.paused_until if known else None
        await tx.save_volunteer(member, merged, paused_until)
        text = texts.VOLUNTEERED.format(topics=", ".join(sorted(merged)))
        return Reply(_still_paused(ctx, text, paused_until))
    known = await _volunteer(ctx)
    match command:
        case commands.Unvolunteer(topics):
            left = known.topics - frozenset(topics) if topics else frozenset()
            if not left:
                await tx.remove_volunteer(member.person_id)
                return Reply(texts.UNVOLUNTEERED_ALL)
            await tx.save_volunteer(member, left, known.paused_until)
            text = texts.UNVOLUNTEERED_SOME.format(topics=", ".join(sorted(left)))
            return Reply(_still_paused(ctx, text, known.paused_until))
        case commands.Pause(days):
            until = ctx.now + timedelta(days=days)
            await tx.save_volunteer(member, known.topics, until)
            return Reply(texts.PAUSED.format(until=until))
        case commands.Resume():
            await tx.save_volunteer(member, known.topics, None)
            return Reply(texts.RESUMED.format(topics=", ".join(sorted(known.topics))))
        case commands.Quiet(hours):
            await tx.set_quiet(known.person_id, hours)
            if hours is None:
                return Reply(texts.QUIET_OFF)
            return Reply(texts.QUIET_ON.format(start=hours.start, end=hours.end, tz=hours.timezone))
    return Reply.none()


async def listing(
    ctx: Context, command: commands.ListOpen | commands.Mine | commands.Stats
) -> Reply:
    """Open requests, your own requests and claims, or your give and take."""
    tx, now = ctx.tx, ctx.now
    if isinstance(command, commands.Stats):
        ledger = await tx.ledger(ctx.member.person_id, now - reciprocity.LOAD_WINDOW)
        helpers = await tx.top_helpers(now - reciprocity.LOAD_WINDOW, now)
        return Reply(reciprocity.stats_text(ledger, helpers, ctx.viewer))
    if isinstance(command, commands.ListOpen):
        soft = ctx.rules.reciprocity
        window = reciprocity.QUEUE_WINDOW if soft else LIST_MAX
        # Only what was posted in the asker's community: not others' `local` requests, nor anyone
        # else's in a community that does not share.
        waiting = await tx.open_requests(command.topic, limit=window, seen_from=ctx.viewer)
        found = (await reciprocity.for_volunteers(tx, waiting, now, soft=soft))[:LIST_MAX]
        empty = texts.NO_OPEN.format(on=f" on #{command.topic}" if command.topic else "")
    else:
        found = await tx.requests_of(ctx.member.person_id)
        empty = texts.NOTHING_MINE
    if not found:
        return Reply(empty)
    return Reply("\n".join(texts.request_line(r, now, ctx.viewer) for r in found))


async def link(ctx: Context, code: str | None) -> Reply:
    """Without a code: issue one. With a code: join this identity to the code's owner."""
    tx, member = ctx.tx, ctx.member
    if code is None:
        new_code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
        await tx.save_link_code(new_code, member.person_id, ctx.now + LINK_CODE_TTL)
        return Reply(texts.LINK_CODE.format(code=new_code))
    owner = await tx.use_link_code(code, ctx.now)
    if owner is None:
        raise Refused(texts.LINK_BAD_CODE)
    if owner == member.person_id:
        raise Refused(texts.LINK_SAME)
    # One person may neither review their own request nor take two slots of one: merged, the
    # claim left on such a request could not be ended by its holder.
    shared = await tx.involved_in(owner) & await tx.involved_in(member.person_id)
    if shared:
        raise Refused(texts.LINK_SHARED_REQUEST.format(id=min(shared)))
    await tx.merge_persons(keep=owner, merge=member.person_id)
    return Reply(texts.LINKED)


async def unlink(ctx: Context) -> Reply:
    if await ctx.tx.identities(ctx.member.person_id) < _LINKED:
        raise Refused(texts.NOT_LINKED)
    # The request and the claim stay with the person, not the account: split off, the account
    # would be nudged about a claim it could no longer finish or release.
    active = await ctx.tx.active_through(ctx.member)
    if active:
        raise Refused(texts.UNLINK_ACTIVE_REQUEST.format(id=min(active)))
    await ctx.tx.split_member(ctx.member, ctx.now)
    return Reply(texts.UNLINKED)


async def own_data(ctx: Context, command: commands.ForgetMe | commands.ExportMe) -> Reply:
    """export-me sends the person's data by DM; forget-me (confirmed) removes it."""
    person = ctx.member.person_id
    if isinstance(command, commands.ExportMe):
        text = texts.EXPORT_DM.format(json=await privacy.export(ctx.tx, person))
        await ctx.tx.enqueue([effects.direct(ctx.member, text)], ctx.now)
        return Reply(texts.EXPORT_SENT)
    if not command.confirmed:
        return Reply(texts.FORGET_CONFIRM)
    ended = await privacy.forget(ctx.tx, person, ctx.now, ctx.platforms)
    return Reply(texts.FORGOTTEN.format(ended=ended, s=texts.plural(ended)))


async def setup(ctx: Context, command: commands.Setup) -> Reply:
    """An admin makes this channel the review channel and sets the community's options."""
    if not ctx.is_admin:
        raise Refused(texts.SETUP_ADMIN_ONLY)
    member, rules = ctx.member, ctx.rules
    known = await ctx.tx.community(member.platform, member.community_id)
    share = command.share if command.share is not None else (known.share if known else True)
    recognition = (
        command.recognition
        if command.recognition is not None
        else (known.recognition if known else True)
    )
    community = Community(
        platform=member.platform,
        community_id=member.community_id,
        name=known.name if known else "",
        review_channel_id=ctx.channel_id,
        timezone=command.timezone or (known.timezone if known else rules.timezone),
        reminder_time=command.reminder_time
        or (known.reminder_time if known else rules.reminder_time),
        share=share,
        recognition=recognition,
    )
    await ctx.tx.save_community(community)
    sharing = texts.SHARING_ON if community.share else texts.SHARING_OFF
    if command.recognition is not None:  # said only when asked: most setups never touch it
        thanks = texts.RECOGNITION_ON if community.recognition else texts.RECOGNITION_OFF
        sharing = f"{sharing} {thanks}"
    done = texts.SETUP_DONE.format(time=community.reminder_time, tz=community.timezone)
    # Setting up a channel the bot had lost means someone fixed it: send what was held for it.
    restored = await ctx.tx.restore_channel(member.platform, ctx.channel_id, ctx.now)
    if restored is None:
        return Reply(f"{done} {sharing}")
    held = texts.SETUP_RESTORED.format(count=restored.parked, s=texts.plural(restored.parked))
    return Reply(f"{done} {sharing} {held}")
