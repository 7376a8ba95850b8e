"""The use cases through Dispatcher.handle, on a real SQLite store with a fake clock."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from bot import texts
from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher, Rules
from bot.model import (
    ButtonAction,
    ButtonPressed,
    Ledger,
    NoticeKind,
    Platform,
    Status,
)
from storage.base import Transaction
from tests.conftest import COMMUNITY
from tests.factories import command as _command
from tests.factories import member
from tests.factories import reaction as _reaction


def command(text, who="you", *, clock, admin=False, key=None):
    return _command(text, who, at=clock.now(), admin=admin, key=key)


def reaction(request_id, emoji, who, *, clock, added=True, message_id=None):
    return _reaction(message_id or f"m{request_id}", emoji, who, at=clock.now(), added=added)


@pytest.fixture
async def posted(dispatcher: Dispatcher, worker: DeliveryWorker, clock):
    """Riley asks for a review of a python draft; the relay post is delivered as message m1."""
    reply = await dispatcher.handle(
        command("https://example.com/d #python section 2", "riley", clock=clock)
    )
    assert reply.text.startswith("Request #1 is open")
    await worker.drain()
    return 1


def _count(store_path, sql: str) -> int:
    with sqlite3.connect(store_path) as raw:
        return int(raw.execute(sql).fetchone()[0])


async def test_ask_posts_to_the_review_channel_and_mentions_a_volunteer(
    dispatcher, worker, sender, clock
):
    """A request is relayed to the review channel, mentioning the matched volunteer."""
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    reply = await dispatcher.handle(command("https://example.com/d #python", "riley", clock=clock))
    await worker.drain()
    assert reply.text == "Request #1 is open; 1 volunteer notified."
    [post] = sender.sent
    assert post.kind is NoticeKind.RELAY_POST
    assert post.channel_id == "reviews"
    assert post.mentions == ("vera",)
    assert post.request is not None
    assert post.request.link == "https://example.com/d"


async def test_requester_is_never_notified_of_their_own_request(dispatcher, worker, sender, clock):
    """A volunteer asking for a review is not matched to their own request."""
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    reply = await dispatcher.handle(command("https://example.com/d #python", "vera", clock=clock))
    await worker.drain()
    assert reply.text == "Request #1 is open; 0 volunteers notified."
    assert sender.sent[0].mentions == ()


async def test_refused_command_writes_nothing(dispatcher, tmp_path, clock):
    """A bad link gets a one-sentence reason and leaves no member, request or event behind."""
    reply = await dispatcher.handle(command("javascript:alert(1)", "mallory", clock=clock))
    assert reply.text == "Only http:// and https:// links can be shared for review."
    db = tmp_path / "test.db"
    for table in ("members", "requests", "inbound_events", "outbox"):
        assert _count(db, f"SELECT COUNT(*) FROM {table}") == 0  # noqa: S608 - fixed names


async def test_claim_by_reaction_edits_the_post_and_tells_the_requester(
    dispatcher, worker, sender, posted, clock
):
    """👀 on the relay post claims it; the post is edited and the requester gets a DM."""
    sender.sent.clear()
    reply = await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    await worker.drain()
    assert reply.text.startswith("You claimed request #1")
    kinds = {(n.kind, n.user_id or n.channel_id) for n in sender.sent}
    assert (NoticeKind.POST_UPDATE, "reviews") in kinds
    assert (NoticeKind.DIRECT, "riley") in kinds
    update = next(n for n in sender.sent if n.kind is NoticeKind.POST_UPDATE)
    assert update.message_id == "m1"
    assert update.request is not None
    assert update.request.status is Status.CLAIMED


async def test_a_snapshot_eyes_of_whoever_gave_the_request_back_claims_nothing(
    dispatcher, posted, clock
):
    """A 👀 read off the post after a gap (reconcile) does not claim again for someone who
    released the request since; a live 👀 from them does, and a snapshot one from anyone else."""
    await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    await dispatcher.handle(command("release 1", "vera", clock=clock))
    standing = replace(reaction(posted, "eyes", "vera", clock=clock), snapshot=True)
    other = replace(reaction(posted, "eyes", "sam", clock=clock), snapshot=True)

    assert not await dispatcher.handle(standing)
    assert (await dispatcher.handle(other)).text.startswith("You claimed request #1")
    await dispatcher.handle(command("release 1", "sam", clock=clock))
    again = await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    assert again.text.startswith("You claimed request #1")


async def test_second_claimer_is_told_who_holds_it(dispatcher, posted, clock, worker, sender):
    """A second 👀 is refused with the holder's name, privately, since a reaction cannot reply."""
    await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    reply = await dispatcher.handle(reaction(posted, "eyes", "sam", clock=clock))
    await worker.drain()
    assert reply.text == "Request #1 is already claimed by vera."
    to_sam = [n for n in sender.sent if n.kind is NoticeKind.EPHEMERAL and n.user_id == "sam"]
    assert [n.text for n in to_sam] == [reply.text]


