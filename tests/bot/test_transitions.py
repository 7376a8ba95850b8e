"""The request state machine: bot.transitions.decide over every status, action and actor."""

from __future__ import annotations

import itertools

import pytest

from bot.model import Member, Request, Status
from bot.transitions import Action, Refusal, Transition, decide
from tests import factories
from tests.factories import REQUEST_ID, person

RILEY = person("riley", 1)  # the requester
SAM = person("sam", 2)  # the usual claimer
ALEX = person("alex", 3)  # a bystander (an admin when the test says so)


def request(status: Status = Status.OPEN, claimer: Member | None = None) -> Request:
    """Request #42 by Riley in `status`, held by `claimer` if given."""
    return factories.request(status, *filter(None, [claimer]), requester=RILEY)


def held_by(claimer: Member = SAM, status: Status = Status.CLAIMED) -> Request:
    return request(status, claimer)


def act(
    req: Request, action: Action, actor: Member, *, admin: bool = False
) -> Transition | Refusal:
    return decide(req, action, actor_person_id=actor.person_id, is_admin=admin)


def reason(result: Transition | Refusal) -> str:
    """The reason of a refusal, failing the test when the action was allowed."""
    assert isinstance(result, Refusal), f"expected a refusal, got {result!r}"
    return result.reason


# --- claim ----------------------------------------------------------------------------------------


def test_claim_of_open_request_by_another_person() -> None:
    """Someone other than the requester claims an open request: open becomes claimed."""
    assert Transition(Status.OPEN, Status.CLAIMED) == act(request(), Action.CLAIM, SAM)


def test_requester_cannot_claim_own_request() -> None:
    """The requester's claim on their own request is refused."""
    assert "your own request #42" in reason(act(request(), Action.CLAIM, RILEY))


def test_claim_of_claimed_request_names_the_holder() -> None:
    """A claim on a request someone else holds is refused with the holder's name."""
    assert "already claimed by sam" in reason(act(held_by(SAM), Action.CLAIM, ALEX))


def test_admin_cannot_take_over_a_claim() -> None:
    """Being an admin does not let one claim a request someone else holds."""
    assert "sam" in reason(act(held_by(SAM), Action.CLAIM, ALEX, admin=True))


def test_claim_by_the_holder_says_already_held() -> None:
    """A second claim by the person who holds the request says they already hold it."""
    assert "already hold request #42" in reason(act(held_by(SAM), Action.CLAIM, SAM))


@pytest.mark.parametrize("status", [Status.DONE, Status.CANCELLED, Status.EXPIRED])
def test_claim_of_finished_request_is_refused(status: Status) -> None:
    """A done, cancelled or expired request cannot be claimed, and the reason says which."""
    assert status.value in reason(act(held_by(SAM, status), Action.CLAIM, ALEX))
    assert status.value in reason(act(held_by(SAM, status), Action.CLAIM, SAM))


# --- release and done -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "after"), [(Action.RELEASE, Status.OPEN), (Action.DONE, Status.DONE)]
)
def test_claimer_releases_or_completes(action: Action, after: Status) -> None:
    """The claimer may release (back to open) or complete (to done) their claim."""
    assert Transition(Status.CLAIMED, after) == act(held_by(SAM), action, SAM)


@pytest.mark.parametrize(
    ("action", "after"), [(Action.RELEASE, Status.OPEN), (Action.DONE, Status.DONE)]
)
def test_admin_releases_or_completes(action: Action, after: Status) -> None:
    """A community admin may release or complete someone else's claim."""
    assert Transition(Status.CLAIMED, after) == act(held_by(SAM), action, ALEX, admin=True)


@pytest.mark.parametrize("action", [Action.RELEASE, Action.DONE])
@pytest.mark.parametrize("actor", [RILEY, ALEX], ids=["requester", "bystander"])
def test_others_cannot_release_or_complete(action: Action, actor: Member) -> None:
    """Anyone but the claimer or an admin is refused, with the holder named."""
    assert "held by sam" in reason(act(held_by(SAM), action, actor))


