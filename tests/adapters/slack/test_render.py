"""Block Kit rendering: user text is escaped so nobody gets pinged, and Slack's limits hold."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.slack import inbound, render
from bot.model import Member, Platform, Reply, Request, Status
from tests.fakes import slack_payloads as p

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
INJECTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S123>",
    "<!subteam^S123|@reviewers>",
    "<@U999>",
    "<@U999|boss>",
    "<#C123|general>",
    "<https://evil.example|https://good.example>",
]


def slack_member(user_id: str, name: str) -> Member:
    return Member(
        platform=Platform.SLACK,
        community_id="T0001",
        user_id=user_id,
        display_name=name,
        person_id=1,
    )


def make_request(**overrides: Any) -> Request:
    values: dict[str, Any] = {
        "id": 42,
        "link": "https://example.com/draft",
        "topics": ("python", "writing"),
        "note": "check section 2",
        "requester": slack_member("U0ALICE", "alice"),
        "origin_channel_id": "C0001",
        "status": Status.OPEN,
        "created_at": AT,
        "updated_at": AT,
    }
    return Request(**(values | overrides))


def all_text(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def texts_of(blocks: list[dict[str, Any]]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return found


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]


@pytest.mark.parametrize("injection", [*INJECTIONS, "&lt;!channel&gt;"])
def test_mention_injection_in_user_text_is_escaped(injection: str):
    """Mention syntax in a note, a name, a topic or a response reaches Slack only as entities."""
    request = make_request(
        note=f"please {injection} look",
        requester=slack_member("U0ALICE", f"al{injection}ice"),
        status=Status.DONE,
        claimer=slack_member("U0BOB", injection),
        response=f"done {injection}",
    )

    rendered = all_text(render.render_relay_post(request))

    assert injection not in rendered
    assert render.escape(injection) in rendered
    assert "<!" not in rendered
    assert "<@" not in rendered


@pytest.mark.parametrize("injection", INJECTIONS)
def test_render_text_escapes_mentions(injection: str):
    """DMs, ephemerals and the digest are escaped too."""
    rendered = render.render_text(f"{injection} & more")

    assert "<" not in rendered
    assert ">" not in rendered
    assert rendered.endswith("&amp; more")


def test_an_escaped_looking_note_stays_literal():
    """A note typed as `&lt;!channel&gt;` is shown as typed, not turned into a mention."""
    assert render.escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


def test_only_the_mentions_passed_in_ping():
    """Volunteer ids from the core become mentions, in blocks and in the notification text."""
    message = render.render_relay_post(make_request(), ["U0BOB", "W0CAROL", "<!channel>"])

    assert "cc <@U0BOB> <@W0CAROL>" in texts_of(message["blocks"])
    assert message["text"].endswith("cc <@U0BOB> <@W0CAROL>")
    assert "<!channel>" not in all_text(message)


def test_relay_post_shows_link_topics_requester_note_and_status():
    """The post carries everything a volunteer needs to decide."""
    message = render.render_relay_post(make_request(link="https://example.com/a?b=1&c=2|x"))
    shown = "\n".join(texts_of(message["blocks"]))

    assert "*Review request #42* from alice" in shown
    assert "<https://example.com/a?b=1&amp;c=2%7Cx|https://example.com/a?b=1&amp;c=2|x>" in shown
    assert "Topics: #python #writing" in shown
    assert "check section 2" in shown
    assert "*Status:* open" in shown
    assert message["text"].startswith("Review request #42 from alice: https://example.com/a")


def test_done_post_shows_reviewer_and_response():
    """A finished request names its reviewer and shows the response."""
    message = render.render_relay_post(
        make_request(
            status=Status.DONE, claimer=slack_member("U0BOB", "bob"), response="see comments"
        )
    )
    shown = "\n".join(texts_of(message["blocks"]))

    assert "*Status:* done by bob" in shown
    assert "*Response:* see comments" in shown


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.OPEN, [("review_claim", "42")]),
        (Status.CLAIMED, [("review_done", "42"), ("review_release", "42")]),
        (Status.DONE, []),
        (Status.CANCELLED, []),
        (Status.EXPIRED, []),
    ],
)
def test_buttons_follow_the_status(status: Status, expected: list[tuple[str, str]]):
    """Claim when open, Done and Release when claimed, nothing once the request ended."""
    claimer = slack_member("U0BOB", "bob") if status in (Status.CLAIMED, Status.DONE) else None
    message = render.render_relay_post(make_request(status=status, claimer=claimer))

    assert buttons(message) == expected
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= render.BUTTON_TEXT_LIMIT


def test_huge_user_text_is_cut_to_slack_limits():
    """A 10 kB note, name and response, full of characters that grow when escaped, still fit."""
    huge = ("<&>" * 3400)[:10_000]
    request = make_request(
        note=huge,
        requester=slack_member("U0ALICE", huge),
        status=Status.DONE,
        claimer=slack_member("U0BOB", huge),
        response=huge,
        link="https://example.com/" + "&" * 1980,
        topics=tuple(f"t{i}" for i in range(10)),
    )

    message = render.render_relay_post(request, ["U0BOB"] * 50)

    assert len(message["blocks"]) <= render.MAX_BLOCKS
    assert all(len(t) <= render.SECTION_LIMIT for t in texts_of(message["blocks"]))
    assert len(message["text"]) <= render.TEXT_LIMIT
    for text in [*texts_of(message["blocks"]), message["text"]]:
        bare = re.sub(r"&(amp|lt|gt);", "", text)
        assert "&" not in bare  # every & starts a whole entity: none was cut in half
        assert "<&" not in text


def test_fit_counts_utf16_units_and_keeps_surrogate_pairs_whole():
    """An emoji outside the BMP counts twice, as Slack counts it, and is never split."""
    cut = render.fit("👀" * 10, 9)

    assert cut == "👀" * 4 + "…"


def test_render_reply_is_ephemeral():
    """A reply acks as an ephemeral message; no reply acks with an empty body."""
    assert render.render_reply(Reply("Request #1 is open; <b>")) == {
        "text": "Request #1 is open; &lt;b&gt;",
        "response_type": "ephemeral",
    }
    assert render.render_reply(Reply.none()) == {}


@pytest.mark.parametrize("request_id", [1, 999_999_999])
def test_done_form_fits_slack_limits_and_round_trips(request_id: int):
    """The form's title fits 24 characters, and what it carries comes back from a submission."""
    view = render.render_done_form(request_id, "C0REVIEW", "1700000000.000100")
    submitted = p.view_submission_payload(
        view["callback_id"],
        {"response": {"response": {"type": "plain_text_input", "value": "ok"}}},
        private_metadata=view["private_metadata"],
    )

    parsed = inbound.parse_view_submission(submitted, received_at=datetime.now(UTC))

    assert len(view["title"]["text"]) <= 24
    assert len(view["submit"]["text"]) <= 24
    assert parsed is not None
    assert (parsed.request_id, parsed.channel_id, parsed.message_id, parsed.response) == (
        request_id,
        "C0REVIEW",
        "1700000000.000100",
        "ok",
    )


def test_two_holders_show_on_the_post_with_claim_still_offered():
    """An x2 request with one holder shows them and keeps Claim next to Done and Release;
    full, it names both holders and offers Done and Release only."""
    vera, sam = slack_member("U0VERA", "vera"), slack_member("U0SAM", "sam")
    half = render.render_relay_post(make_request(wanted=2, claimers=(vera,)))
    full = render.render_relay_post(
        make_request(status=Status.CLAIMED, wanted=2, claimers=(vera, sam))
    )

    assert "*Status:* open · 👀 vera · 1 of 2 reviewers" in texts_of(half["blocks"])
    assert [a for a, _ in buttons(half)] == ["review_claim", "review_done", "review_release"]
    assert "*Status:* claimed · 👀 vera, sam · 2 of 2" in texts_of(full["blocks"])
    assert [a for a, _ in buttons(full)] == ["review_done", "review_release"]
