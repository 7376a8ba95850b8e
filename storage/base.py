"""The store interface: exactly what the core needs from persistence, nothing more.

All reads and writes happen in `Store.run(work)`: `work` gets a Transaction, and the unit commits
when it returns and rolls back when it raises. Units run one after another. `work` awaits only its
transaction, never the network or a timer: that lets SqliteStore run a unit whole on its database
thread, one trip instead of one per statement.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from bot.model import (
    Community,
    Ledger,
    Member,
    Notice,
    OpenPost,
    Outgoing,
    Platform,
    QuietHours,
    ReactionChanged,
    Request,
    Status,
    Volunteer,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Digest:
    """A posted daily digest, kept so it can be edited as its requests get claimed."""

    id: int
    platform: Platform
    community_id: str
    channel_id: str
    request_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClaimToNudge:
    request: Request
    nudges: int
    claimer: Member  # whose active claim it is (a request may have several)
    claimed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Counts for /metrics and /healthz, read in one transaction."""

    requests: dict[tuple[str, str], int]  # (requester platform, status) -> count
    active_claims: int
    outbox_pending: int
    outbox_dead: int
    reminder_runs: int


@dataclass(frozen=True, slots=True)
class RelayTarget:
    platform: Platform
    community_id: str
    channel_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DegradedChannel:
    """A channel the platform said is gone or closed to the bot; its notices are parked."""

    platform: Platform
    community_id: str
    channel_id: str
    reason: str  # the platform's answer, as the dead-lettered notice recorded it
    since: datetime
    parked: int  # pending notices held for it