async def test_concurrent_claims_have_exactly_one_winner(dispatcher, posted, clock):
    """Fifty volunteers claiming at once through the dispatcher: one wins, the rest are told."""
    replies = await asyncio.gather(
        *(dispatcher.handle(command(f"claim {posted}", f"v{i}", clock=clock)) for i in range(50))
    )
    winners = [r for r in replies if r.text.startswith("You claimed")]
    assert len(winners) == 1
    assert all("already claimed by" in r.text for r in replies if r not in winners)


async def test_repeated_event_is_processed_once(dispatcher, posted, clock, tmp_path):
    """The same event key delivered twice (a platform retry) claims once and DMs once."""
    event = reaction(posted, "eyes", "vera", clock=clock)
    first = await dispatcher.handle(event)
    second = await dispatcher.handle(event)
    assert first.text.startswith("You claimed")
    assert not second
    db = tmp_path / "test.db"
    assert _count(db, "SELECT COUNT(*) FROM claims") == 1
    assert _count(db, "SELECT COUNT(*) FROM outbox WHERE kind = 'direct'") == 1


async def test_removing_eyes_releases_only_for_the_holder(dispatcher, posted, clock):
    """Taking back 👀 releases a claim you hold; someone else's removal changes nothing."""
    await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    assert not await dispatcher.handle(reaction(posted, "eyes", "sam", added=False, clock=clock))
    reply = await dispatcher.handle(reaction(posted, "eyes", "vera", added=False, clock=clock))
    assert reply.text == "You released request #1; it is open again."


async def test_done_by_the_claimer_carries_the_response_to_the_requester(
    dispatcher, worker, sender, posted, clock
):
    """`done <id> <response>` by the claimer completes it and DMs the response to the requester."""
    await dispatcher.handle(command("claim 1", "vera", clock=clock))
    reply = await dispatcher.handle(command("done 1 see my comments inline", "vera", clock=clock))
    await worker.drain()
    assert reply.text == "Thank you! Request #1 is marked done."
    dm = [n for n in sender.sent if n.kind is NoticeKind.DIRECT][-1]
    assert dm.user_id == "riley"
    assert dm.text.endswith(": see my comments inline")


async def test_done_by_someone_else_is_refused(dispatcher, posted, clock):
    """Only the claimer (or an admin) can mark a request done."""
    await dispatcher.handle(command("claim 1", "vera", clock=clock))
    reply = await dispatcher.handle(command("done 1", "sam", clock=clock))
    assert reply.text == "Request #1 is held by vera; only they (or an admin) can do that."


async def test_an_admin_acting_on_a_claim_tells_the_reviewer_and_names_itself(
    dispatcher, posted, clock, worker, sender
):
    """An admin who releases or completes someone's claim: the reviewer is told, and the
    requester hears who did it, with the admin's words as the admin's, not the reviewer's."""

    def dms(to: str) -> list[str]:
        return [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == to]

    await dispatcher.handle(command("claim 1", "vera", clock=clock))
    await dispatcher.handle(command("release 1", "boss", admin=True, clock=clock))
    await worker.drain()
    assert dms("vera")[-1] == "boss released your claim on request #1; it is open again."
    assert dms("riley")[-1] == "boss released your request #1; it is open again."

    await dispatcher.handle(command("claim 1", "sam", clock=clock))
    await dispatcher.handle(command("done 1 stale, closing", "boss", admin=True, clock=clock))
    await worker.drain()
    assert dms("sam")[-1] == "boss marked your review of request #1 done."
    assert dms("riley")[-1] == (
        "boss marked your request #1 (https://example.com/d) done for sam: stale, closing"
    )

    await dispatcher.handle(command("https://example.com/e #python", "riley", clock=clock))
    await dispatcher.handle(command("claim 2", "sam", clock=clock))
    await dispatcher.handle(command("done 2 thanks!", "sam", clock=clock))
    await worker.drain()
    assert (
        dms("riley")[-1]
        == "sam finished reviewing your request #2 (https://example.com/e): thanks!"
    )


