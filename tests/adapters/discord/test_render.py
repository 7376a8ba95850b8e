"""Relay posts, channel text and replies rendered for Discord: contents, buttons, pings, limits."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import discord
import pytest

from adapters.discord import render
from bot import texts
from bot.model import ButtonAction, Member, Platform, Reply, Request, Status

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
GUILD = "500"
ALICE = Member(platform=Platform.DISCORD, community_id=GUILD, user_id="101", display_name="alice")
BOB = Member(platform=Platform.DISCORD, community_id=GUILD, user_id="102", display_name="bob")
INJECTION = "ping @everyone and @here, <@&123> and <@456> [click](https://evil.example)"


def make_request(**overrides: object) -> Request:
    values: dict[str, object] = {
        "id": 7,
        "link": "https://example.com/draft",
        "topics": ("python", "writing"),
        "note": "check section 2",
        "requester": ALICE,
        "origin_channel_id": "600",
        "status": Status.OPEN,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Request(**(values | overrides))  # type: ignore[arg-type]


def fields(embed: discord.Embed) -> dict[str, str]:
    return {f.name or "": f.value or "" for f in embed.fields}


def custom_ids(view: discord.ui.View) -> list[str]:
    return [c.to_component_dict()["custom_id"] for c in view.children]  # type: ignore[union-attr]


def test_embed_shows_the_request() -> None:
    """Title with id and link, the link, topics, requester, note and status."""
    embed = render.render_embed(make_request(), GUILD)
    assert embed.title == "Review request #7"
    assert embed.url == "https://example.com/draft"
    assert embed.description == "https://example.com/draft"
    shown = fields(embed)
    assert shown["Topics"].replace("\\", "") == "#python #writing"  # Markdown-escaped
    assert shown["Requested by"] == "alice"
    assert shown["Note"] == "check section 2"
    assert shown["Status"] == "open"
    assert "Response" not in shown


def test_done_embed_shows_claimer_and_response() -> None:
    """A finished request shows who did it and their response."""
    request = make_request(status=Status.DONE, claimer=BOB, response="LGTM, see comments")
    shown = fields(render.render_embed(request, GUILD))
    assert shown["Status"] == "done by bob"
    assert shown["Response"] == "LGTM, see comments"


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (Status.OPEN, ["review:claim:7"]),
        (Status.CLAIMED, ["review:done:7", "review:release:7"]),
        (Status.DONE, []),
        (Status.CANCELLED, []),
        (Status.EXPIRED, []),
    ],
)
def test_buttons_fit_the_status(status: Status, buttons: list[str]) -> None:
    """Claim while open; Done and Release while claimed; none once finished."""
    claimer = BOB if status in (Status.CLAIMED, Status.DONE) else None
    view = render.render_view(make_request(status=status, claimer=claimer))
    assert custom_ids(view) == buttons
    assert view.timeout is None


def test_button_custom_ids_round_trip_through_the_template() -> None:
    """The persistent item's template reads back the action and request id of every button."""
    template = re.compile(render.CUSTOM_ID_TEMPLATE)
    for action in ButtonAction:
        match = template.fullmatch(render.custom_id(action, 123456789))
        assert match is not None
        assert (ButtonAction(match["action"]), int(match["request_id"])) == (action, 123456789)
    assert template.fullmatch("review:claim:0") is None
    assert template.fullmatch("review:claim:1234567890") is None


def test_mentions_only_the_intended_volunteers() -> None:
    """Volunteers are pinged in content; allowed_mentions names only them, nothing else."""
    post = render.render_relay_post(make_request(note=INJECTION), ["102", "103", "102"])
    assert post["content"] == "<@102> <@103>" + render.MENTION_NOTE
    assert post["allowed_mentions"].to_dict() == {"parse": [], "users": [102, 103]}


def test_injected_mentions_are_shown_but_never_allowed() -> None:
    """@everyone, @here, role and user mentions in a note are displayed inert and ping nobody."""
    post = render.render_relay_post(make_request(note=INJECTION), [])
    assert post["content"] is None
    assert post["allowed_mentions"].to_dict() == {"parse": [], "users": []}
    note = fields(post["embed"])["Note"]
    for raw in ("@everyone", "@here", "<@&123>", "<@456>"):
        assert raw not in note  # broken with a zero-width space
    assert "everyone" in note
    assert "\\[click](" in note  # an escaped bracket: no masked link either


