"""What people read: bot.texts.request_line, relay_post_text and age."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot import texts
from bot.model import Request, Status
from tests.factories import member

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LINK = "https://example.com/draft"


def make_request(**overrides: object) -> Request:
    """Open request #42 by riley on python and go, made three hours before NOW."""
    made = NOW - timedelta(hours=3)
    fields: dict[str, object] = {
        "id": 42,
        "link": LINK,
        "topics": ("python", "go"),
        "note": "section 2 please",
        "requester": member("riley"),
        "origin_channel_id": "reviews",
        "status": Status.OPEN,
        "created_at": made,
        "updated_at": made,
    }
    return Request(**(fields | overrides))  # type: ignore[arg-type]


def test_request_line_shows_link_topics_requester_and_status() -> None:
    """A list line names the request, link, topics, requester, age and status."""
    line = texts.request_line(make_request(), NOW)
    for part in ("#42", LINK, "#python #go", "by riley", "3h ago", "open"):
        assert part in line
    assert "\n" not in line


def test_request_line_names_the_claimer() -> None:
    """A claimed request's line says who holds it."""
    line = texts.request_line(make_request(status=Status.CLAIMED, claimer=member("sam")), NOW)
    assert "claimed by sam" in line


def test_request_line_falls_back_to_user_id() -> None:
    """A requester without a display name is named by user id."""
    nameless = replace(member("U123"), display_name="")
    assert "by U123" in texts.request_line(make_request(requester=nameless), NOW)


def test_relay_post_shows_link_topics_requester_note_and_status() -> None:
    """A relay post carries the link, topics, requester, note and status."""
    post = texts.relay_post_text(make_request())
    for part in ("#42", LINK, "riley", "Topics: #python #go", "Note: section 2 please"):
        assert part in post
    assert post.endswith("Status: open")


def test_relay_post_omits_empty_topics_and_note() -> None:
    """A request without topics or note has no empty Topics or Note lines."""
    post = texts.relay_post_text(make_request(topics=(), note=""))
    assert "Topics" not in post
    assert "Note" not in post


def test_relay_post_of_done_request_shows_response() -> None:
    """A done request's relay post shows who finished it and their response."""
    done = make_request(status=Status.DONE, claimer=member("sam"), response="lgtm")
    post = texts.relay_post_text(done)
    assert "Status: done by sam" in post
    assert post.endswith("Response: lgtm")


@pytest.mark.parametrize(
    ("hours", "shown"),
    [(0, "0h"), (1, "1h"), (47, "47h"), (48, "2d"), (71, "2d"), (72, "3d"), (24 * 30, "30d")],
)
def test_age_in_hours_then_days(hours: int, shown: str) -> None:
    """Ages under 48 hours print in hours, later ones in whole days."""
    assert shown == texts.age(NOW - timedelta(hours=hours), NOW)


def test_age_rounds_down_to_the_hour() -> None:
    """A partial hour does not count."""
    assert texts.age(NOW - timedelta(hours=47, minutes=59), NOW) == "47h"