async def test_the_ask_reply_says_local_and_a_cut_note(dispatcher, clock):
    """What the parse took from the text is said back: a trailing `local`, a note cut short."""
    local = await dispatcher.handle(
        command("https://example.com/l #python please be local", "riley", clock=clock)
    )
    assert local.text.endswith("It stays in this community (local).")
    long = await dispatcher.handle(
        command("https://example.com/n #python " + "word " * 200, "riley", clock=clock)
    )
    assert long.text.endswith("Your note was cut to 500 characters.")


async def test_ticking_a_post_you_do_not_hold_changes_nothing(dispatcher, posted, clock):
    """✅ from anyone but the claimer is ignored."""
    await dispatcher.handle(reaction(posted, "eyes", "vera", clock=clock))
    assert not await dispatcher.handle(reaction(posted, "white_check_mark", "sam", clock=clock))


async def test_reactions_elsewhere_are_ignored(dispatcher, posted, clock, tmp_path):
    """A reaction on a message that is not a relay post does nothing and records nothing."""
    reply = await dispatcher.handle(
        reaction(posted, "eyes", "vera", clock=clock, message_id="unrelated")
    )
    assert not reply
    assert _count(tmp_path / "test.db", "SELECT COUNT(*) FROM inbound_events") == 1  # the ask


async def test_cancel_only_by_the_requester(dispatcher, posted, clock, worker, sender):
    """The requester may cancel; the claimer is told; others are refused."""
    await dispatcher.handle(command("claim 1", "vera", clock=clock))
    refused = await dispatcher.handle(command("cancel 1", "sam", clock=clock))
    assert refused.text == "Only the person who asked (or an admin) can cancel or close request #1."
    sender.sent.clear()
    reply = await dispatcher.handle(command("cancel 1", "riley", clock=clock))
    await worker.drain()
    assert reply.text == "Request #1 is cancelled."
    assert any(n.kind is NoticeKind.DIRECT and n.user_id == "vera" for n in sender.sent)


async def test_same_link_twice_within_a_minute_is_already_open(dispatcher, posted, clock):
    """Asking again for the same link right away points to the open request."""
    clock.advance(seconds=30)
    reply = await dispatcher.handle(command("https://example.com/d", "riley", clock=clock))
    assert reply.text == (
        "You asked for a review of that link a moment ago: request #1 is already open."
    )


async def test_hourly_quota_says_when_to_try_again(store, clock):
    """Past the hourly quota a request is refused with the time it will be accepted again."""
    limited = Dispatcher(
        store=store, clock=clock, rules=Rules(requests_per_hour=2), platforms=[Platform.CONSOLE]
    )
    for i in range(2):
        await limited.handle(command(f"https://example.com/{i}", "riley", clock=clock))
        clock.advance(minutes=10)
    reply = await limited.handle(command("https://example.com/9", "riley", clock=clock))
    assert reply.text == "You have opened 2 requests in the last hour; try again at 09:00 UTC."


async def test_paused_and_busy_volunteers_are_skipped(dispatcher, worker, sender, clock):
    """A paused volunteer is not notified; the least loaded eligible one is."""
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    await dispatcher.handle(command("volunteer python", "sam", clock=clock))
    await dispatcher.handle(command("pause 7", "vera", clock=clock))
    await dispatcher.handle(command("https://example.com/a #python", "riley", clock=clock))
    await worker.drain()
    assert sender.sent[-1].mentions == ("sam",)


async def test_volunteer_topics_add_up_and_unvolunteer_removes(dispatcher, clock):
    """Volunteering twice adds topics; unvolunteer without topics stops entirely."""
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    added = await dispatcher.handle(command("volunteer #Writing", "vera", clock=clock))
    assert added.text == "You will hear about requests on: python, writing."
    some = await dispatcher.handle(command("unvolunteer python", "vera", clock=clock))
    assert some.text == "You will hear about requests on: writing."
    gone = await dispatcher.handle(command("unvolunteer", "vera", clock=clock))
    assert gone.text == "You no longer volunteer; thank you for the reviews."
    again = await dispatcher.handle(command("pause 3", "vera", clock=clock))
    assert again.text == "You are not volunteering yet: /review volunteer <topics> to start."


async def test_list_and_mine(dispatcher, posted, clock):
    """`list` shows open requests by topic; `mine` shows what you asked for and what you hold."""
    listed = await dispatcher.handle(command("list #python", "sam", clock=clock))
    assert "#1 · https://example.com/d · #python · by riley" in listed.text
    empty = await dispatcher.handle(command("list #go", "sam", clock=clock))
    assert empty.text == "No open requests on #go."
    await dispatcher.handle(command("claim 1", "vera", clock=clock))
    mine = await dispatcher.handle(command("mine", "vera", clock=clock))
    assert "claimed by vera" in mine.text