@pytest.mark.parametrize("action", [Action.RELEASE, Action.DONE])
def test_release_or_done_of_open_request_is_refused(action: Action) -> None:
    """An open request has no claim to release or complete, even for an admin."""
    assert "is open, not claimed" in reason(act(request(), action, SAM, admin=True))


@pytest.mark.parametrize("action", [Action.RELEASE, Action.DONE])
@pytest.mark.parametrize("status", [Status.DONE, Status.CANCELLED, Status.EXPIRED])
def test_release_or_done_of_finished_request_is_refused(action: Action, status: Status) -> None:
    """A finished request cannot be released or completed, even by its last claimer."""
    assert status.value in reason(act(held_by(SAM, status), action, SAM))


# --- cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("req", [request(), held_by(SAM)], ids=["open", "claimed"])
def test_requester_cancels_active_request(req: Request) -> None:
    """The requester may cancel an open or claimed request."""
    assert Transition(req.status, Status.CANCELLED) == act(req, Action.CANCEL, RILEY)


@pytest.mark.parametrize("req", [request(), held_by(SAM)], ids=["open", "claimed"])
def test_admin_cancels_active_request(req: Request) -> None:
    """A community admin may cancel an open or claimed request."""
    assert Transition(req.status, Status.CANCELLED) == act(req, Action.CANCEL, ALEX, admin=True)


@pytest.mark.parametrize("actor", [SAM, ALEX], ids=["claimer", "bystander"])
def test_others_cannot_cancel(actor: Member) -> None:
    """Only the requester or an admin may cancel; the claimer may not."""
    assert "Only the person who asked" in reason(act(held_by(SAM), Action.CANCEL, actor))


@pytest.mark.parametrize("status", [Status.DONE, Status.CANCELLED, Status.EXPIRED])
def test_cancel_of_finished_request_is_refused(status: Status) -> None:
    """A done, cancelled or expired request cannot be cancelled."""
    assert f"already {status.value}" in reason(act(held_by(SAM, status), Action.CANCEL, RILEY))


# --- expire ---------------------------------------------------------------------------------------


def test_open_request_expires() -> None:
    """An open request may expire."""
    assert Transition(Status.OPEN, Status.EXPIRED) == act(request(), Action.EXPIRE, ALEX)


@pytest.mark.parametrize("status", [Status.CLAIMED, Status.DONE, Status.CANCELLED, Status.EXPIRED])
def test_only_open_requests_expire(status: Status) -> None:
    """A request that is not open does not expire."""
    assert isinstance(act(held_by(SAM, status), Action.EXPIRE, ALEX), Refusal)


# --- the whole table ------------------------------------------------------------------------------


def every_decision() -> list[tuple[Request, Transition | Refusal]]:
    """Every status (with and without a claimer) x action x actor x admin flag, decided."""
    requests = [request(s) for s in Status] + [held_by(SAM, s) for s in Status]
    combos = itertools.product(requests, Action, [RILEY, SAM, ALEX], [False, True])
    return [(req, act(req, action, actor, admin=admin)) for req, action, actor, admin in combos]


def test_every_refusal_is_one_sentence_naming_the_request() -> None:
    """Each refusal reason is a single sentence that mentions the request number."""
    for _, result in every_decision():
        if isinstance(result, Refusal):
            text = result.reason
            assert f"#{REQUEST_ID}" in text, text
            assert text.endswith("."), text
            assert "\n" not in text, text
            assert ". " not in text, text


def test_every_transition_starts_from_the_current_status() -> None:
    """An allowed transition always starts from the status the request is in."""
    for req, result in every_decision():
        if isinstance(result, Transition):
            assert req.status == result.before
            assert result.before != result.after


@pytest.mark.parametrize("status", [Status.OPEN, Status.CLAIMED])
def test_a_finished_reviewer_of_an_x2_request_is_not_told_they_hold_it(status: Status) -> None:
    """Claiming again a request one already reviewed is refused as reviewed, not as held."""
    holders = (SAM,) if status is Status.OPEN else (SAM, ALEX)
    done = factories.request(status, *holders, requester=RILEY, wanted=2, finished=[SAM])
    assert reason(act(done, Action.CLAIM, SAM)) == "You already reviewed request #42."