def test_malformed_mention_ids_are_dropped() -> None:
    """Only numeric ids are mentioned: anything else could be an injection."""
    post = render.render_relay_post(make_request(), ["102", "everyone", "&123", "<@1>"])
    assert post["content"] == "<@102>" + render.MENTION_NOTE
    assert post["allowed_mentions"].to_dict() == {"parse": [], "users": [102]}


def test_link_cannot_open_a_masked_link() -> None:
    """Markdown-significant characters of a link are percent-encoded where it is shown."""
    link = "https://good.example/[x](https://evil.example)"
    embed = render.render_embed(make_request(link=link), GUILD)
    assert embed.description == "https://good.example/%5Bx%5D%28https://evil.example%29"
    assert embed.url == embed.description


def test_long_texts_are_cut_to_discord_limits() -> None:
    """Every field, the description and the whole embed stay within Discord's limits."""
    request = make_request(
        link="https://example.com/" + "a" * 5000,
        note="n" * 3000,
        status=Status.DONE,
        claimer=BOB,
        response="r" * 3000,
        requester=replace(ALICE, display_name="x" * 3000),
    )
    embed = render.render_embed(request, GUILD)
    assert len(embed.description or "") == render.DESCRIPTION_LIMIT
    assert (embed.description or "").endswith(render.ELLIPSIS)
    assert embed.url is None  # too long to be a link target
    assert all(len(f.value or "") <= render.FIELD_VALUE_LIMIT for f in embed.fields)
    assert len(embed) <= render.EMBED_LIMIT
    assert fields(embed)["Note"].endswith(render.ELLIPSIS)


def test_many_mentions_fit_the_content_limit_whole() -> None:
    """Too many volunteers to mention: whole mentions only, and only those are allowed."""
    ids = [str(10**18 + i) for i in range(200)]
    post = render.render_relay_post(make_request(), ids)
    content = post["content"] or ""
    assert len(content) <= render.CONTENT_LIMIT
    mentioned = re.findall(r"<@(\d+)>", content)
    assert mentioned == ids[: len(mentioned)]
    assert post["allowed_mentions"].to_dict()["users"] == [int(i) for i in mentioned]


def test_channel_text_goes_to_an_embed_when_too_long() -> None:
    """A digest longer than a message is sent as an embed description instead."""
    assert render.render_text("short") == {"content": "short", "embeds": []}
    long = render.render_text("line\n" * 1000)
    assert long["content"] is None
    (embed,) = long["embeds"]
    assert len(embed.description or "") == render.DESCRIPTION_LIMIT


def test_replies_are_never_empty_or_too_long() -> None:
    """An interaction must be answered: an empty reply still says something."""
    assert render.render_reply(Reply.none()) == texts.NOTHING_CHANGED
    assert len(render.render_reply(Reply("x" * 5000))) == render.CONTENT_LIMIT
    assert render.render_direct("hello") == "hello"


def test_two_holders_show_on_the_post_with_claim_still_offered() -> None:
    """An x2 request with one holder shows them and keeps Claim next to Done and Release;
    full, it names both holders and offers Done and Release only."""
    carol = replace(BOB, user_id="103", display_name="carol", person_id=3)
    half = render.render_relay_post(make_request(wanted=2, claimers=(BOB,)), community_id=GUILD)
    full = render.render_relay_post(
        make_request(status=Status.CLAIMED, wanted=2, claimers=(BOB, carol)), community_id=GUILD
    )

    assert fields(half["embed"])["Status"] == "open · 👀 bob · 1 of 2 reviewers"
    assert custom_ids(half["view"]) == ["review:claim:7", "review:done:7", "review:release:7"]
    assert fields(full["embed"])["Status"] == "claimed · 👀 bob, carol · 2 of 2"
    assert custom_ids(full["view"]) == ["review:done:7", "review:release:7"]