async def test_setup_is_for_admins_and_sets_the_channel(dispatcher, clock):
    """Setup by a non-admin is refused; by an admin it makes the channel the review channel."""
    refused = await dispatcher.handle(command("setup", "sam", clock=clock))
    assert refused.text == "Only a community admin can run /review setup."
    done = await dispatcher.handle(
        command("setup tz=Europe/Berlin time=08:30", "boss", admin=True, clock=clock)
    )
    assert done.text.startswith(
        "This channel is now the review channel; reminders at 08:30 (Europe/Berlin)."
    )
    assert "thank" not in done.text  # recognition is said only when asked for
    off = await dispatcher.handle(command("setup recognition=off", "boss", admin=True, clock=clock))
    assert off.text.endswith("No monthly thank-you post here (recognition=on to change).")


async def test_claim_button_works_like_the_reaction(dispatcher, posted, clock):
    """The Claim button claims the request like 👀."""
    reply = await dispatcher.handle(
        ButtonPressed(
            event_key="b1",
            member=member("vera"),
            channel_id="reviews",
            message_id="m1",
            action=ButtonAction.CLAIM,
            request_id=posted,
            received_at=clock.now(),
        )
    )
    assert reply.text.startswith("You claimed request #1")


async def test_unknown_request_id(dispatcher, clock):
    """Acting on a request that does not exist is answered, not ignored."""
    reply = await dispatcher.handle(command("claim 42", "vera", clock=clock))
    assert reply.text == "There is no request #42."


async def test_community_setup_survives_reconnect(dispatcher, store, clock):
    """An adapter re-registering its community at start does not undo an admin's setup."""
    await dispatcher.handle(command("setup", "boss", admin=True, clock=clock, key="setup-1"))
    await dispatcher.connect_community(COMMUNITY)
    community = await store.run(lambda tx: tx.community(Platform.CONSOLE, "local"))
    assert community is not None
    assert community.review_channel_id == "reviews"


async def test_a_new_community_takes_the_default_time_zone_and_reminder_time(store, clock):
    """TIMEZONE and REMINDER_TIME are every community's until `/review setup` says otherwise;
    a community known before keeps what it has."""
    rules = Rules(timezone="America/New_York", reminder_time="03:00")
    dispatcher = Dispatcher(store=store, clock=clock, rules=rules, platforms=[Platform.CONSOLE])
    await dispatcher.connect_community(COMMUNITY)
    first = await store.run(lambda tx: tx.community(Platform.CONSOLE, "local"))
    assert first is not None
    assert (first.timezone, first.reminder_time) == ("America/New_York", "03:00")
    await dispatcher.handle(command("setup tz=Europe/Berlin", "boss", admin=True, clock=clock))
    await dispatcher.connect_community(COMMUNITY)
    again = await store.run(lambda tx: tx.community(Platform.CONSOLE, "local"))
    assert again is not None
    assert (again.timezone, again.reminder_time) == ("Europe/Berlin", "03:00")


async def test_x2_request_takes_two_reviewers(dispatcher, worker, sender, clock, store):
    """An x2 request: two claims fill it, a release reopens a slot, each done tells the
    requester how many are done, and each completed claim counts as one review both ways."""

    async def run(text, who):
        reply = await dispatcher.handle(command(text, who, clock=clock))
        await worker.drain()
        return reply.text

    def dms(to):
        return [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == to]

    def post():
        updates = [
            n for n in sender.sent if n.kind in (NoticeKind.RELAY_POST, NoticeKind.POST_UPDATE)
        ]
        assert updates[-1].request is not None
        return updates[-1].request

    assert await run("https://example.com/d #python x2 check the intro", "riley") == (
        "Request #1 is open for 2 reviewers; 0 volunteers notified."
    )
    await run("claim 1", "vera")
    assert post().status is Status.OPEN
    assert dms("riley")[-1] == (
        "vera claimed your request #1 (https://example.com/d): 1 of 2 reviewers."
    )
    assert "already hold" in await run("claim 1", "vera")
    await run("claim 1", "sam")
    assert post().status is Status.CLAIMED
    assert "claimed by vera, sam" in await run("claim 1", "alex")
    await run("release 1", "sam")
    assert [m.user_id for m in post().claimers] == ["vera"]
    await run("claim 1", "alex")
    assert await run("done 1 nice intro", "vera") == (
        "Thank you! Your review of request #1 is marked done."
    )
    assert dms("riley")[-1] == (
        "vera finished reviewing your request #1 (https://example.com/d), 1 of 2 done: nice intro"
    )
    assert post().status is Status.CLAIMED
    assert await run("done 1", "alex") == "Thank you! Request #1 is marked done."
    assert dms("riley")[-1] == (
        "alex finished reviewing your request #1 (https://example.com/d): 2 of 2 done."
    )
    assert texts.status_text(post()) == "done · ✅ vera, alex · 2 of 2"

    async def ledgers(tx: Transaction) -> tuple[Ledger, Ledger]:
        riley = await tx.member(member("riley"), clock.now())
        vera = await tx.member(member("vera"), clock.now())
        since = clock.now() - timedelta(days=30)
        return await tx.ledger(riley.person_id, since), await tx.ledger(vera.person_id, since)

    riley, vera = await store.run(ledgers)
    assert riley.received == 2
    assert vera.given == 1