class Transaction(Protocol):
    # inbound de-duplication
    async def seen_event(self, event_key: str, at: datetime) -> bool:
        """Record the key; True if it had been recorded before (the event is a repeat). Either
        way the key counts as seen at `at`: its age for `forget_event_keys` starts over."""
        ...

    async def forget_event_keys(
        self, seen_before: datetime, after: str, scan: int
    ) -> tuple[int, str | None]:
        """Look at the `scan` keys that follow `after` in key order, and delete those last seen
        before `seen_before`: how many went, and where to go on (None: at the end)."""
        ...

    async def reaction_in_order(self, event: ReactionChanged) -> bool:
        """False if an event for the same user, emoji and message stamped later than this one
        was applied already (this one arrived late); else record its stamp as the newest.
        Events without a stamp (`occurred_at` None) are always in order."""
        ...

    # members and communities
    async def member(self, member: Member, at: datetime) -> Member:
        """Upsert a platform identity; returns it with its person id."""
        ...

    async def community(self, platform: Platform, community_id: str) -> Community | None: ...
    async def communities(self) -> list[Community]: ...
    async def save_community(self, community: Community) -> None: ...

    # requests
    async def add_request(
        self,
        *,
        link: str,
        topics: Sequence[str],
        note: str,
        requester: Member,
        origin_channel_id: str,
        at: datetime,
        local: bool = False,
        reviewers: int = 1,
    ) -> Request: ...
    async def request(self, request_id: int) -> Request | None: ...
    async def gave_back(self, request_id: int, person_id: int) -> bool:
        """Whether a claim of the person's on the request was released (by them or for them)."""
        ...

    async def request_for_post(
        self, platform: Platform, channel_id: str, message_id: str
    ) -> int | None: ...
    async def active_request_for(self, person_id: int, link: str, since: datetime) -> int | None:
        """The id of the person's newest active request for this link opened at or after
        `since`, if any."""
        ...

    async def nth_newest_request(self, person_id: int, since: datetime, n: int) -> datetime | None:
        """When the person's `n`th newest request at or after `since` was opened; None if they
        opened fewer than `n` since then."""
        ...

    async def requests_since(
        self, person_id: int, since: datetime, limit: int | None = None
    ) -> list[datetime]:
        """Creation times of the person's requests at or after `since`, oldest first (the first
        `limit` of them when given)."""
        ...

    async def change_status(
        self,
        request_id: int,
        before: Status,
        after: Status,
        *,
        actor: Member | None,
        at: datetime,
        response: str = "",
    ) -> Request | None:
        """Apply a transition only if the request is still `before`; None if someone was faster.
        Ends every active claim; a move to `claimed` is a `claim` by `actor`."""
        ...

    async def claim(self, request_id: int, member: Member, at: datetime) -> Request | None:
        """Take a free slot of an open request the member holds none of; the request becomes
        claimed with its last slot. None if no slot was free (someone was faster)."""
        ...

    async def end_claim(
        self,
        request_id: int,
        person_id: int,
        before: Status,
        after: Status,
        *,
        done: bool,
        at: datetime,
        response: str = "",
    ) -> Request | None:
        """End one person's active claim (done, or released) and move the request from `before`
        to `after`; None if they hold no active claim or the request is no longer `before`."""
        ...

    async def open_requests(
        self,
        topic: str | None = None,
        limit: int = 20,
        *,
        seen_from: tuple[str, str] | None = None,
    ) -> list[Request]:
        """Open requests, oldest first; with `seen_from` (platform, community id), only those
        posted in that community: its own, and others' shared ones if it shares."""
        ...

    async def requests_of(self, person_id: int) -> list[Request]:
        """Active requests the person asked for or holds."""
        ...

    async def involved_in(self, person_id: int) -> set[int]:
        """Ids of the active requests the person asked for, holds or has reviewed."""
        ...

    async def active_through(self, member: Member) -> set[int]:
        """Ids of the active requests asked for, or held by a claim made, from this account."""
        ...

    async def stale_requests(
        self,
        created_before: datetime,
        limit: int = 50,
        *,
        seen_from: tuple[str, str] | None = None,
    ) -> list[Request]:
        """Open requests created at or before the cutoff, oldest first; `seen_from`: as in
        `open_requests`."""
        ...

    async def count_stale(
        self, created_before: datetime, *, seen_from: tuple[str, str] | None = None
    ) -> int: ...
    async def requests_by_ids(self, request_ids: Sequence[int]) -> list[Request]:
        """The requests, in the order of the ids given (unknown ids skipped)."""
        ...

    # claims
    async def claims_to_nudge(self, due_before: datetime, limit: int = 100) -> list[ClaimToNudge]:
        """Active claims whose last nudge (or the claim itself) is at or before `due_before`."""
        ...

    async def record_nudge(self, request_id: int, person_id: int, at: datetime) -> None: ...
    async def snooze(self, request_id: int, person_id: int, at: datetime) -> bool:
        """Restart the nudge clock of the person's active claim; False if they hold none."""
        ...

    # digests
    async def save_digest(
        self,
        *,
        platform: Platform,
        community_id: str,
        local_date: str,
        channel_id: str,
        request_ids: Sequence[int],
        at: datetime,
    ) -> int: ...
    async def digests_with(self, request_id: int, since: datetime) -> list[Digest]:
        """Digests listing the request that were saved at or after `since`."""
        ...

    # volunteers
    async def volunteer(self, person_id: int) -> Volunteer | None: ...
    async def save_volunteer(
        self, member: Member, topics: frozenset[str], paused_until: datetime | None
    ) -> None: ...
    async def remove_volunteer(self, person_id: int) -> None: ...
    async def candidates(
        self, topics: Sequence[str], recent_since: datetime, *, ignored_at_least: int = 0
    ) -> list[Volunteer]:
        """Volunteers sharing a topic who ignored at least `ignored_at_least` notifications in a
        row, with their active claims and claims since `recent_since` counted, by person id."""
        ...

    async def rank_candidates(
        self,
        topics: Sequence[str],
        *,
        requester_person_id: int,
        now: datetime,
        recent_since: datetime,
        limit: int,
        exclude: Collection[int] = frozenset(),
    ) -> list[Volunteer]:
        """The first `limit` volunteers sharing a topic in `matching.rank`'s order, among those
        the store can tell are available: not the requester or in `exclude`, not paused, under
        their cap. Quiet hours are left to `matching.rank`. Loads count claims since
        `recent_since` (the store may bring its stored loads to that window first)."""
        ...

    async def mark_notified(
        self, person_ids: Sequence[int], at: datetime, request_id: int | None = None
    ) -> None:
        """Record a notification (of that request): it counts as ignored until they claim."""
        ...

    async def notified_for(self, request_id: int) -> set[int]: ...
    async def set_quiet(self, person_id: int, quiet: QuietHours | None) -> None: ...
    async def claim_renotify(self, request_id: int, not_since: datetime, at: datetime) -> bool:
        """Mark a re-notification; False if there was one after `not_since` already."""
        ...

    # the give/take record
    async def ledger(self, person_id: int, since: datetime) -> Ledger: ...
    async def recent_ledgers(
        self, person_ids: Collection[int], since: datetime
    ) -> dict[int, Ledger]:
        """Reviews given and received since `since` (the `_recent` fields only), per person."""
        ...

    async def top_helpers(
        self, since: datetime, until: datetime, limit: int = 5
    ) -> list[tuple[Member, int]]:
        """Who completed most reviews in the period, most first."""
        ...

    async def add_thanks(
        self, request_id: int, from_person: int, to_person: int, at: datetime
    ) -> bool: ...

    # outbox
    async def enqueue(self, notices: Sequence[Outgoing], at: datetime) -> None: ...
    async def relay_targets(self, request_id: int) -> list[RelayTarget]:
        """Where the request was (or is being) posted."""
        ...

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int = 200
    ) -> list[OpenPost]:
        """Delivered relay posts on `platform` of open or claimed requests, newest first: every
        post of at most `limit` requests, those older than request id `before` when given."""
        ...

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool:
        """Whether a relay post to `platform` due at `at` is still pending (parked ones aside)."""
        ...

    async def due_notices(
        self, now: datetime, limit: int, platform: Platform | None = None
    ) -> list[Notice]:
        """Pending notices ready to send: the oldest of each channel, so order holds per channel;
        none of a degraded channel (parked until it is set up again); only `platform`'s if
        given."""
        ...

    async def mark_sent(self, notice: Notice, message_id: str | None, at: datetime) -> None: ...
    async def mark_sending(self, notice: Notice, at: datetime) -> None:
        """Before the platform call that creates `notice`'s message: from here until it is sent
        (or dead), a pending `notice` may be on the platform already (`Notice.sending_since`)."""
        ...

    async def mark_retry(
        self,
        notice: Notice,
        next_attempt_at: datetime,
        error: str,
        *,
        maybe_sent: bool,
        counted: bool = True,
    ) -> None:
        """Try again at `next_attempt_at`; `maybe_sent`: keep the mark of `mark_sending` (the
        platform may have done it), else the attempt surely did nothing and the mark goes;
        `counted`: the attempt uses up one of the notice's `attempts` (a rate limit does not)."""
        ...

    async def mark_dead(self, notice: Notice, error: str, at: datetime) -> None: ...
    async def forget_sent_notices(
        self, sent_before: datetime, after: int, scan: int
    ) -> tuple[int, int | None]:
        """Look at the `scan` ids that follow `after`, and delete the notices sent before
        `sent_before`, relay posts aside (they say where a request's copies are): how many
        went, and where to go on (None: at the end)."""
        ...

    async def outbox_oldest_due(self) -> datetime | None:
        """The due time of the oldest pending notice not parked for a degraded channel."""
        ...

    # channels the bot lost
    async def degrade_channel(self, notice: Notice, reason: str, at: datetime) -> bool:
        """Mark the notice's channel degraded; False if it was already."""
        ...

    async def degraded_channels(self) -> list[DegradedChannel]: ...
    async def restore_channel(
        self, platform: Platform, channel_id: str, at: datetime
    ) -> DegradedChannel | None:
        """Clear the mark, releasing the parked notices and requeueing the one that failed;
        what was cleared, or None if the channel was not degraded."""
        ...

    # linked identities
    async def save_link_code(self, code: str, person_id: int, expires_at: datetime) -> None: ...
    async def use_link_code(self, code: str, now: datetime) -> int | None:
        """The code's person, marking it used; None if unknown, used or expired."""
        ...

    async def identities(self, person_id: int) -> int:
        """How many platform identities the person has."""
        ...

    async def merge_persons(self, keep: int, merge: int) -> None:
        """Make `merge`'s identities, requests, claims and topics `keep`'s."""
        ...

    async def split_member(self, member: Member, at: datetime) -> Member:
        """Give the identity a person of its own again; the old person keeps the history."""
        ...

    # operations and privacy
    async def snapshot(self) -> Snapshot: ...
    async def find_people(
        self, platform: str, community_id: str | None, user_id: str
    ) -> dict[str, int]:
        """The person behind `user_id` in each community (only `community_id`'s, if given)
        where that id is stored."""
        ...

    async def export_person(self, person_id: int) -> dict[str, Any]:
        """Everything stored about the person, as JSON-ready values."""
        ...

    async def forget_person(self, person_id: int) -> None:
        """Delete the person's data; anonymise it where other people's records need it."""
        ...

    async def digests_of_person(self, person_id: int) -> list[Digest]:
        """Digests listing a request the person asked for or holds (or held) a claim on."""
        ...

    async def rewrite_digest(self, digest_id: int, text: str) -> None:
        """Give every outbox row of the digest, sent or pending, this text."""
        ...

    # reminders
    async def record_reminder_run(
        self, platform: str, community_id: str, local_date: str, at: datetime
    ) -> bool:
        """True the first time for this community and local date; False afterwards."""
        ...

    async def last_daily_run(self, platform: str, community_id: str, since: str) -> datetime | None:
        """The latest moment a run keyed by a local date from `since` on was recorded."""
        ...

    async def record_daily_run(
        self, platform: str, community_id: str, local_date: str, at: datetime
    ) -> None:
        """Record a run for this local date at `at`, replacing one already there."""
        ...


class Store(Protocol):
    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """`work` as one unit of work, committed whole or not at all; what it returned. `work`
        may run more than once, so it changes nothing but the store: it returns what it tells."""
        ...

    async def close(self) -> None: ...
