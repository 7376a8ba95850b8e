"""SqliteTransaction: the Transaction protocol as SQL on the raw sqlite3 connection, with the
queries it shares and the conversions from rows to the model. `storage.sqlite` runs each unit of
work with one, on the database thread.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bot.model import (
    Community,
    Ledger,
    Member,
    Notice,
    NoticeKind,
    OpenPost,
    Outgoing,
    Platform,
    QuietHours,
    ReactionChanged,
    Request,
    Status,
    Volunteer,
)
from storage.base import (
    ClaimToNudge,
    DegradedChannel,
    Digest,
    RelayTarget,
    Snapshot,
)


@functools.lru_cache(maxsize=256)
def _ts(at: datetime) -> str:
    # Cached: a command formats the same few moments (now, now minus a window) a dozen times,
    # and isoformat with a timespec costs ~3 us a call.
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_REQUEST_SELECT = """
SELECT r.*, rm.display_name AS requester_name, cm.display_name AS claimer_name,
       (SELECT name FROM communities c WHERE c.platform = r.requester_platform
        AND c.community_id = r.requester_community) AS requester_community_name,
       (SELECT name FROM communities c WHERE c.platform = r.claimer_platform
        AND c.community_id = r.claimer_community) AS claimer_community_name,
       (SELECT json_group_array(json_array(c.id, c.platform, c.community_id, c.user_id,
               c.person_id, c.status, m.display_name, k.name))
        FROM claims c
        LEFT JOIN members m ON m.platform = c.platform AND m.community_id = c.community_id
                           AND m.user_id = c.user_id
        LEFT JOIN communities k ON k.platform = c.platform AND k.community_id = c.community_id
        WHERE c.request_id = r.id AND c.status IN ('active', 'done')) AS holders
FROM requests r
JOIN members rm ON rm.platform = r.requester_platform AND rm.community_id = r.requester_community
               AND rm.user_id = r.requester_user
LEFT JOIN members cm ON cm.platform = r.claimer_platform AND cm.community_id = r.claimer_community
                    AND cm.user_id = r.claimer_user
"""

# A volunteer's own columns (not the stored loads), their name and their topics.
_VOLUNTEER_FIELDS = """
SELECT v.person_id, v.platform, v.community_id, v.user_id, v.max_open_claims, v.paused_until,
       v.last_notified_at, v.quiet_start, v.quiet_end, v.quiet_tz, v.ignored_streak,
       v.ignored_since,
       m.display_name,
       (SELECT group_concat(t.topic, ' ') FROM volunteer_topics t WHERE t.person_id = v.person_id)
           AS topics,"""
_VOLUNTEER_JOIN = """
JOIN members m ON m.platform = v.platform AND m.community_id = v.community_id
               AND m.user_id = v.user_id
"""

# Loads counted from the requests and claims themselves (the stored counters must agree).
_VOLUNTEER_SELECT = (
    _VOLUNTEER_FIELDS
    + """
       (SELECT COUNT(*) FROM claims c
        WHERE c.person_id = v.person_id AND c.status = 'active') AS active_claims,
       (SELECT COUNT(*) FROM claims c
        WHERE c.person_id = v.person_id AND c.claimed_at >= ?) AS recent_claims
