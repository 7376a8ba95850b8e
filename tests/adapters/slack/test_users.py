"""SlackUsers: one users.info cache, for admin rights (5 min) and names (1 h); no failure cached."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.users import SlackUsers, user_name
from tests.adapters.slack.conftest import BOT_TOKEN
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack


def users(slack: FakeSlack, clock: FakeClock, timeout: float = 1.0) -> SlackUsers:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    return SlackUsers(client, clock, timeout=timeout)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"is_admin": True}, True),
        ({"is_owner": True}, True),
        ({"is_primary_owner": True}, True),
        ({}, False),
        ({"is_admin": "true"}, False),  # only a real boolean counts
    ],
)
async def test_admin_and_owner_flags_count(
    slack: FakeSlack, clock: FakeClock, fields: dict, expected: bool
):
    """Admins and owners may set up; everyone else may not."""
    slack.add_user("U0X", name="x", **fields)

    assert await users(slack, clock).is_admin("T0001", "U0X") is expected


async def test_admin_answer_is_cached_for_five_minutes(slack: FakeSlack, clock: FakeClock):
    """One users.info per user per five minutes for admin rights; then Slack is asked again."""
    slack.add_user("U0X", name="x", is_admin=True)
    cache = users(slack, clock)

    assert await cache.is_admin("T0001", "U0X")
    assert await cache.is_admin("T0001", "U0X")
    clock.advance(minutes=6)
    slack.add_user("U0X", name="x", is_admin=False)  # demoted meanwhile

    assert not await cache.is_admin("T0001", "U0X")
    assert len(slack.calls("users.info")) == 2


async def test_slow_slack_means_not_admin_and_is_not_cached(slack: FakeSlack, clock: FakeClock):
    """A lookup slower than the timeout denies (the ack must go out in time) and asks again."""
    slack.add_user("U0X", name="x", is_admin=True)
    slack.fail_next("users.info", delay=0.15)
    cache = users(slack, clock, timeout=0.05)

    assert not await cache.is_admin("T0001", "U0X")
    assert await cache.is_admin("T0001", "U0X")


async def test_slack_error_means_not_admin(slack: FakeSlack, clock: FakeClock):
    """An error answer (here a missing users:read scope) denies."""
    slack.fail_next("users.info", error="missing_scope")

    assert not await users(slack, clock).is_admin("T0001", "U0X")


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"name": "carol", "real_name": "Carol C", "profile": {"display_name": "cc"}}, "cc"),
        ({"name": "carol", "real_name": "Carol C", "profile": {"real_name": "Carol P"}}, "Carol P"),
        ({"name": "carol", "real_name": "Carol C", "profile": {"display_name": ""}}, "Carol C"),
        ({"name": "carol"}, "carol"),
        ({"name": "x", "profile": {"display_name": "\u202eevil\u202c  name"}}, "evil name"),
        ({}, ""),
    ],
)
def test_the_name_people_see_wins(user: dict, expected: str):
    """Display name, else real name, else the handle; bidi overrides stripped."""
    assert user_name(user) == expected


async def test_name_is_cached_for_an_hour(slack: FakeSlack, clock: FakeClock):
    """Names are asked once an hour per user, and `cached_name` never asks at all."""
    slack.add_user("U0X", name="x", profile={"display_name": "Xena"})
    cache = users(slack, clock)

    assert cache.cached_name("T0001", "U0X") == ""
    assert await cache.display_name("T0001", "U0X") == "Xena"
    clock.advance(minutes=59)
    assert await cache.display_name("T0001", "U0X") == "Xena"
    assert cache.cached_name("T0001", "U0X") == "Xena"
    assert len(slack.calls("users.info")) == 1

    clock.advance(minutes=2)
    assert cache.cached_name("T0001", "U0X") == ""
    assert await cache.display_name("T0001", "U0X") == "Xena"
    assert len(slack.calls("users.info")) == 2


async def test_one_answer_serves_both_questions(slack: FakeSlack, clock: FakeClock):
    """An admin check fills the name too, and a fresh name lookup answers the admin check."""
    slack.add_user("U0A", name="a", is_admin=True)
    slack.add_user("U0B", name="b")
    cache = users(slack, clock)

    assert await cache.is_admin("T0001", "U0A")
    assert await cache.display_name("T0001", "U0A") == "a"
    assert await cache.display_name("T0001", "U0B") == "b"
    assert not await cache.is_admin("T0001", "U0B")

    assert [c.args["user"] for c in slack.calls("users.info")] == ["U0A", "U0B"]


async def test_failed_name_lookup_falls_back_and_asks_again(slack: FakeSlack, clock: FakeClock):
    """A failure gives the fallback and is not cached: the next lookup asks Slack again."""
    slack.add_user("U0X", name="x")
    slack.fail_next("users.info", status=500)
    cache = users(slack, clock)

    assert await cache.display_name("T0001", "U0X", "from-payload") == "from-payload"
    assert await cache.display_name("T0001", "U0X") == "x"
    assert len(slack.calls("users.info")) == 2
