"""The shared vocabulary: platforms, members, requests, volunteers, events in and notices out.

Everything here is a plain frozen dataclass or a StrEnum so that the core, the store and every
adapter speak the same language without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Platform(StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"


class Status(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE_STATUSES = frozenset({Status.OPEN, Status.CLAIMED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One platform identity; `person_id` joins the identities of one human (0 until stored)."""

    platform: Platform
    community_id: str
    user_id: str
    display_name: str
    person_id: int = 0
    community_name: str = ""  # filled when read back, to say where a person is from


@dataclass(frozen=True, slots=True, kw_only=True)
class Community:
    """A Slack workspace, Discord guild or the local console, with its review channel and clock."""

    platform: Platform
    community_id: str
    name: str = ""
    review_channel_id: str | None = None
    timezone: str = "UTC"
    reminder_time: str = "09:00"
    share: bool = True  # receives requests asked in other communities
    recognition: bool = True  # a monthly thank-you post to last month's reviewers


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    id: int
    link: str
    topics: tuple[str, ...]
    note: str
    requester: Member
    origin_channel_id: str
    status: Status
    created_at: datetime
    updated_at: datetime
    # The first holder, kept equal to `claimers[0]`: what the one-reviewer paths read.
    claimer: Member | None = None
    claimed_at: datetime | None = None
    response: str = ""
    local: bool = False  # relayed only to the community it was asked in
    wanted: int = 1  # reviewers asked for (`x2`): one slot per reviewer
    claimers: tuple[Member, ...] = ()  # who holds a slot or finished one, in claim order
    finished: frozenset[int] = frozenset()  # person ids among `claimers` whose review is done
    renotified_at: datetime | None = None  # the requester's last `nudge`

    def __post_init__(self) -> None:
        # Either field may be given; the other follows, so both always agree.
        if self.claimers:
            object.__setattr__(self, "claimer", self.claimers[0])
        elif self.claimer is not None:
            object.__setattr__(self, "claimers", (self.claimer,))

    @property
    def holding(self) -> tuple[Member, ...]:
        """The claimers still reviewing (an active claim)."""
        return tuple(m for m in self.claimers if m.person_id not in self.finished)

    def holds(self, person_id: int) -> bool:
        """Whether the person holds an active claim on this request."""
        return any(m.person_id == person_id for m in self.holding)


@dataclass(frozen=True, slots=True, kw_only=True)
class Volunteer:
    """A person's opt-in, with the load figures matching ranks on."""

    person_id: int
    member: Member
    topics: frozenset[str]
    max_open_claims: int = 3
    paused_until: datetime | None = None
    active_claims: int = 0
    recent_claims: int = 0  # claims in the last 30 days: the load matching balances
    last_notified_at: datetime | None = None
    quiet: QuietHours | None = None
    ignored_streak: int = 0  # notifications in a row with no claim since
    ignored_since: datetime | None = None  # when the first of those was sent


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietHours:
    start: str  # "22:00"
    end: str  # "08:00"
    timezone: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Ledger:
    """A person's give and take: reviews given (claims completed) and received."""

    given: int = 0
    given_recent: int = 0
    received: int = 0
    received_recent: int = 0
    asked: int = 0  # requests ever opened: newcomers are never held back


# --- inbound events: past-tense facts reported by an adapter ------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandReceived:
    """A `/review ...` arrived; `reply_inline` is False where a platform cannot answer in place."""

    event_key: str
    member: Member
    channel_id: str
    text: str
    received_at: datetime
    options: tuple[tuple[str, str], ...] | None = (
        None  # Discord: `text` is the verb, these its options
    )
    is_admin: bool = False
    reply_inline: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionChanged:
    """A reaction was added to or removed from a message the bot may have posted."""

    event_key: str
    member: Member
    channel_id: str
    message_id: str
    emoji: str
    added: bool
    received_at: datetime
    # The platform's own clock for the change, where it has one that orders a user's reactions
    # (Slack's event_ts, seconds as a decimal): a late arrival stamped earlier changes nothing.
    occurred_at: Decimal | None = None
    is_admin: bool = False
    reply_inline: bool = False  # a reaction has nowhere to answer: refusals go out as notices
    # Read off the post after a gap (Discord's reconcile), not seen happening: the reaction may
    # have stood there since before the last change of the request.
    snapshot: bool = False


class ButtonAction(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    DONE = "done"


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonPressed:
    """A Claim/Release/Done button on a relay post was pressed."""

    event_key: str
    member: Member
    channel_id: str
    message_id: str
    action: ButtonAction
    request_id: int
    received_at: datetime
    response: str = ""
    is_admin: bool = False
    reply_inline: bool = True


InboundEvent = CommandReceived | ReactionChanged | ButtonPressed


# --- outbound: replies rendered at once, notices delivered later through the outbox ---------------


@dataclass(frozen=True, slots=True)
class Reply:
    """What the acting user sees at once (ephemeral). Empty text means "nothing to say"."""

    text: str = ""

    @classmethod
    def none(cls) -> Reply:
        return cls("")

    def __bool__(self) -> bool:
        return bool(self.text)


class NoticeKind(StrEnum):
    RELAY_POST = "relay_post"  # a request posted to a review channel
    POST_UPDATE = "post_update"  # that post edited to show the request's current state
    DIRECT = "direct"  # a private message to one member
    EPHEMERAL = "ephemeral"  # a reply only the member sees, in a channel
    CHANNEL_TEXT = "channel_text"  # plain text in a channel (the daily digest)
    TEXT_UPDATE = "text_update"  # that text edited (the digest, as its requests get claimed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """One outgoing platform call, rendered at send time from the request's current state."""

    id: int
    kind: NoticeKind
    platform: Platform
    community_id: str
    channel_id: str = ""
    user_id: str = ""
    message_id: str = ""
    text: str = ""
    request: Request | None = None
    mentions: tuple[str, ...] = field(default_factory=tuple)
    attempts: int = 0
    # When a send of it began whose outcome is unknown (a crash or a timeout cut off the answer):
    # the platform may have the message already.
    sending_since: datetime | None = None
    digest_id: int | None = None
    covers_until: int = 0  # a post update also settles pending updates of that post up to this id


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """A notice as the core enqueues it: addressed, not yet sent, with no row id."""

    kind: NoticeKind
    platform: Platform
    community_id: str
    channel_id: str = ""
    user_id: str = ""
    text: str = ""
    request_id: int | None = None
    mentions: tuple[str, ...] = ()
    digest_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPost:
    """A delivered relay post of an open or claimed request: what an adapter re-reads to catch up
    on reactions it missed while disconnected (design §7, reconcile)."""

    request_id: int
    community_id: str
    channel_id: str
    message_id: str
    status: Status
    updated_at: datetime  # changes with every transition of the request
