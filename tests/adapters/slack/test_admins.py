"""AdminCheck: users.info decides who may run /review setup; failures deny, answers are cached."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.admins import AdminCheck
from tests.adapters.slack.conftest import BOT_TOKEN
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack


def check(slack: FakeSlack, clock: FakeClock, timeout: float = 1.0) -> AdminCheck:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    return AdminCheck(client, clock, timeout=timeout, ttl=timedelta(minutes=5))


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

    assert await check(slack, clock).is_admin("T0001", "U0X") is expected


async def test_answer_is_cached_until_the_ttl(slack: FakeSlack, clock: FakeClock):
    """One users.info per user per five minutes; then Slack is asked again."""
    slack.add_user("U0X", name="x", is_admin=True)
    admins = check(slack, clock)

    assert await admins.is_admin("T0001", "U0X")
    assert await admins.is_admin("T0001", "U0X")
    clock.advance(minutes=6)
    slack.add_user("U0X", name="x", is_admin=False)  # demoted meanwhile

    assert not await admins.is_admin("T0001", "U0X")
    assert len(slack.calls("users.info")) == 2


async def test_slow_slack_means_not_admin_and_is_not_cached(slack: FakeSlack, clock: FakeClock):
    """A lookup slower than the timeout denies (the ack must go out in time) and asks again."""
    slack.add_user("U0X", name="x", is_admin=True)
    slack.fail_next("users.info", delay=0.15)
    admins = check(slack, clock, timeout=0.05)

    assert not await admins.is_admin("T0001", "U0X")
    assert await admins.is_admin("T0001", "U0X")


async def test_slack_error_means_not_admin(slack: FakeSlack, clock: FakeClock):
    """An error answer (here a missing users:read scope) denies."""
    slack.fail_next("users.info", error="missing_scope")

    assert not await check(slack, clock).is_admin("T0001", "U0X")
