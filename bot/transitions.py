"""The request state machine: who may do what to a request in which state. Pure.

open --claim--> claimed --done--> done
  ^               |
  +---release-----+          open|claimed --cancel--> cancelled
open --expire--> expired --reopen (requester)--> open
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot import texts
from bot.model import ACTIVE_STATUSES, Request, Status


class Action(StrEnum):
    CLAIM = "claim"
    RELEASE = "release"
    DONE = "done"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REOPEN = "reopen"


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """Allowed: move from `before` to `after` (the store applies it only if still `before`)."""

    before: Status
    after: Status


def decide(
    request: Request, action: Action, *, actor_person_id: int, is_admin: bool = False
) -> Transition | Refusal:
    status = request.status
    is_requester = request.requester.person_id == actor_person_id
    claimer_id = request.claimer.person_id if request.claimer else None
    is_claimer = claimer_id == actor_person_id
    match action:
        case Action.CLAIM:
            if status is Status.CLAIMED and is_claimer:
                return Refusal(texts.ALREADY_YOURS.format(id=request.id))
            if status is Status.CLAIMED and request.claimer:
                return Refusal(
                    texts.ALREADY_CLAIMED.format(id=request.id, name=texts.who(request.claimer))
                )
            if status is not Status.OPEN:
                return Refusal(texts.NOT_OPEN.format(id=request.id, status=status))
            if is_requester:
                return Refusal(texts.OWN_REQUEST.format(id=request.id))
            return Transition(Status.OPEN, Status.CLAIMED)
        case Action.RELEASE | Action.DONE:
            if status is not Status.CLAIMED:
                return Refusal(texts.NOT_CLAIMED.format(id=request.id, status=status))
            if not (is_claimer or is_admin):
                holder = texts.who(request.claimer) if request.claimer else "someone else"
                return Refusal(texts.NOT_CLAIMER.format(id=request.id, name=holder))
            after = Status.OPEN if action is Action.RELEASE else Status.DONE
            return Transition(Status.CLAIMED, after)
        case Action.CANCEL:
            if not (is_requester or is_admin):
                return Refusal(texts.NOT_REQUESTER.format(id=request.id))
            if status not in ACTIVE_STATUSES:
                return Refusal(texts.NOT_ACTIVE.format(id=request.id, status=status))
            return Transition(status, Status.CANCELLED)
        case Action.EXPIRE:
            if status is not Status.OPEN:
                return Refusal(texts.NOT_OPEN.format(id=request.id, status=status))
            return Transition(Status.OPEN, Status.EXPIRED)
        case Action.REOPEN:
            if not (is_requester or is_admin):
                return Refusal(texts.NOT_REQUESTER_REOPEN.format(id=request.id))
            if status is not Status.EXPIRED:
                return Refusal(texts.NOT_EXPIRED.format(id=request.id, status=status))
            return Transition(Status.EXPIRED, Status.OPEN)