async def test_cancel_of_x2_request_tells_each_claimer(dispatcher, worker, sender, clock):
    """Cancelling a request two people hold ends both claims and tells each of them."""
    for text, who in [
        ("https://example.com/d #python x2", "riley"),
        ("claim 1", "vera"),
        ("claim 1", "sam"),
        ("cancel 1", "riley"),
    ]:
        await dispatcher.handle(command(text, who, clock=clock))
    await worker.drain()
    told = {
        n.user_id
        for n in sender.sent
        if n.kind is NoticeKind.DIRECT and "was cancelled by the requester" in n.text
    }
    assert told == {"vera", "sam"}


async def test_rate_limit_names_a_time_at_which_asking_works(dispatcher, clock):
    """The quota's refusal names a minute at which one more request is accepted, not one
    (the seconds cut off) at which the same refusal comes back."""
    clock.advance(seconds=30)  # the oldest request at 08:00:30
    for i in range(Rules().requests_per_hour):
        reply = await dispatcher.handle(command(f"https://example.com/{i}", "riley", clock=clock))
        assert reply.text.startswith(f"Request #{i + 1} is open")
    refused = await dispatcher.handle(command("https://example.com/x", "riley", clock=clock))
    assert refused.text == "You have opened 10 requests in the last hour; try again at 09:01 UTC."
    clock.set(clock.now().replace(hour=9, minute=1, second=0))
    reply = await dispatcher.handle(command("https://example.com/x", "riley", clock=clock))
    assert reply.text.startswith("Request #11 is open")


async def test_admin_cancel_does_not_tell_the_claimer_the_requester_did(
    dispatcher, worker, sender, posted, clock
):
    """A claimer whose request an admin cancelled is not told the requester cancelled it."""
    await dispatcher.handle(command(f"claim {posted}", "vera", clock=clock))
    reply = await dispatcher.handle(command(f"cancel {posted}", "ada", clock=clock, admin=True))
    assert reply.text == "Request #1 is cancelled."
    await worker.drain()
    [told] = [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "vera"]
    assert told == "ada cancelled request #1 that you held."


async def test_a_paused_volunteer_adding_topics_is_told_they_stay_paused(dispatcher, clock):
    """Volunteering for more topics keeps a pause, and the reply says so instead of promising
    notifications that will not come."""
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    await dispatcher.handle(command("pause 7", "vera", clock=clock))
    added = await dispatcher.handle(command("volunteer writing", "vera", clock=clock))
    assert added.text == (
        "You will hear about requests on: python, writing. "
        "Notifications stay paused until 2026-11-30; /review resume turns them back on."
    )
    some = await dispatcher.handle(command("unvolunteer python", "vera", clock=clock))
    assert some.text == (
        "You will hear about requests on: writing. "
        "Notifications stay paused until 2026-11-30; /review resume turns them back on."
    )


async def test_a_volunteer_on_a_platform_without_a_sender_is_not_counted_as_notified(
    dispatcher, worker, sender, clock
):
    """A volunteer whose platform is not running (Discord switched off) cannot be told: they
    are neither counted in the reply nor marked notified (which would auto-pause them)."""
    away = member("dana", platform=Platform.DISCORD, community="G1")
    await dispatcher.handle(_command("volunteer python", away, at=clock.now()))
    await dispatcher.handle(command("volunteer python", "vera", clock=clock))
    reply = await dispatcher.handle(command("https://example.com/d #python", "riley", clock=clock))
    assert reply.text == "Request #1 is open; 1 volunteer notified."