FROM volunteers v"""
    + _VOLUNTEER_JOIN
)

# Ranking reads the stored loads (migration 0005). One slice per requested topic walks
# volunteer_topics_rank in bot.matching.rank's order and stops after `limit` rows that pass what
# SQL can check; the first `limit` of the slices' union, in the same order, are the overall best,
# and only they are loaded. A slice's parameters: topic, requester person, now, excluded person
# ids (JSON array), limit.
_RANK_SLICE = """
SELECT * FROM (
    SELECT t.person_id, t.active_claims, t.recent_claims, t.last_notified_at
    FROM volunteer_topics t JOIN volunteers v ON v.person_id = t.person_id
    WHERE t.topic = ? AND t.person_id != ? AND (v.paused_until IS NULL OR v.paused_until <= ?)
      AND t.active_claims < v.max_open_claims
      AND t.person_id NOT IN (SELECT value FROM json_each(?))
    ORDER BY t.active_claims, t.recent_claims, t.last_notified_at, t.person_id LIMIT ?)"""
_RANK_ORDER = "active_claims, recent_claims, last_notified_at, person_id"
_RANK_HEAD = _VOLUNTEER_FIELDS + " v.active_claims, v.recent_claims FROM (SELECT * FROM ("
_RANK_TAIL = (
    f") ORDER BY {_RANK_ORDER} LIMIT ?) AS best "
    "JOIN volunteers v ON v.person_id = best.person_id"
    + _VOLUNTEER_JOIN
    + "ORDER BY best.active_claims, best.recent_claims, best.last_notified_at, best.person_id"
)

_NO_RECENT_COUNT = "9999"  # a `since` later than any claim: single lookups skip the 30-day count

# Every volunteer column but the key, for copying a volunteer to another person.
_VOLUNTEER_COLUMNS = (
    "platform, community_id, user_id, max_open_claims, paused_until, last_notified_at, "
    "quiet_start, quiet_end, quiet_tz, ignored_streak, ignored_since"
)

_TRANSITION_SQL: dict[Status, str] = {
    Status.CLAIMED: """UPDATE requests SET status = 'claimed', claimer_platform = ?,
        claimer_community = ?, claimer_user = ?, claimer_person = ?, claimed_at = ?, updated_at = ?
        WHERE id = ? AND status = ?""",
    Status.OPEN: """UPDATE requests SET status = 'open', claimer_platform = NULL,
        claimer_community = NULL, claimer_user = NULL, claimer_person = NULL, claimed_at = NULL,
        updated_at = ? WHERE id = ? AND status = ?""",
    Status.DONE: """UPDATE requests SET status = 'done', response = ?, updated_at = ?
        WHERE id = ? AND status = ?""",
}
# Reopening starts the request's clock again, so it is not stale or expired at once.
_REOPEN_SQL = """UPDATE requests SET status = 'open', created_at = ?, updated_at = ?
    WHERE id = ? AND status = ?"""
# Cancelled and expired requests keep no claimer: the hold ended without a review.
_END_SQL = """UPDATE requests SET status = ?, claimer_platform = NULL, claimer_community = NULL,
    claimer_user = NULL, claimer_person = NULL, claimed_at = NULL, updated_at = ?, response = ?
    WHERE id = ? AND status = ?"""
# A claim takes a free slot of an open request, once per person: one conditional statement, so
# of many simultaneous claims exactly as many win as there are slots.
_CLAIM_SQL = """INSERT INTO claims (request_id, person_id, status, claimed_at, platform,
    community_id, user_id)
    SELECT r.id, :person, 'active', :at, :platform, :community, :user FROM requests r
    WHERE r.id = :id AND r.status = 'open'
      AND r.reviewers > (SELECT COUNT(*) FROM claims c
                         WHERE c.request_id = r.id AND c.status IN ('active', 'done'))
      AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.request_id = r.id
                      AND c.person_id = :person AND c.status IN ('active', 'done'))"""
_FULL_SQL = """SELECT r.reviewers <= (SELECT COUNT(*) FROM claims c WHERE c.request_id = r.id
    AND c.status IN ('active', 'done')) AS full FROM requests r WHERE r.id = ?"""
_TOUCH_SQL = "UPDATE requests SET updated_at = ? WHERE id = ?"
# One claimer of a request with several slots finishes or lets go; the others keep theirs.
_END_ONE_SQL = """UPDATE requests SET status = :after,
    claimer_platform = CASE WHEN :after = 'open' THEN NULL ELSE claimer_platform END,
    claimer_community = CASE WHEN :after = 'open' THEN NULL ELSE claimer_community END,
    claimer_user = CASE WHEN :after = 'open' THEN NULL ELSE claimer_user END,
    claimer_person = CASE WHEN :after = 'open' THEN NULL ELSE claimer_person END,
    claimed_at = CASE WHEN :after = 'open' THEN NULL ELSE claimed_at END,
    response = CASE WHEN :response = '' THEN response ELSE :response END, updated_at = :at
    WHERE id = :id AND status = :before AND EXISTS (SELECT 1 FROM claims c
        WHERE c.request_id = :id AND c.person_id = :person AND c.status = 'active')"""
_CLAIM_END = {
    Status.OPEN: "released",
    Status.DONE: "done",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "cancelled",
}


# Whether a request was posted in a community (the relay's rule in bot.usecases.asking): asked
# there, or asked elsewhere, not `local`, and the community shares (as a community not stored
# yet would: `share` starts on). No community: everywhere.
_SEEN_FROM = (
    "(:everywhere OR ({r}requester_platform = :platform AND {r}requester_community = :community) "
    "OR (NOT {r}local AND COALESCE((SELECT share FROM communities WHERE platform = :platform "
    "AND community_id = :community), 1)))"
)


def _seen_from(community: tuple[str, str] | None) -> dict[str, Any]:
    if community is None:
        return {"everywhere": True, "platform": None, "community": None}
    return {"everywhere": False, "platform": community[0], "community": community[1]}


def _row_to_member(row: sqlite3.Row, prefix: str, name_column: str) -> Member:
    return Member(
        platform=Platform(row[f"{prefix}_platform"]),
        community_id=row[f"{prefix}_community"],
        user_id=row[f"{prefix}_user"],
        display_name=row[name_column] or "",
        person_id=row[f"{prefix}_person"],
        community_name=row[f"{prefix}_community_name"] or "",
    )


def _row_to_request(row: sqlite3.Row) -> Request:
    created = _dt(row["created_at"])
    updated = _dt(row["updated_at"])
    assert created is not None  # noqa: S101 - NOT NULL column
    assert updated is not None  # noqa: S101 - NOT NULL column
    holders = sorted(json.loads(row["holders"]))  # by claim id: the order they claimed in
    return Request(
        id=row["id"],
        link=row["link"],
        topics=tuple(row["topics"].split()),
        note=row["note"],
        requester=_row_to_member(row, "requester", "requester_name"),
        origin_channel_id=row["origin_channel_id"],
        status=Status(row["status"]),
        created_at=created,
        updated_at=updated,
        claimed_at=_dt(row["claimed_at"]),
        response=row["response"],
        local=bool(row["local"]),
        wanted=row["reviewers"],
        claimers=tuple(
            Member(
                platform=Platform(h[1]),
                community_id=h[2],
                user_id=h[3],
                display_name=h[6] or "",
                person_id=h[4],
                community_name=h[7] or "",
            )
            for h in holders
        ),
        finished=frozenset(h[4] for h in holders if h[5] == "done"),
        renotified_at=_dt(row["renotified_at"]),
    )


def _row_to_volunteer(row: sqlite3.Row) -> Volunteer:
    member = Member(
        platform=Platform(row["platform"]),
        community_id=row["community_id"],
        user_id=row["user_id"],
        display_name=row["display_name"],
        person_id=row["person_id"],
    )
    return Volunteer(
        person_id=row["person_id"],
        member=member,
        topics=frozenset((row["topics"] or "").split()),
        max_open_claims=row["max_open_claims"],
        paused_until=_dt(row["paused_until"]),
        active_claims=row["active_claims"],
        recent_claims=row["recent_claims"],
        last_notified_at=_dt(row["last_notified_at"]),
        quiet=QuietHours(start=row["quiet_start"], end=row["quiet_end"], timezone=row["quiet_tz"])
        if row["quiet_start"]
        else None,
        ignored_streak=row["ignored_streak"],
        ignored_since=_dt(row["ignored_since"]),
    )


def _row_to_community(row: sqlite3.Row) -> Community:
    return Community(
        platform=Platform(row["platform"]),
        community_id=row["community_id"],
        name=row["name"],
        review_channel_id=row["review_channel_id"],
        timezone=row["timezone"],
        reminder_time=row["reminder_time"],
        share=bool(row["share"]),
        recognition=bool(row["recognition"]),
    )


def _order_key(notice: Outgoing) -> str:
    if notice.kind is NoticeKind.DIRECT:
        return f"{notice.platform}:dm:{notice.user_id}"
    return f"{notice.platform}:{notice.channel_id}"


def _bound(params: Iterable[Any] | dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
    # Concrete types: an isinstance against the Mapping ABC costs as much as binding the values.
    return params if isinstance(params, tuple | dict) else tuple(params)


def _placeholders(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class SqliteTransaction:
    """The Transaction protocol on the raw sqlite3 connection, inside BEGIN IMMEDIATE.

    Made only by `SqliteStore.run`, on the database's thread: its methods are coroutines to match
    the protocol, and complete without suspending (they call sqlite3 directly).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # Until COMMIT, for every unit after it (see storage.sqlite._commit).
        self.deferred_foreign_keys = False

    async def _rows(
        self, sql: str, params: Iterable[Any] | dict[str, Any] = ()
    ) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = self._db.execute(sql, _bound(params)).fetchall()
        return rows

    async def _one(
        self, sql: str, params: Iterable[Any] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def _run(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        # Whether a write changed a row is its cursor's rowcount, and the row it added its
        # lastrowid; both come free, where a RETURNING clause gathers its rows in a temporary
        # table first (nearly twice the cost of a one-row INSERT). RETURNING is for values.
        return self._db.execute(sql, _bound(params))

    async def _insert(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> int:
        """The rowid of the one row `sql` (an INSERT ... VALUES) added."""
        rowid = (await self._run(sql, params)).lastrowid
        assert rowid is not None  # noqa: S101 - an INSERT that did not raise added its row
        return rowid

    async def seen_event(self, event_key: str, at: datetime) -> bool:
        added = await self._run(
            "INSERT INTO inbound_events (event_key, received_at) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            (event_key, _ts(at)),
        )
        if added.rowcount:
            return False
        # Only repeats pay for this: reconcile feeds the same reactions at each new session, and
        # a key it keeps meeting must outlive retention.
        await self._run(
            "UPDATE inbound_events SET received_at = ? WHERE event_key = ?", (_ts(at), event_key)
        )
        return True

    async def forget_event_keys(
        self, seen_before: datetime, after: str, scan: int
    ) -> tuple[int, str | None]:
        window = await self._one(
            "SELECT COUNT(*) AS n, MAX(event_key) AS last FROM (SELECT event_key "
            "FROM inbound_events WHERE event_key > ? ORDER BY event_key LIMIT ?)",
            (after, scan),
        )
        if window is None or not window["n"]:
            return 0, None
        gone = await self._run(
            "DELETE FROM inbound_events WHERE event_key > ? AND event_key <= ? AND received_at < ?",
            (after, window["last"], _ts(seen_before)),
        )
        return gone.rowcount, window["last"] if window["n"] == scan else None

    async def reaction_in_order(self, event: ReactionChanged) -> bool:
        if event.occurred_at is None:
            return True
        key = (
            event.member.platform,
            event.channel_id,
            event.message_id,
            event.member.user_id,
            event.emoji,
        )
        row = await self._one(
            "SELECT newest FROM reaction_order WHERE platform = ? AND channel_id = ? "
            "AND message_id = ? AND user_id = ? AND emoji = ?",
            key,
        )
        # Compared as decimals: as text "999.9" would sort after "1000.0". An equal stamp is
        # not older, so it applies (arrival order breaks the tie, as it did before stamps).
        if row is not None and Decimal(row["newest"]) > event.occurred_at:
            return False
        await self._run(
            "INSERT INTO reaction_order VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET newest = excluded.newest",
            (*key, str(event.occurred_at)),
        )
        return True

    async def member(self, member: Member, at: datetime) -> Member:
        key = (member.platform, member.community_id, member.user_id)
        # The community's name comes in the same statement: one trip to the database thread
        # fewer on every inbound event.
        row = await self._one(
            "SELECT m.person_id, m.display_name, c.name AS place FROM members m "
            "LEFT JOIN communities c "
            "ON c.platform = m.platform AND c.community_id = m.community_id "
            "WHERE m.platform = ? AND m.community_id = ? AND m.user_id = ?",
            key,
        )
        place: str | None = row["place"] if row is not None else None
        if row is None:
            person_id = await self._insert(
                "INSERT INTO persons (created_at) VALUES (?)", (_ts(at),)
            )
            await self._run(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?)", (*key, member.display_name, person_id)
            )
            name = member.display_name
            community = await self._one(
                "SELECT name FROM communities WHERE platform = ? AND community_id = ?", key[:2]
            )
            place = community["name"] if community else None
        else:
            person_id, name = int(row["person_id"]), row["display_name"]
            if member.display_name and member.display_name != name:
                name = member.display_name
                await self._run(
                    "UPDATE members SET display_name = ? WHERE platform = ? "
                    "AND community_id = ? AND user_id = ?",
                    (name, *key),
                )
        return Member(
            platform=member.platform,
            community_id=member.community_id,
            user_id=member.user_id,
            display_name=name,
            person_id=person_id,
            community_name=place or "",
        )

    async def community(self, platform: Platform, community_id: str) -> Community | None:
        row = await self._one(
            "SELECT * FROM communities WHERE platform = ? AND community_id = ?",
            (platform, community_id),
        )
        return _row_to_community(row) if row else None

    async def communities(self) -> list[Community]:
        rows = await self._rows("SELECT * FROM communities ORDER BY platform, community_id")
        return [_row_to_community(r) for r in rows]

    async def save_community(self, community: Community) -> None:
        await self._run(
            "INSERT INTO communities (platform, community_id, name, review_channel_id, timezone, "
            "reminder_time, share, recognition) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET name = excluded.name, "
            "review_channel_id = excluded.review_channel_id, timezone = excluded.timezone, "
            "reminder_time = excluded.reminder_time, share = excluded.share, "
            "recognition = excluded.recognition",
            (
                community.platform,
                community.community_id,
                community.name,
                community.review_channel_id,
                community.timezone,
                community.reminder_time,
                community.share,
                community.recognition,
            ),
        )

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
    ) -> Request:
        request_id = await self._insert(
            "INSERT INTO requests (link, topics, note, requester_platform, requester_community, "
            "requester_user, requester_person, origin_channel_id, status, created_at, updated_at, "
            "local, reviewers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
            (
                link,
                " ".join(topics),
                note,
                requester.platform,
                requester.community_id,
                requester.user_id,
                requester.person_id,
                origin_channel_id,
                _ts(at),
                _ts(at),
                local,
                reviewers,
            ),
        )
        # Everything is known here: reading the row back would cost a trip for nothing.
        stored = datetime.fromisoformat(_ts(at))
        return Request(
            id=request_id,
            link=link,
            topics=tuple(" ".join(topics).split()),
            note=note,
            requester=requester,
            origin_channel_id=origin_channel_id,
            status=Status.OPEN,
            created_at=stored,
            updated_at=stored,
            local=local,
            wanted=reviewers,
        )

    async def request(self, request_id: int) -> Request | None:
        row = await self._one(_REQUEST_SELECT + " WHERE r.id = ?", (request_id,))
        return _row_to_request(row) if row else None

    async def gave_back(self, request_id: int, person_id: int) -> bool:
        row = await self._one(
            "SELECT 1 FROM claims WHERE request_id = ? AND person_id = ? AND status = 'released' "
            "LIMIT 1",
            (request_id, person_id),
        )
        return row is not None

    async def request_for_post(
        self, platform: Platform, channel_id: str, message_id: str
    ) -> int | None:
        row = await self._one(
            "SELECT request_id FROM relay_posts WHERE platform = ? AND channel_id = ? "
            "AND message_id = ?",
            (platform, channel_id, message_id),
        )
        return int(row["request_id"]) if row else None

    async def active_request_for(self, person_id: int, link: str, since: datetime) -> int | None:
        row = await self._one(
            "SELECT id FROM requests WHERE requester_person = ? AND created_at >= ? AND link = ? "
            "AND status IN ('open', 'claimed') ORDER BY created_at DESC LIMIT 1",
            (person_id, _ts(since), link),
        )
        return int(row["id"]) if row else None

    async def nth_newest_request(self, person_id: int, since: datetime, n: int) -> datetime | None:
        row = await self._one(
            "SELECT created_at FROM requests WHERE requester_person = ? AND created_at >= ? "
            "ORDER BY created_at DESC LIMIT 1 OFFSET ?",
            (person_id, _ts(since), n - 1),
        )
        return datetime.fromisoformat(row["created_at"]) if row else None

    async def requests_since(
        self, person_id: int, since: datetime, limit: int | None = None
    ) -> list[datetime]:
        rows = await self._rows(
            "SELECT created_at FROM requests WHERE requester_person = ? AND created_at >= ? "
            "ORDER BY created_at LIMIT ?",
            (person_id, _ts(since), -1 if limit is None else limit),
        )
        return [datetime.fromisoformat(r["created_at"]) for r in rows]

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
        if after is Status.CLAIMED:
            assert actor is not None  # noqa: S101 - a claim always has a claimer
            return await self.claim(request_id, actor, at)
        params: tuple[Any, ...]
        if before is Status.EXPIRED:
            sql, params = _REOPEN_SQL, (_ts(at), _ts(at), request_id, before)
        elif after is Status.OPEN:
            sql, params = _TRANSITION_SQL[after], (_ts(at), request_id, before)
        elif after is Status.DONE:
            sql, params = _TRANSITION_SQL[after], (response, _ts(at), request_id, before)
        else:
            sql, params = _END_SQL, (after, _ts(at), response, request_id, before)
        changed = (await self._run(sql, params)).rowcount
        if changed:
            await self._run(
                "UPDATE claims SET status = ?, ended_at = ? "
                "WHERE request_id = ? AND status = 'active'",
                (_CLAIM_END[after], _ts(at), request_id),
            )
        return await self.request(request_id) if changed else None

    async def claim(self, request_id: int, member: Member, at: datetime) -> Request | None:
        taken = await self._run(
            _CLAIM_SQL,
            {
                "id": request_id,
                "person": member.person_id,
                "at": _ts(at),
                "platform": member.platform,
                "community": member.community_id,
                "user": member.user_id,
            },
        )
        if not taken.rowcount:
            return None
        # Claiming anything answers the notifications this person was ignoring.
        await self._run(
            "UPDATE volunteers SET ignored_streak = 0 WHERE person_id = ?", (member.person_id,)
        )
        full = await self._one(_FULL_SQL, (request_id,))
        if full is not None and full["full"]:
            params = (
                member.platform,
                member.community_id,
                member.user_id,
                member.person_id,
                _ts(at),
                _ts(at),
                request_id,
                Status.OPEN,
            )
            await self._run(_TRANSITION_SQL[Status.CLAIMED], params)
        else:
            await self._run(_TOUCH_SQL, (_ts(at), request_id))
        return await self.request(request_id)

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
        changed = await self._run(
            _END_ONE_SQL,
            {
                "id": request_id,
                "person": person_id,
                "before": before,
                "after": after,
                "response": response,
                "at": _ts(at),
            },
        )
        if not changed.rowcount:
            return None
        await self._run(
            "UPDATE claims SET status = ?, ended_at = ? WHERE request_id = ? AND person_id = ? "
            "AND status = 'active'",
            ("done" if done else "released", _ts(at), request_id, person_id),
        )
        return await self.request(request_id)

    async def open_requests(
        self,
        topic: str | None = None,
        limit: int = 20,
        *,
        seen_from: tuple[str, str] | None = None,
    ) -> list[Request]:
        on_topic = "" if topic is None else "AND (' ' || r.topics || ' ') LIKE :topic "
        rows = await self._rows(
            _REQUEST_SELECT + f" WHERE r.status = 'open' {on_topic}"
            f"AND {_SEEN_FROM.format(r='r.')} ORDER BY r.created_at LIMIT :limit",
            {"topic": f"% {topic} %", "limit": limit, **_seen_from(seen_from)},
        )
        return [_row_to_request(r) for r in rows]

    async def requests_of(self, person_id: int) -> list[Request]:
        rows = await self._rows(
            _REQUEST_SELECT + " WHERE r.status IN ('open', 'claimed') "
            "AND (r.requester_person = ? OR EXISTS (SELECT 1 FROM claims c "
            "WHERE c.request_id = r.id AND c.person_id = ? AND c.status = 'active')) ORDER BY r.id",
            (person_id, person_id),
        )
        return [_row_to_request(r) for r in rows]

    async def involved_in(self, person_id: int) -> set[int]:
        rows = await self._rows(
            "SELECT id FROM requests WHERE status IN ('open', 'claimed') AND requester_person = ? "
            "UNION SELECT c.request_id FROM claims c JOIN requests r ON r.id = c.request_id "
            "WHERE c.person_id = ? AND c.status IN ('active', 'done') "
            "AND r.status IN ('open', 'claimed')",
            (person_id, person_id),
        )
        return {int(r["id"]) for r in rows}

    async def active_through(self, member: Member) -> set[int]:
        rows = await self._rows(
            "SELECT id FROM requests WHERE status IN ('open', 'claimed') "
            "AND requester_platform = :platform AND requester_community = :community "
            "AND requester_user = :user "
            "UNION SELECT c.request_id FROM claims c JOIN requests r ON r.id = c.request_id "
            "WHERE c.platform = :platform AND c.community_id = :community AND c.user_id = :user "
            "AND c.status = 'active' AND r.status IN ('open', 'claimed')",
            {"platform": member.platform, "community": member.community_id, "user": member.user_id},
        )
        return {int(r["id"]) for r in rows}

    async def stale_requests(
        self,
        created_before: datetime,
        limit: int = 50,
        *,
        seen_from: tuple[str, str] | None = None,
    ) -> list[Request]:
        rows = await self._rows(
            _REQUEST_SELECT + " WHERE r.status = 'open' AND r.created_at <= :before "
            f"AND {_SEEN_FROM.format(r='r.')} ORDER BY r.created_at LIMIT :limit",
            {"before": _ts(created_before), "limit": limit, **_seen_from(seen_from)},
        )
        return [_row_to_request(r) for r in rows]

    async def count_stale(
        self, created_before: datetime, *, seen_from: tuple[str, str] | None = None
    ) -> int:
        row = await self._one(
            "SELECT COUNT(*) AS n FROM requests WHERE status = 'open' AND created_at <= :before "
            f"AND {_SEEN_FROM.format(r='')}",
            {"before": _ts(created_before), **_seen_from(seen_from)},
        )
        return int(row["n"]) if row else 0

    async def requests_by_ids(self, request_ids: Sequence[int]) -> list[Request]:
        if not request_ids:
            return []
        rows = await self._rows(
            _REQUEST_SELECT + f" WHERE r.id IN ({_placeholders(request_ids)})", request_ids
        )
        by_id = {r.id: r for r in map(_row_to_request, rows)}
        return [by_id[i] for i in request_ids if i in by_id]

    async def claims_to_nudge(self, due_before: datetime, limit: int = 100) -> list[ClaimToNudge]:
        # One row a person and request: two accounts that each took a slot and were then linked
        # are one person with two claims there. A person with a finished review there holds
        # nothing (Request.holding), and looking for them among the holders stopped every sweep.
        rows = await self._rows(
            "SELECT request_id, person_id, MAX(nudges) AS nudges, MIN(claimed_at) AS claimed_at "
            "FROM claims c WHERE status = 'active' AND COALESCE(nudged_at, claimed_at) <= ? "
            "AND NOT EXISTS (SELECT 1 FROM claims d WHERE d.request_id = c.request_id "
            "AND d.person_id = c.person_id AND d.status = 'done') "
            "GROUP BY request_id, person_id ORDER BY claimed_at LIMIT ?",
            (_ts(due_before), limit),
        )
        requests = {r.id: r for r in await self.requests_by_ids([r["request_id"] for r in rows])}
        due = []
        for row in rows:
            request = requests[row["request_id"]]
            claimer = next(m for m in request.holding if m.person_id == row["person_id"])
            claimed_at = datetime.fromisoformat(row["claimed_at"])
            due.append(ClaimToNudge(request, int(row["nudges"]), claimer, claimed_at))
        return due

    async def record_nudge(self, request_id: int, person_id: int, at: datetime) -> None:
        await self._run(
            "UPDATE claims SET nudges = nudges + 1, nudged_at = ? "
            "WHERE request_id = ? AND person_id = ? AND status = 'active'",
            (_ts(at), request_id, person_id),
        )

    async def snooze(self, request_id: int, person_id: int, at: datetime) -> bool:
        snoozed = await self._run(
            "UPDATE claims SET nudges = 0, nudged_at = ? WHERE request_id = ? AND person_id = ? "
            "AND status = 'active'",
            (_ts(at), request_id, person_id),
        )
        return bool(snoozed.rowcount)

    async def save_digest(
        self,
        *,
        platform: Platform,
        community_id: str,
        local_date: str,
        channel_id: str,
        request_ids: Sequence[int],
        at: datetime,
    ) -> int:
        # A date already there belongs to a digest sent before the community moved its time zone
        # west: the new digest takes its place as the one that claims and releases edit.
        row = await self._one(
            "INSERT INTO digests (platform, community_id, local_date, channel_id, request_ids, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
            "channel_id = excluded.channel_id, request_ids = excluded.request_ids, "
            "message_id = '', created_at = excluded.created_at RETURNING id",
            (
                platform,
                community_id,
                local_date,
                channel_id,
                " ".join(map(str, request_ids)),
                _ts(at),
            ),
        )
        assert row is not None  # noqa: S101 - an upsert returns its row
        return int(row["id"])

    async def digests_with(self, request_id: int, since: datetime) -> list[Digest]:
        rows = await self._rows(
            "SELECT * FROM digests WHERE created_at >= ? "
            "AND (' ' || request_ids || ' ') LIKE ? ORDER BY id",
            (_ts(since), f"% {request_id} %"),
        )
        return self._digests(rows)

    async def digests_of_person(self, person_id: int) -> list[Digest]:
        rows = await self._rows(
            "SELECT DISTINCT d.* FROM digests d JOIN ("
            " SELECT id FROM requests WHERE requester_person = ?1"
            " UNION SELECT request_id FROM claims WHERE person_id = ?1) r"
            " ON (' ' || d.request_ids || ' ') LIKE '% ' || r.id || ' %' ORDER BY d.id",
            (person_id,),
        )
        return self._digests(rows)

    async def rewrite_digest(self, digest_id: int, text: str) -> None:
        await self._run("UPDATE outbox SET text = ? WHERE digest_id = ?", (text, digest_id))

    @staticmethod
    def _digests(rows: Sequence[sqlite3.Row]) -> list[Digest]:
        return [
            Digest(
                id=r["id"],
                platform=Platform(r["platform"]),
                community_id=r["community_id"],
                channel_id=r["channel_id"],
                request_ids=tuple(int(i) for i in r["request_ids"].split()),
            )
            for r in rows
        ]

    async def volunteer(self, person_id: int) -> Volunteer | None:
        row = await self._one(
            _VOLUNTEER_SELECT + " WHERE v.person_id = ?", (_NO_RECENT_COUNT, person_id)
        )
        return _row_to_volunteer(row) if row else None

    async def save_volunteer(
        self, member: Member, topics: frozenset[str], paused_until: datetime | None
    ) -> None:
        await self._run(
            "INSERT INTO volunteers (person_id, platform, community_id, user_id, paused_until) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET platform = excluded.platform, "
            "community_id = excluded.community_id, user_id = excluded.user_id, "
            "paused_until = excluded.paused_until, ignored_streak = 0",
            (
                member.person_id,
                member.platform,
                member.community_id,
                member.user_id,
                _ts(paused_until) if paused_until else None,
            ),
        )
        await self._run("DELETE FROM volunteer_topics WHERE person_id = ?", (member.person_id,))
        self._db.executemany(
            "INSERT INTO volunteer_topics (topic, person_id) VALUES (?, ?)",
            [(t, member.person_id) for t in sorted(topics)],
        )

    async def remove_volunteer(self, person_id: int) -> None:
        await self._run("DELETE FROM volunteer_topics WHERE person_id = ?", (person_id,))
        await self._run("DELETE FROM volunteers WHERE person_id = ?", (person_id,))

    async def candidates(
        self, topics: Sequence[str], recent_since: datetime, *, ignored_at_least: int = 0
    ) -> list[Volunteer]:
        if not topics:
            return []
        rows = await self._rows(
            _VOLUNTEER_SELECT + " WHERE v.person_id IN (SELECT person_id FROM volunteer_topics "
            f"WHERE topic IN ({_placeholders(topics)}) AND ignored_streak >= ?) "
            "ORDER BY v.person_id",
            (_ts(recent_since), *topics, ignored_at_least),
        )
        return [_row_to_volunteer(r) for r in rows]

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
        await self._move_load_window(recent_since)
        wanted = sorted(set(topics))
        if not wanted or limit <= 0:
            return []
        excluded = json.dumps(sorted(exclude)) if exclude else "[]"
        params: list[Any] = []
        for topic in wanted:
            params += (topic, requester_person_id, _ts(now), excluded, limit)
        rows = await self._rows(
            _RANK_HEAD + " UNION ".join([_RANK_SLICE] * len(wanted)) + _RANK_TAIL,
            (*params, limit),
        )
        return [_row_to_volunteer(r) for r in rows]

    async def _move_load_window(self, since: datetime) -> None:
        """Make the stored 30-day loads count the claims made at or after `since` (the
        migration's triggers recount the volunteers whose load that changes)."""
        await self._run(
            "UPDATE load_window SET since = :since WHERE since != :since", {"since": _ts(since)}
        )

    async def mark_notified(
        self, person_ids: Sequence[int], at: datetime, request_id: int | None = None
    ) -> None:
        await self._run(
            "UPDATE volunteers SET last_notified_at = ?, ignored_streak = ignored_streak + 1, "
            "ignored_since = CASE WHEN ignored_streak = 0 THEN ? ELSE ignored_since END "
            f"WHERE person_id IN ({_placeholders(person_ids)})",
            (_ts(at), _ts(at), *person_ids),
        )
        if request_id is not None:
            self._db.executemany(
                "INSERT OR IGNORE INTO notifications (request_id, person_id, notified_at) "
                "VALUES (?, ?, ?)",
                [(request_id, p, _ts(at)) for p in person_ids],
            )

    async def notified_for(self, request_id: int) -> set[int]:
        rows = await self._rows(
            "SELECT person_id FROM notifications WHERE request_id = ?", (request_id,)
        )
        return {int(r["person_id"]) for r in rows}

    async def set_quiet(self, person_id: int, quiet: QuietHours | None) -> None:
        values = (quiet.start, quiet.end, quiet.timezone) if quiet else (None, None, None)
        await self._run(
            "UPDATE volunteers SET quiet_start = ?, quiet_end = ?, quiet_tz = ? "
            "WHERE person_id = ?",
            (*values, person_id),
        )

    async def claim_renotify(self, request_id: int, not_since: datetime, at: datetime) -> bool:
        claimed = await self._run(
            "UPDATE requests SET renotified_at = ? WHERE id = ? "
            "AND (renotified_at IS NULL OR renotified_at <= ?)",
            (_ts(at), request_id, _ts(not_since)),
        )
        return bool(claimed.rowcount)

    async def ledger(self, person_id: int, since: datetime) -> Ledger:
        row = await self._one(
            "SELECT "
            "(SELECT COUNT(*) FROM claims WHERE person_id = :p AND status = 'done') AS given, "
            "(SELECT COUNT(*) FROM claims WHERE person_id = :p AND status = 'done' "
            " AND ended_at >= :since) AS given_recent, "
            # One review received per completed claim: an x2 request gives two.
            "(SELECT COUNT(*) FROM claims c JOIN requests r ON r.id = c.request_id "
            " WHERE r.requester_person = :p AND c.status = 'done') AS received, "
            "(SELECT COUNT(*) FROM claims c JOIN requests r ON r.id = c.request_id "
            " WHERE r.requester_person = :p AND c.status = 'done' AND c.ended_at >= :since) "
            " AS received_recent, "
            "(SELECT COUNT(*) FROM requests WHERE requester_person = :p) AS asked",
            {"p": person_id, "since": _ts(since)},
        )
        assert row is not None  # noqa: S101 - a SELECT of counts always yields one row
        return Ledger(
            given=row["given"],
            given_recent=row["given_recent"],
            received=row["received"],
            received_recent=row["received_recent"],
            asked=row["asked"],
        )

    async def recent_ledgers(
        self, person_ids: Collection[int], since: datetime
    ) -> dict[int, Ledger]:
        # Two walks of the window's completed claims (index claims_done), not a query per person:
        # the digest orders up to a hundred requesters' requests by their balance.
        ids = json.dumps(sorted(person_ids))
        given = await self._rows(
            "SELECT person_id AS p, COUNT(*) AS n FROM claims "
            "WHERE status = 'done' AND ended_at >= ? "
            "AND person_id IN (SELECT value FROM json_each(?)) GROUP BY person_id",
            (_ts(since), ids),
        )
        received = await self._rows(
            "SELECT r.requester_person AS p, COUNT(*) AS n FROM claims c "
            "JOIN requests r ON r.id = c.request_id WHERE c.status = 'done' AND c.ended_at >= ? "
            "AND r.requester_person IN (SELECT value FROM json_each(?)) "
            "GROUP BY r.requester_person",
            (_ts(since), ids),
        )
        gave = {int(r["p"]): int(r["n"]) for r in given}
        got = {int(r["p"]): int(r["n"]) for r in received}
        return {
            p: Ledger(given_recent=gave.get(p, 0), received_recent=got.get(p, 0))
            for p in person_ids
        }

    async def top_helpers(
        self, since: datetime, until: datetime, limit: int = 5
    ) -> list[tuple[Member, int]]:
        rows = await self._rows(
            "SELECT c.person_id, COUNT(*) AS n, m.platform, m.community_id, m.user_id, "
            "m.display_name, (SELECT name FROM communities k WHERE k.platform = m.platform "
            "AND k.community_id = m.community_id) AS community_name "
            "FROM claims c JOIN members m ON m.rowid = (SELECT rowid FROM members "
            "WHERE person_id = c.person_id ORDER BY rowid LIMIT 1) "
            "WHERE c.status = 'done' AND c.ended_at >= ? AND c.ended_at < ? "
            "GROUP BY c.person_id ORDER BY n DESC, c.person_id LIMIT ?",
            (_ts(since), _ts(until), limit),
        )
        return [
            (
                Member(
                    platform=Platform(r["platform"]),
                    community_id=r["community_id"],
                    user_id=r["user_id"],
                    display_name=r["display_name"],
                    person_id=r["person_id"],
                    community_name=r["community_name"] or "",
                ),
                int(r["n"]),
            )
            for r in rows
        ]

    async def add_thanks(
        self, request_id: int, from_person: int, to_person: int, at: datetime
    ) -> bool:
        added = await self._run(
            "INSERT INTO thanks VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (request_id, from_person, to_person, _ts(at)),
        )
        return bool(added.rowcount)

    async def enqueue(self, notices: Sequence[Outgoing], at: datetime) -> None:
        self._db.executemany(
            "INSERT INTO outbox (kind, platform, community_id, channel_id, user_id, text, "
            "request_id, mentions, order_key, next_attempt_at, created_at, digest_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    n.kind,
                    n.platform,
                    n.community_id,
                    n.channel_id,
                    n.user_id,
                    n.text,
                    n.request_id,
                    " ".join(n.mentions),
                    _order_key(n),
                    _ts(at),
                    _ts(at),
                    n.digest_id,
                )
                for n in notices
            ],
        )

    async def relay_targets(self, request_id: int) -> list[RelayTarget]:
        rows = await self._rows(
            "SELECT DISTINCT platform, community_id, channel_id FROM outbox "
            "WHERE request_id = ? AND kind = 'relay_post' AND status != 'dead' ORDER BY id",
            (request_id,),
        )
        return [
            RelayTarget(Platform(r["platform"]), r["community_id"], r["channel_id"]) for r in rows
        ]

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int = 200
    ) -> list[OpenPost]:
        rows = await self._rows(
            # The page is `limit` requests with all their posts: callers page on request id,
            # so a LIMIT on posts that ended between two posts of a request (one per guild)
            # would skip the rest of them for good.
            "SELECT p.request_id, p.community_id, p.channel_id, p.message_id, r.status, "
            "r.updated_at FROM relay_posts p JOIN requests r ON r.id = p.request_id "
            "WHERE p.platform = :platform AND p.request_id IN ("
            " SELECT DISTINCT q.request_id FROM relay_posts q JOIN requests s"
            " ON s.id = q.request_id WHERE q.platform = :platform"
            " AND s.status IN ('open', 'claimed') AND q.request_id < :before"
            " ORDER BY q.request_id DESC LIMIT :limit) "
            "AND r.status IN ('open', 'claimed') "
            "ORDER BY p.request_id DESC",
            {
                "platform": platform,
                "before": before if before is not None else 2**63 - 1,
                "limit": limit,
            },
        )
        return [
            OpenPost(
                request_id=r["request_id"],
                community_id=r["community_id"],
                channel_id=r["channel_id"],
                message_id=r["message_id"],
                status=Status(r["status"]),
                updated_at=datetime.fromisoformat(r["updated_at"]),
            )
            for r in rows
        ]

    async def due_notices(
        self, now: datetime, limit: int, platform: Platform | None = None
    ) -> list[Notice]:
        # The oldest pending notice of each channel, found by hopping from one order key to the
        # next in the outbox_pending index: a backlog (after an outage) costs a seek per
        # channel, not a scan of every pending row at every send (GROUP BY did the scan). A
        # platform's order keys all start with "<platform>:", so they are one range of keys.
        low, high = (f"{platform}:", f"{platform};") if platform else ("", "\U0010ffff")
        rows = await self._rows(
            "WITH RECURSIVE keys(k) AS ("
            " SELECT MIN(order_key) FROM outbox WHERE status = 'pending' AND order_key >= :low"
            "  AND order_key < :high"
            " UNION ALL SELECT (SELECT MIN(order_key) FROM outbox"
            "  WHERE status = 'pending' AND order_key > k AND order_key < :high)"
            " FROM keys WHERE k IS NOT NULL), "
            "heads(id) AS (SELECT (SELECT MIN(id) FROM outbox"
            " WHERE status = 'pending' AND order_key = k) FROM keys WHERE k IS NOT NULL) "
            "SELECT o.* FROM heads JOIN outbox o ON o.id = heads.id "
            f"WHERE o.next_attempt_at <= :now AND NOT {self._PARKED} ORDER BY o.id LIMIT :limit",
            {"low": low, "high": high, "now": _ts(now), "limit": limit},
        )
        return [await self._row_to_notice(r) for r in rows]

    async def _row_to_notice(self, row: sqlite3.Row) -> Notice:
        kind = NoticeKind(row["kind"])
        request = await self.request(row["request_id"]) if row["request_id"] else None
        message_id, covers_until = row["message_id"], 0
        if kind is NoticeKind.POST_UPDATE:
            post = await self._one(
                "SELECT message_id FROM relay_posts WHERE request_id = ? AND platform = ? "
                "AND channel_id = ?",
                (row["request_id"], row["platform"], row["channel_id"]),
            )
            message_id = post["message_id"] if post else ""
            last = await self._one(
                "SELECT MAX(id) AS last FROM outbox WHERE status = 'pending' AND kind = ? "
                "AND request_id = ? AND platform = ? AND channel_id = ?",
                (kind, row["request_id"], row["platform"], row["channel_id"]),
            )
            covers_until = int(last["last"]) if last and last["last"] else row["id"]
        elif kind is NoticeKind.TEXT_UPDATE and row["digest_id"]:
            digest = await self._one(
                "SELECT message_id FROM digests WHERE id = ?", (row["digest_id"],)
            )
            message_id = digest["message_id"] if digest else ""
        return Notice(
            id=row["id"],
            kind=kind,
            platform=Platform(row["platform"]),
            community_id=row["community_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            message_id=message_id,
            digest_id=row["digest_id"],
            text=row["text"],
            request=request,
            mentions=tuple(row["mentions"].split()),
            attempts=row["attempts"],
            sending_since=_dt(row["sending_at"]),
            covers_until=covers_until,
        )

    async def mark_sent(self, notice: Notice, message_id: str | None, at: datetime) -> None:
        await self._run(
            "UPDATE outbox SET status = 'sent', sent_at = ?, message_id = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            (_ts(at), message_id or "", notice.id),
        )
        if notice.kind is NoticeKind.POST_UPDATE and notice.request:
            await self._run(
                "UPDATE outbox SET status = 'sent', sent_at = ? WHERE status = 'pending' "
                "AND kind = 'post_update' AND request_id = ? AND platform = ? AND channel_id = ? "
                "AND id <= ?",
                (
                    _ts(at),
                    notice.request.id,
                    notice.platform,
                    notice.channel_id,
                    notice.covers_until,
                ),
            )
        if notice.kind is NoticeKind.CHANNEL_TEXT and notice.digest_id and message_id:
            await self._run(
                "UPDATE digests SET message_id = ? WHERE id = ?", (message_id, notice.digest_id)
            )
        if notice.kind is NoticeKind.RELAY_POST and notice.request and message_id:
            await self._run(
                "INSERT OR IGNORE INTO relay_posts VALUES (?, ?, ?, ?, ?)",
                (
                    notice.request.id,
                    notice.platform,
                    notice.community_id,
                    notice.channel_id,
                    message_id,
                ),
            )

    async def mark_sending(self, notice: Notice, at: datetime) -> None:
        await self._run(
            "UPDATE outbox SET sending_at = COALESCE(sending_at, ?) WHERE id = ?",
            (_ts(at), notice.id),
        )

    async def mark_retry(
        self,
        notice: Notice,
        next_attempt_at: datetime,
        error: str,
        *,
        maybe_sent: bool,
        counted: bool = True,
    ) -> None:
        await self._run(
            "UPDATE outbox SET attempts = attempts + ?, next_attempt_at = ?, last_error = ?, "
            "sending_at = CASE WHEN ? THEN sending_at END WHERE id = ?",
            (int(counted), _ts(next_attempt_at), error, maybe_sent, notice.id),
        )

    async def mark_dead(self, notice: Notice, error: str, at: datetime) -> None:
        await self._run(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, sent_at = ?, "
            "last_error = ? WHERE id = ?",
            (_ts(at), error, notice.id),
        )

    # A notice is parked while its (platform, channel) is degraded; DMs have no channel id.
    _PARKED = (
        "EXISTS (SELECT 1 FROM degraded_channels d "
        "WHERE d.platform = o.platform AND d.channel_id = o.channel_id)"
    )

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool:
        # EXISTS, not a count: reconcile polls this while a backlog may be thousands long.
        row = await self._one(
            "SELECT EXISTS (SELECT 1 FROM outbox o WHERE o.status = 'pending' "
            "AND o.kind = 'relay_post' AND o.platform = ? AND o.next_attempt_at <= ? "
            f"AND NOT {self._PARKED}) AS due",
            (platform, _ts(at)),
        )
        return row is not None and bool(row["due"])

    async def forget_sent_notices(
        self, sent_before: datetime, after: int, scan: int
    ) -> tuple[int, int | None]:
        # NOT INDEXED: by id range (the rowid), not through the status index and then a sort.
        gone = await self._run(
            "DELETE FROM outbox NOT INDEXED WHERE id > ? AND id <= ? AND status = 'sent' "
            "AND kind != 'relay_post' AND sent_at < ?",
            (after, after + scan, _ts(sent_before)),
        )
        newest = await self._one("SELECT MAX(id) AS id FROM outbox")
        more = newest is not None and (newest["id"] or 0) > after + scan
        return gone.rowcount, after + scan if more else None

    async def outbox_oldest_due(self) -> datetime | None:
        row = await self._one(
            "SELECT MIN(o.next_attempt_at) AS oldest FROM outbox o "
            f"WHERE o.status = 'pending' AND NOT {self._PARKED}"
        )
        return _dt(row["oldest"]) if row is not None else None

    async def degrade_channel(self, notice: Notice, reason: str, at: datetime) -> bool:
        added = await self._run(
            "INSERT INTO degraded_channels VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (notice.platform, notice.channel_id, notice.community_id, reason, _ts(at), notice.id),
        )
        return bool(added.rowcount)

    async def degraded_channels(self) -> list[DegradedChannel]:
        return await self._degraded()

    async def _degraded(self, where: str = "", params: Sequence[str] = ()) -> list[DegradedChannel]:
        rows = await self._rows(
            "SELECT d.*, (SELECT COUNT(*) FROM outbox o WHERE o.status = 'pending' "
            "AND o.platform = d.platform AND o.channel_id = d.channel_id) AS parked "
            f"FROM degraded_channels d {where} ORDER BY d.since, d.platform, d.channel_id",
            params,
        )
        return [
            DegradedChannel(
                platform=Platform(r["platform"]),
                community_id=r["community_id"],
                channel_id=r["channel_id"],
                reason=r["reason"],
                since=datetime.fromisoformat(r["since"]),
                parked=int(r["parked"]),
            )
            for r in rows
        ]

    async def restore_channel(
        self, platform: Platform, channel_id: str, at: datetime
    ) -> DegradedChannel | None:
        key = (platform, channel_id)
        # The notice whose failure found the channel lost goes first again, ahead of the parked.
        await self._run(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, sent_at = NULL "
            "WHERE status = 'dead' AND id = (SELECT notice_id FROM degraded_channels "
            "WHERE platform = ? AND channel_id = ?)",
            (_ts(at), *key),
        )
        found = await self._degraded("WHERE d.platform = ? AND d.channel_id = ?", key)
        if not found:
            return None
        await self._run("DELETE FROM degraded_channels WHERE platform = ? AND channel_id = ?", key)
        return found[0]

    async def save_link_code(self, code: str, person_id: int, expires_at: datetime) -> None:
        await self._run(
            "INSERT INTO link_codes (code, person_id, expires_at) VALUES (?, ?, ?)",
            (code, person_id, _ts(expires_at)),
        )

    async def use_link_code(self, code: str, now: datetime) -> int | None:
        row = await self._one(
            "UPDATE link_codes SET used_at = ? WHERE code = ? AND used_at IS NULL "
            "AND expires_at > ? RETURNING person_id",
            (_ts(now), code, _ts(now)),
        )
        return int(row["person_id"]) if row else None

    async def identities(self, person_id: int) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM members WHERE person_id = ?", (person_id,))
        return int(row["n"]) if row else 0

    async def merge_persons(self, keep: int, merge: int) -> None:
        kept = await self._one("SELECT 1 FROM volunteers WHERE person_id = ?", (keep,))
        if kept is None:
            # Move the volunteer row: copy under the kept id, re-point topics, drop the old row.
            await self._run(
                f"INSERT INTO volunteers (person_id, {_VOLUNTEER_COLUMNS}) "
                f"SELECT ?, {_VOLUNTEER_COLUMNS} FROM volunteers WHERE person_id = ?",
                (keep, merge),
            )
        else:
            await self._run(
                "INSERT OR IGNORE INTO volunteer_topics (topic, person_id) SELECT topic, ? "
                "FROM volunteer_topics WHERE person_id = ?",
                (keep, merge),
            )
        await self._run(
            "UPDATE OR IGNORE volunteer_topics SET person_id = ? WHERE person_id = ?",
            (keep, merge),
        )
        await self._run("DELETE FROM volunteer_topics WHERE person_id = ?", (merge,))
        await self._run("DELETE FROM volunteers WHERE person_id = ?", (merge,))
        for sql in (
            "UPDATE members SET person_id = ? WHERE person_id = ?",
            "UPDATE requests SET requester_person = ? WHERE requester_person = ?",
            "UPDATE requests SET claimer_person = ? WHERE claimer_person = ?",
            "UPDATE claims SET person_id = ? WHERE person_id = ?",
            "UPDATE link_codes SET person_id = ? WHERE person_id = ?",
        ):
            await self._run(sql, (keep, merge))

    async def split_member(self, member: Member, at: datetime) -> Member:
        person_id = await self._insert("INSERT INTO persons (created_at) VALUES (?)", (_ts(at),))
        await self._run(
            "UPDATE members SET person_id = ? WHERE platform = ? AND community_id = ? "
            "AND user_id = ?",
            (person_id, member.platform, member.community_id, member.user_id),
        )
        # The old person keeps its topics; notify them on one of the identities they still have.
        await self._run(
            "UPDATE volunteers SET (platform, community_id, user_id) = (SELECT m.platform, "
            "m.community_id, m.user_id FROM members m WHERE m.person_id = volunteers.person_id "
            "LIMIT 1) WHERE person_id = ? AND platform = ? AND community_id = ? AND user_id = ?",
            (member.person_id, member.platform, member.community_id, member.user_id),
        )
        return Member(
            platform=member.platform,
            community_id=member.community_id,
            user_id=member.user_id,
            display_name=member.display_name,
            person_id=person_id,
        )

    async def find_people(
        self, platform: str, community_id: str | None, user_id: str
    ) -> dict[str, int]:
        rows = await self._rows(
            "SELECT community_id, person_id FROM members WHERE platform = ? AND user_id = ? "
            "AND (? IS NULL OR community_id = ?) ORDER BY community_id",
            (platform, user_id, community_id, community_id),
        )
        return {str(r["community_id"]): int(r["person_id"]) for r in rows}

    async def export_person(self, person_id: int) -> dict[str, Any]:
        async def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in await self._rows(sql, (person_id,))]

        volunteer = await self.volunteer(person_id)
        return {
            "identities": await rows(
                "SELECT platform, community_id, user_id, display_name FROM members "
                "WHERE person_id = ?"
            ),
            "volunteer": {
                "topics": sorted(volunteer.topics),
                "paused_until": volunteer.paused_until,
                "quiet_hours": volunteer.quiet,
            }
            if volunteer
            else None,
            "requests": await rows(
                "SELECT id, link, topics, note, status, created_at, response FROM requests "
                "WHERE requester_person = ? ORDER BY id"
            ),
            "reviews": await rows(
                "SELECT request_id, status, claimed_at, ended_at FROM claims "
                "WHERE person_id = ? ORDER BY id"
            ),
            "thanks_given": await rows(
                "SELECT request_id, at FROM thanks WHERE from_person = ? ORDER BY at"
            ),
            "thanks_received": await rows(
                "SELECT request_id, at FROM thanks WHERE to_person = ? ORDER BY at"
            ),
        }

    async def forget_person(self, person_id: int) -> None:
        members = await self._rows(
            "SELECT platform, community_id, user_id FROM members WHERE person_id = ?", (person_id,)
        )
        for m in members:
            await self._run(
                "DELETE FROM outbox WHERE status = 'pending' AND platform = ? AND user_id = ?",
                (m["platform"], m["user_id"]),
            )
            await self._run(
                "UPDATE outbox SET text = '' WHERE platform = ? AND user_id = ?",
                (m["platform"], m["user_id"]),
            )
            # Relay posts that named them as a volunteer: a pending one would still ping them.
            await self._run(
                "UPDATE outbox SET mentions = TRIM(REPLACE(' ' || mentions || ' ', ?1, ' ')) "
                "WHERE platform = ?2 AND (' ' || mentions || ' ') LIKE '%' || ?1 || '%'",
                (f" {m['user_id']} ", m["platform"]),
            )
            await self._run(
                "DELETE FROM inbound_events WHERE event_key LIKE ?", (f"%{m['user_id']}%",)
            )
            await self._run(
                "DELETE FROM reaction_order WHERE platform = ? AND user_id = ?",
                (m["platform"], m["user_id"]),
            )
        for sql in (
            "DELETE FROM volunteer_topics WHERE person_id = ?",
            "DELETE FROM volunteers WHERE person_id = ?",
            "DELETE FROM link_codes WHERE person_id = ?",
            "DELETE FROM notifications WHERE person_id = ?",
            "DELETE FROM thanks WHERE from_person = ?1 OR to_person = ?1",
            # Their own requests lose what they wrote; others' records keep an anonymous author.
            "UPDATE requests SET link = '', note = '', topics = '' WHERE requester_person = ?",
        ):
            await self._run(sql, (person_id,))
        # The platform id goes too, so the same account starts afresh; requests follow the rename
        # (foreign keys are checked at commit, after both sides changed).
        await self._run("PRAGMA defer_foreign_keys = ON")
        self.deferred_foreign_keys = True
        for n, m in enumerate(members):
            old = (m["platform"], m["community_id"], m["user_id"])
            new_id = f"forgotten-{person_id}-{n}"
            await self._run(
                "UPDATE members SET user_id = ?, display_name = 'former member' "
                "WHERE platform = ? AND community_id = ? AND user_id = ?",
                (new_id, *old),
            )
            for role in ("requester", "claimer"):
                await self._run(
                    f"UPDATE requests SET {role}_user = ? WHERE {role}_platform = ? "
                    f"AND {role}_community = ? AND {role}_user = ?",
                    (new_id, *old),
                )
            await self._run(
                "UPDATE claims SET user_id = ? WHERE platform = ? AND community_id = ? "
                "AND user_id = ?",
                (new_id, *old),
            )

    async def snapshot(self) -> Snapshot:
        by_status = await self._rows(
            "SELECT requester_platform AS platform, status, COUNT(*) AS n FROM requests "
            "GROUP BY requester_platform, status"
        )
        row = await self._one(
            "SELECT (SELECT COUNT(*) FROM claims WHERE status = 'active') AS active, "
            "(SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS pending, "
            "(SELECT COUNT(*) FROM outbox WHERE status = 'dead') AS dead, "
            "(SELECT COUNT(*) FROM reminder_runs) AS runs"
        )
        assert row is not None  # noqa: S101 - a SELECT of counts always yields one row
        return Snapshot(
            requests={(r["platform"], r["status"]): int(r["n"]) for r in by_status},
            active_claims=row["active"],
            outbox_pending=row["pending"],
            outbox_dead=row["dead"],
            reminder_runs=row["runs"],
        )

    async def record_reminder_run(
        self, platform: str, community_id: str, local_date: str, at: datetime
    ) -> bool:
        added = await self._run(
            "INSERT INTO reminder_runs VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (platform, community_id, local_date, _ts(at)),
        )
        return bool(added.rowcount)

    async def last_daily_run(self, platform: str, community_id: str, since: str) -> datetime | None:
        # Daily keys are dates (YYYY-MM-DD); the monthly thanks' keys share the table.
        row = await self._one(
            "SELECT MAX(ran_at) AS last FROM reminder_runs WHERE platform = ? "
            "AND community_id = ? AND local_date >= ? "
            "AND local_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'",
            (platform, community_id, since),
        )
        return _dt(row["last"]) if row else None

    async def record_daily_run(
        self, platform: str, community_id: str, local_date: str, at: datetime
    ) -> None:
        await self._run(
            "INSERT INTO reminder_runs VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET ran_at = excluded.ran_at",
            (platform, community_id, local_date, _ts(at)),
        )
