"""Every sentence reviewrelay says to people, in one place.

Plain text: adapters escape and style it for their platform.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.model import Member, Request, Status

STATS_OWN = (
    "You have reviewed {given} request{gs} ({given_recent} in the last 30 days) and received "
    "{received} review{rs} ({received_recent} in the last 30 days)."
)
STATS_HELPERS = "Thank you, this month's reviewers: {names}."
STATS_NO_HELPERS = "No reviews finished in the last 30 days yet: be the first!"
HELPED = "{name} ({count} review{s})"
QUIET_ON = "Quiet hours set: no notifications {start}-{end} ({tz})."
QUIET_OFF = "Quiet hours off."
RENOTIFIED = "Asked {count} more volunteer{s} to look at request #{id}."
RENOTIFY_NOBODY = "Nobody else is available for request #{id} right now; it stays in the digest."
RENOTIFY_DAILY = (
    "Request #{id} was re-announced less than a day ago; try again after {at:%H:%M} UTC."
)
NOT_YOUR_REQUEST = "Only the person who asked can do that with request #{id}."
RENOTIFY_DM = "Could you review request #{id} ({link})? {topics} Claim it with /review claim {id}."
CLOSED_ENOUGH = "Closed request #{id}: glad you got enough feedback."
ENOUGH = "got enough feedback"
SUGGEST = "While you wait, you could help someone else: {items}."
AUTO_PAUSED = (
    "You have not picked up the last {count} requests you were told about, so notifications are "
    "paused. /review resume turns them back on."
)
THANKED = "{name} thanked you for reviewing request #{id}."
THANKS_SENT = "Thanks sent to {name}."
RECOGNITION = "Thank you to last month's reviewers: {names}. Help others learn as you learn!"

FORGET_CONFIRM = (
    "This deletes your topics, your requests' links and notes, and your name from reviewrelay, "
    "cancels your open requests and hands back your claims. Run /review forget-me confirm to go "
    "ahead."
)
FORGOTTEN = "Done: reviewrelay has forgotten you ({ended} open item{s} ended). Take care!"
EXPORT_SENT = "Your data is on its way to you as a direct message."
EXPORT_DM = "Everything reviewrelay stores about you:\n{json}"
APOLOGY = "Sorry, something went wrong on our side; please try again in a minute."
GUILD_ONLY = "Use /review in a server channel, not in a direct message."
NOTHING_CHANGED = "Nothing changed."

# The form the Done button opens. Slack allows 24 characters in a title, Discord 45.
DONE_FORM_TITLE = "Request #{id} done"
DONE_FORM_LABEL = "Your response (optional)"
DONE_FORM_PLACEHOLDER = "A note, or a link to your comments"
DONE_FORM_HINT = "Submitting marks request #{id} done; the person who asked sees your response."
DONE_FORM_SUBMIT = "Done"
DONE_FORM_CANCEL = "Cancel"

HELP = (
    "reviewrelay relays review requests to volunteers.\n"
    "/review <link> [#topic ...] [x2|x3] [note] [local]: ask for a review (x2: two reviewers; "
    "local: only this community)\n"
    "/review volunteer <topics>: hear about requests on these topics\n"
    "/review unvolunteer [topics]: stop (all topics when none given)\n"
    "/review pause <days> | resume: take a break from notifications\n"
    "/review list [#topic]: open requests | /review mine: your requests and claims\n"
    "/review claim|release|cancel <id>, /review done <id> [response]\n"
    "/review snooze <id>: still on it | /review reopen <id>: reopen an expired request\n"
    "/review setup [tz=Europe/Berlin] [time=09:00] [share=on|off] [recognition=on|off]: make this "
    "channel the review channel (admins)\n"
    "/review link [CODE] | unlink: join your Slack and Discord accounts into one person\n"
    "/review stats: your give and take | /review quiet 22:00-08:00 Europe/Berlin (or off)\n"
    "/review nudge <id>: ask more volunteers | /review close <id> enough: got enough feedback\n"
    "/review export-me: your data by DM | /review forget-me confirm: delete it\n"
    "React with :eyes: on a request to claim it and :white_check_mark: when you are done."
)

ASKED = "Request #{id} is open; {count} volunteer{s} notified."
ASKED_SEVERAL = "Request #{id} is open for {wanted} reviewers; {count} volunteer{s} notified."
ASKED_NO_TOPICS = "Request #{id} is open and posted to the review channel{s}."
ASKED_LOCAL = "It stays in this community (local)."
NOTE_CUT = "Your note was cut to {limit} characters."
DUPLICATE = "You asked for a review of that link a moment ago: request #{id} is already open."
RATE_LIMITED = "You have opened {limit} requests in the last hour; try again at {at:%H:%M} UTC."
VOLUNTEERED = "You will hear about requests on: {topics}."
UNVOLUNTEERED_ALL = "You no longer volunteer; thank you for the reviews."
UNVOLUNTEERED_SOME = "You will hear about requests on: {topics}."
NOT_VOLUNTEER = "You are not volunteering yet: /review volunteer <topics> to start."
PAUSED = "Paused until {until:%Y-%m-%d}; /review resume to come back sooner."
STILL_PAUSED = (
    "Notifications stay paused until {until:%Y-%m-%d}; /review resume turns them back on."
)
RESUMED = "Welcome back: you will hear about requests on {topics} again."
NO_OPEN = "No open requests{on}."
NOTHING_MINE = "You have no open requests or claims."
UNKNOWN_REQUEST = "There is no request #{id}."
SETUP_DONE = "This channel is now the review channel; reminders at {time} ({tz})."
SETUP_ADMIN_ONLY = "Only a community admin can run /review setup."
SETUP_BOT_CANNOT_POST = (
    "The bot cannot post in this channel: give it View Channel and Send Messages here, or run "
    "/review setup in the channel that should receive review requests."
)
SETUP_NOT_A_CHANNEL = (
    "The bot cannot post in a direct message: run /review setup in the channel that should "
    "receive review requests."
)
SETUP_RESTORED = "The bot can post here again: {count} held notice{s} go out now."
# A channel the platform said is gone or closed to the bot (logs, `reviewrelay check`).
DEGRADED_FIX = (
    "invite the bot to that channel (or unarchive it, or give the bot back its permissions "
    "there), then run /review setup in it again"
)
DEGRADED_CHECK = "channel {channel} ({platform} {community})"
DEGRADED_DETAIL = "lost since {since:%Y-%m-%d %H:%M} UTC ({reason}); {parked} notice{s} held"
SHARING_ON = "Requests from other connected communities are posted here too (share=off to stop)."
SHARING_OFF = "Only requests asked in this community are posted here (share=on to change)."
RECOGNITION_ON = "Last month's reviewers are thanked here on the 1st (recognition=off to stop)."
RECOGNITION_OFF = "No monthly thank-you post here (recognition=on to change)."
LINK_CODE = (
    "Your link code is {code}. Within 10 minutes, run /review link {code} from your account on "
    "the other platform (it works once)."
)
LINK_BAD_CODE = "That link code is unknown, used or expired; run /review link again for a new one."
LINK_SAME = "That code belongs to this same person: nothing to link."
LINK_SHARED_REQUEST = (
    "Request #{id} involves both accounts (one asked for it, or both review it): link them once "
    "it is done or cancelled."
)
LINKED = "Linked: both accounts are now one person, with one set of topics and one history."
NOT_LINKED = "This account is not linked to another one."
UNLINK_ACTIVE_REQUEST = (
    "This account asked for or holds request #{id}: unlink it once that is done or cancelled."
)
UNLINKED = "Unlinked: this account is on its own again; the shared history stays with the other."

CLAIMED = "You claimed request #{id}: {link}. Mark it done with /review done {id} or a ✅ reaction."
RELEASED = "You released request #{id}; it is open again."
COMPLETED = "Thank you! Request #{id} is marked done."
COMPLETED_YOURS = "Thank you! Your review of request #{id} is marked done."
CANCELLED = "Request #{id} is cancelled."
CHANGED_MEANWHILE = "Request #{id} changed meanwhile; please try again."

ALREADY_YOURS = "You already hold request #{id}."
ALREADY_REVIEWED = "You already reviewed request #{id}."
ALREADY_CLAIMED = "Request #{id} is already claimed by {name}."
NOT_OPEN = "Request #{id} is {status}, so it cannot be claimed."
NOT_OPEN_NUDGE = "Request #{id} is {status}; only open requests can be re-announced."
OWN_REQUEST = "You cannot review your own request #{id}."
NOT_CLAIMED = "Request #{id} is {status}, not claimed."
NOT_CLAIMER = "Request #{id} is held by {name}; only they (or an admin) can do that."
NOT_REQUESTER = "Only the person who asked (or an admin) can cancel or close request #{id}."
NOT_ACTIVE = "Request #{id} is already {status}."
NOT_REQUESTER_REOPEN = "Only the person who asked (or an admin) can reopen request #{id}."
NOT_EXPIRED = "Request #{id} is {status}; only expired requests can be reopened."
REOPENED = "Request #{id} is open again and back in the review channel."
SNOOZED = "Noted: you are still on request #{id}; no reminders for a while."
NOT_YOURS_TO_SNOOZE = "You do not hold request #{id}."

NUDGE = (
    "You claimed request #{id} ({link}) {days} days ago. Still on it? "
    "/review done {id} [response] when finished, /review release {id} to hand it back, "
    "or /review snooze {id} if you are still on it."
)
AUTO_RELEASED_CLAIMER = (
    "Request #{id} went back to the queue after two reminders; thank you for looking at it."
)
AUTO_RELEASED_REQUESTER = "Request #{id} is open again: its reviewer could not get to it."
EXPIRED_REQUESTER_PARTLY = (
    "Request #{id} ({link}) expired after {days} days with {done} of {wanted} reviews done. "
    "/review reopen {id} puts it back in the queue."
)
EXPIRED_REQUESTER = (
    "Request #{id} ({link}) expired after {days} days without a reviewer. "
    "/review reopen {id} puts it back in the queue."
)

DM_CLAIMED = "{name} claimed your request #{id} ({link})."
DM_RELEASED = "{name} released your request #{id}; it is open again."
DM_DONE = "{name} finished reviewing your request #{id} ({link})."
DM_DONE_RESPONSE = "{name} finished reviewing your request #{id} ({link}): {response}"
# A request with several reviewers: each claim and each review counts towards its slots.
DM_CLAIMED_SLOT = "{name} claimed your request #{id} ({link}): {taken} of {wanted} reviewers."
DM_DONE_SLOT = "{name} finished reviewing your request #{id} ({link}): {done} of {wanted} done."
DM_DONE_SLOT_RESPONSE = (
    "{name} finished reviewing your request #{id} ({link}), {done} of {wanted} done: {response}"
)
# An admin acting on someone else's claim: the reviewer hears it, and the requester hears who.
DM_RELEASED_YOURS = "{name} released your claim on request #{id}; it is open again."
DM_DONE_YOURS = "{name} marked your review of request #{id} done."
DM_DONE_BY = "{name} marked your request #{id} ({link}) done for {reviewers}."
DM_DONE_BY_RESPONSE = "{name} marked your request #{id} ({link}) done for {reviewers}: {response}"
DM_CANCELLED_CLAIMER = "Request #{id} that you held was cancelled by the requester."
DM_CANCELLED_CLAIMER_BY = "{name} cancelled request #{id} that you held."

DIGEST_HEAD = "Waiting for a reviewer ({count}):"
DIGEST_MORE = "…and {count} more: /review list"
DIGEST_EMPTY = "Nothing is waiting for a reviewer."
STATUS_WORDS = {
    Status.OPEN: "open",
    Status.CLAIMED: "claimed by {claimer}",
    Status.DONE: "done by {claimer}",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "expired",
}
# How a request with several slots shows its holders: "claimed · 👀 vera, sam · 2 of 2".
SEVERAL_STATUS = "{status} · {holders}"
HOLDING = "👀 {names}"
FINISHED = "✅ {names}"
SLOTS = "{taken} of {wanted}"
SLOTS_OPEN = "{taken} of {wanted} reviewers"


_DAYS_AFTER_HOURS = 48


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def status_text(request: Request, viewer: tuple[str, str] | None = None) -> str:
    if request.status is Status.CANCELLED and request.response:
        return f"closed: {request.response}"
    if request.wanted > 1 and request.status in (Status.OPEN, Status.CLAIMED, Status.DONE):
        return SEVERAL_STATUS.format(status=request.status, holders=holders(request, viewer))
    claimer = who(request.claimer, viewer) if request.claimer else "?"
    return STATUS_WORDS[request.status].format(claimer=claimer)


def state(request: Request) -> str:
    """The one word for where a request stands: a cancel with a reason is a close."""
    if request.status is Status.CANCELLED and request.response:
        return "closed"
    return str(request.status)


def who(member: Member, viewer: tuple[str, str] | None = None) -> str:
    """How a person is named to others; seen from another community, with where they are from."""
    name = member.display_name or member.user_id
    if viewer is None or (member.platform, member.community_id) == viewer:
        return name
    place = member.community_name or member.community_id
    return f"{name} · {member.platform.title()}: {place}"


def names(members: Iterable[Member], viewer: tuple[str, str] | None = None) -> str:
    return ", ".join(who(m, viewer) for m in members)


def holders(request: Request, viewer: tuple[str, str] | None = None) -> str:
    """Who reviews and who finished a request with several slots, and how many are taken."""
    finished = [m for m in request.claimers if m.person_id in request.finished]
    parts = [HOLDING.format(names=names(request.holding, viewer))] if request.holding else []
    if finished:
        parts.append(FINISHED.format(names=names(finished, viewer)))
    slots = SLOTS_OPEN if request.status is Status.OPEN else SLOTS
    parts.append(slots.format(taken=len(request.claimers), wanted=request.wanted))
    return " · ".join(parts)


def age(since: datetime, now: datetime) -> str:
    hours = int((now - since).total_seconds() // 3600)
    return f"{hours // 24}d" if hours >= _DAYS_AFTER_HOURS else f"{hours}h"


def request_line(request: Request, now: datetime, viewer: tuple[str, str] | None = None) -> str:
    """One line per request, for lists and digests."""
    topics = " ".join(f"#{t}" for t in request.topics)
    parts = [f"#{request.id}", request.link]
    if topics:
        parts.append(topics)
    parts.append(
        f"by {who(request.requester, viewer)}, {age(request.created_at, now)} ago, "
        f"{status_text(request, viewer)}"
    )
    return " · ".join(parts)


def relay_post_text(request: Request, viewer: tuple[str, str] | None = None) -> str:
    """The plain-text body of a relay post (console, notification fallbacks)."""
    lines = [f"Review request #{request.id} from {who(request.requester, viewer)}: {request.link}"]
    if request.topics:
        lines.append("Topics: " + " ".join(f"#{t}" for t in request.topics))
    if request.note:
        lines.append(f"Note: {request.note}")
    lines.append(f"Status: {status_text(request, viewer)}")
    if request.status is Status.DONE and request.response:
        lines.append(f"Response: {request.response}")
    return "\n".join(lines)
