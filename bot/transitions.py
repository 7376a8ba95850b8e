"""The request state machine: who may do what to a request in which state. Pure.

open --claim--> claimed --done--> done
  ^               |
  +---release-----+          open|claimed --cancel--> cancelled
open --expire--> expired --reopen (requester)--> open

A request wants `wanted` reviewers (1 to 3), one claim each. It stays open while fewer claims
than that are active or done, is claimed when all its slots are taken, and is done when the last
active claim of a claimed request is done. With several slots a claimer's release or done ends
their own claim only (`Transition.only`); release always reopens a slot. An admin who holds no
claim acts on every active claim at once: release reopens the request, done completes it. Cancel
ends every active claim; a request someone is still reviewing does not expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot import texts
from bot.model import ACTIVE_STATUSES, ButtonAction, Request, Status


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
    only: int | None = None  # the person whose claim alone ends; None: every active claim


def decide(
    request: Request, action: Action, *, actor_person_id: int, is_admin: bool = False
) -> Transition | Refusal:
    status = request.status
    is_requester = request.requester.person_id == actor_person_id
    is_claimer = any(m.person_id == actor_person_id for m in request.claimers)
    holds = request.holds(actor_person_id)
    several = request.wanted > 1
    match action:
        case Action.CLAIM:
            if is_claimer and (status is Status.CLAIMED or (several and status is Status.OPEN)):
                # A finished reviewer of an x2 request holds nothing: "you already hold it" would
                # send them looking for a claim to end.
                already = texts.ALREADY_YOURS if holds else texts.ALREADY_REVIEWED
                return Refusal(already.format(id=request.id))
            if status is Status.CLAIMED and request.claimers:
                names = texts.names(request.claimers)
                return Refusal(texts.ALREADY_CLAIMED.format(id=request.id, name=names))
            if status is not Status.OPEN:
                return Refusal(texts.NOT_OPEN.format(id=request.id, status=texts.state(request)))
            if is_requester:
                return Refusal(texts.OWN_REQUEST.format(id=request.id))
            full = len(request.claimers) + 1 >= request.wanted
            return Transition(Status.OPEN, Status.CLAIMED if full else Status.OPEN)
        case Action.RELEASE | Action.DONE:
            if several and holds and status in ACTIVE_STATUSES:
                # Release frees a slot; the last review of a full request finishes it.
                last = status is Status.CLAIMED and len(request.holding) == 1
                finished = Status.DONE if last else status
                after = Status.OPEN if action is Action.RELEASE else finished
                return Transition(status, after, only=actor_person_id)
            partly_held = several and status is Status.OPEN and bool(request.holding)
            if status is not Status.CLAIMED and not partly_held:
                return Refusal(texts.NOT_CLAIMED.format(id=request.id, status=status))
            if not (holds or is_admin):
                holder = texts.names(request.holding) if request.holding else "someone else"
                return Refusal(texts.NOT_CLAIMER.format(id=request.id, name=holder))
            after = Status.OPEN if action is Action.RELEASE else Status.DONE
            return Transition(status, after)
        case Action.CANCEL:
            if not (is_requester or is_admin):
                return Refusal(texts.NOT_REQUESTER.format(id=request.id))
            if status not in ACTIVE_STATUSES:
                return Refusal(texts.NOT_ACTIVE.format(id=request.id, status=texts.state(request)))
            return Transition(status, Status.CANCELLED)
        case Action.EXPIRE:
            if status is not Status.OPEN or request.holding:
                return Refusal(texts.NOT_OPEN.format(id=request.id, status=status))
            return Transition(Status.OPEN, Status.EXPIRED)
        case Action.REOPEN:
            if not (is_requester or is_admin):
                return Refusal(texts.NOT_REQUESTER_REOPEN.format(id=request.id))
            if status is not Status.EXPIRED:
                return Refusal(texts.NOT_EXPIRED.format(id=request.id, status=status))
            return Transition(Status.EXPIRED, Status.OPEN)


def buttons(request: Request) -> tuple[ButtonAction, ...]:
    """The buttons a relay post offers: Claim while a slot is free, Done and Release while
    someone reviews (each acts on the presser's own claim), none once the request ended."""
    claim = (ButtonAction.CLAIM,) if request.status is Status.OPEN else ()
    reviewing = request.status is Status.CLAIMED or (
        request.wanted > 1 and request.status is Status.OPEN and bool(request.holding)
    )
    return claim + ((ButtonAction.DONE, ButtonAction.RELEASE) if reviewing else ())
