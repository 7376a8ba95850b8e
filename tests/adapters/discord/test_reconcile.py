"""Planning the catch-up after a new session: which missed reactions to feed, in what order."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.discord.reconcile import Reactor, plan
from bot.model import OpenPost, Status

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def post(status: Status = Status.OPEN, updated_at: datetime = NOW) -> OpenPost:
    return OpenPost(
        request_id=3,
        community_id="500",
        channel_id="600",
        message_id="700",
        status=status,
        updated_at=updated_at,
    )


def feed(target: OpenPost, **reactors: list[int]) -> list[tuple[str, str]]:
    found = {
        name: [Reactor(user_id, f"user{user_id}") for user_id in ids]
        for name, ids in reactors.items()
    }
    events = plan(target, found, claim_emoji="eyes", done_emoji="white_check_mark", received_at=NOW)
    assert all(e.added and e.message_id == "700" and e.channel_id == "600" for e in events)
    return [(e.emoji, e.member.user_id) for e in events]


def test_open_post_claims_in_user_id_order_then_done() -> None:
    """Several 👀: lowest user id first (Discord's own listing order); ✅ after the claims."""
    assert feed(post(), eyes=[30, 10, 20], white_check_mark=[10]) == [
        ("eyes", "10"),
        ("eyes", "20"),
        ("eyes", "30"),
        ("white_check_mark", "10"),
    ]


def test_claimed_post_feeds_only_done() -> None:
    """On a claimed request a 👀 cannot win; only ✅ (the core ignores non-claimers)."""
    assert feed(post(Status.CLAIMED), eyes=[10, 20], white_check_mark=[20]) == [
        ("white_check_mark", "20")
    ]


def test_keys_repeat_for_an_unchanged_request_only() -> None:
    """Same request state, same keys (a second reconcile is a no-op); a new state, new keys."""

    def keys(target: OpenPost) -> list[str]:
        found = {"eyes": [Reactor(10, "a")]}
        return [
            e.event_key
            for e in plan(target, found, claim_emoji="eyes", done_emoji="done", received_at=NOW)
        ]

    assert keys(post()) == keys(post())
    assert keys(post()) != keys(post(updated_at=datetime(2026, 11, 24, tzinfo=UTC)))


def test_other_emojis_are_ignored() -> None:
    """Only the configured claim and done emojis count."""
    assert feed(post(), tada=[10]) == []
