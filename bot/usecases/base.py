"""What every use case receives: the policy knobs, the acting person in an open transaction, and
the one way to refuse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.model import Member, Platform, Reply
from storage.base import Transaction


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


class Refused(Exception):  # noqa: N818 - a refusal, not an error: it becomes the reply
    """Raised inside a use case to roll its transaction back and answer `reply` instead."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = Reply(reply)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """One inbound event being handled: the acting member (stored, with their person id), the
    moment, and the open transaction every effect is written in."""

    tx: Transaction
    member: Member
    now: datetime
    rules: Rules
    platforms: frozenset[Platform]
    channel_id: str = ""
    is_admin: bool = False

    @property
    def viewer(self) -> tuple[str, str]:
        """Where the acting member sees things from, for naming people of other communities."""
        return (self.member.platform, self.member.community_id)
