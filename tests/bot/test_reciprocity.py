"""Give and take: stats, fair load, quiet hours, auto-pause, thanks, nudge, close, hints,
and the monthly thank-you post."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from bot.dispatcher import Dispatcher, Rules
from bot.matching import in_quiet_hours
from bot.model import Ledger, Member, NoticeKind, Platform, QuietHours, Request, Status
from bot.reciprocity import held_back, queue_order, takes
from bot.reminders import ReminderRules, Reminders
from storage.base import Transaction
from tests.factories import command, member, reaction

NAMES = ("riley", "vera", "sam")


async def _say(dispatcher, clock, text, who):
    return (await dispatcher.handle(command(text, who, at=clock.now()))).text


async def _reviewed(dispatcher, clock, link, asker, reviewer):
    """One full round: `asker` asks, `reviewer` claims and finishes."""
    opened = await _say(dispatcher, clock, f"{link} #python", asker)
    request_id = int(opened.split("#")[1].split()[0])
    await _say(dispatcher, clock, f"claim {request_id}", reviewer)
    await _say(dispatcher, clock, f"done {request_id}", reviewer)
    clock.advance(minutes=2)
    return request_id


def _dms(sender, user):
    return [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == user]


async def test_stats_show_your_balance_and_thank_the_months_helpers(dispatcher, clock):
    """`stats` gives your own counts and thanks the month's reviewers by name."""
    await _reviewed(dispatcher, clock, "https://example.com/a", "riley", "vera")
    await _reviewed(dispatcher, clock, "https://example.com/b", "riley", "vera")
    await _reviewed(dispatcher, clock, "https://example.com/c", "vera", "sam")
    text = await _say(dispatcher, clock, "stats", "riley")
    assert text.startswith(
        "You have reviewed 0 requests (0 in the last 30 days) and received "
        "2 reviews (2 in the last 30 days)."
    )
    assert "vera (2 reviews), sam (1 review)" in text


def test_quiet_hours_wrap_past_midnight():
    """22:00-08:00 in Berlin covers 23:30 and 07:00 Berlin time but not noon."""
    quiet = QuietHours(start="22:00", end="08:00", timezone="Europe/Berlin")
    assert in_quiet_hours(quiet, datetime(2026, 11, 27, 22, 30, tzinfo=UTC))  # 23:30 Berlin
    assert in_quiet_hours(quiet, datetime(2026, 11, 27, 6, 0, tzinfo=UTC))  # 07:00 Berlin
    assert not in_quiet_hours(quiet, datetime(2026, 11, 27, 11, 0, tzinfo=UTC))


async def test_volunteer_in_quiet_hours_is_not_pinged(dispatcher, worker, sender, clock):
    """A volunteer in their quiet hours is skipped; another one is notified instead."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "volunteer python", "sam")
    quiet = await _say(dispatcher, clock, "quiet 07:00-12:00 UTC", "vera")  # clock is 08:00 UTC
    assert quiet == "Quiet hours set: no notifications 07:00-12:00 (UTC)."
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")
    await worker.drain()
    assert sender.sent[-1].mentions == ("sam",)


async def test_load_over_thirty_days_decides_between_idle_volunteers(
    dispatcher, worker, sender, clock
):
    """Of two idle volunteers, the one who reviewed less in the last 30 days is asked first."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "volunteer python", "sam")
    await _reviewed(dispatcher, clock, "https://example.com/a", "riley", "sam")
    await _reviewed(dispatcher, clock, "https://example.com/b", "riley", "sam")
    sender.sent.clear()
    await _say(dispatcher, clock, "https://example.com/c #python", "lee")
    await worker.drain()
    assert sender.sent[-1].mentions[0] == "vera"


async def test_the_load_window_moves_in_whole_seconds(dispatcher, clock, tmp_path):
    """Asks within one second leave the stored load window where the first put it: the window
    starts on whole seconds, so the store rewrites it (and recounts loads) once a second at most."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    starts = []
    for i, step in enumerate((0.25, 0.5, 0.3)):  # 08:00:00.25, .75, then 08:00:01.05
        clock.advance(seconds=step)
        await _say(dispatcher, clock, f"https://example.com/{i} #python", "riley")
        with sqlite3.connect(tmp_path / "test.db") as raw:
            starts.append(raw.execute("SELECT since FROM load_window").fetchone()[0])
    month_ago = clock.now().replace(microsecond=0) - timedelta(days=30)
    first, later = month_ago - timedelta(seconds=1), month_ago
    assert [datetime.fromisoformat(s) for s in starts] == [first, first, later]


async def test_three_ignored_notifications_pause_a_volunteer(store, clock, worker, sender):
    """After three notifications in a row with no claim, the volunteer is paused and told how to
    resume; resuming brings them back."""
    from bot.dispatcher import Dispatcher, Rules
    from bot.model import Platform
    from tests.conftest import COMMUNITY

    dispatcher = Dispatcher(
        store=store, clock=clock, rules=Rules(notify_limit=1), platforms=[Platform.CONSOLE]
    )
    await dispatcher.connect_community(COMMUNITY)
    await _say(dispatcher, clock, "volunteer python", "vera")
    for i in range(3):
        reply = await _say(dispatcher, clock, f"https://example.com/{i} #python", "riley")
        assert reply.endswith("1 volunteer notified.")
    # A fourth within the day: vera has not had the time to look, so she is asked again.
    clock.advance(hours=23)
    soon = await _say(dispatcher, clock, "https://example.com/soon #python", "riley")
    assert soon.endswith("1 volunteer notified.")
    clock.advance(hours=1)  # the first of her four is a day old now
    fourth = await _say(dispatcher, clock, "https://example.com/4 #python", "riley")
    assert fourth.endswith("0 volunteers notified.")
    await worker.drain()
    assert any("notifications are paused" in t for t in _dms(sender, "vera"))
    await _say(dispatcher, clock, "resume", "vera")
    fifth = await _say(dispatcher, clock, "https://example.com/5 #python", "riley")
    assert fifth.endswith("1 volunteer notified.")


async def test_thanks_reaction_reaches_the_reviewer_once(dispatcher, worker, sender, clock):
    """The requester's 🙏 on a done post DMs the reviewer; a second 🙏 or someone else's does
    nothing."""
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")
    await worker.drain()  # the relay post becomes message m1
    await _say(dispatcher, clock, "claim 1", "vera")
    await _say(dispatcher, clock, "done 1", "vera")
    other = await dispatcher.handle(reaction("m1", "pray", "sam", at=clock.now()))
    assert not other
    thanks = await dispatcher.handle(reaction("m1", "pray", "riley", at=clock.now()))
    assert thanks.text == "Thanks sent to vera."
    again = await dispatcher.handle(reaction("m1", "pray", "riley", at=clock.now()))
    assert not again
    await worker.drain()
    assert _dms(sender, "vera") == ["riley thanked you for reviewing request #1."]


async def test_nudge_asks_new_volunteers_once_a_day(dispatcher, worker, sender, clock):
    """`nudge` re-notifies volunteers not asked yet, only for the requester, once per day; a
    nudge that reached nobody does not use up the day."""
    for name in ("vera", "sam", "lee", "kim"):
        await _say(dispatcher, clock, "volunteer python", name)
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")  # asks 3 of 4
    assert await _say(dispatcher, clock, "nudge 1", "sam") == (
        "Only the person who asked can do that with request #1."
    )
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Asked 1 more volunteer to look at request #1."
    )
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Request #1 was re-announced less than a day ago; try again after 08:00 UTC."
    )
    clock.advance(days=1, minutes=1)
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Nobody else is available for request #1 right now; it stays in the digest."
    )
    await _say(dispatcher, clock, "volunteer python", "ada")
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Asked 1 more volunteer to look at request #1."
    )
    await _say(dispatcher, clock, "claim 1", "ada")
    clock.advance(days=1, minutes=1)
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Request #1 is claimed; only open requests can be re-announced."
    )


async def test_close_enough_ends_the_request_and_tells_the_claimer(
    dispatcher, worker, sender, store, clock
):
    """`close <id> enough` closes the request with that reason and tells whoever held it."""
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")
    await _say(dispatcher, clock, "claim 1", "vera")
    assert await _say(dispatcher, clock, "close 1 enough", "riley") == (
        "Closed request #1: glad you got enough feedback."
    )
    request = await store.run(lambda tx: tx.request(1))
    assert request is not None
    assert (request.status, request.response) == (Status.CANCELLED, "got enough feedback")
    await worker.drain()
    assert _dms(sender, "vera") == ["Request #1 that you held was cancelled by the requester."]
    assert await _say(dispatcher, clock, "close 1 enough", "riley") == (
        "Request #1 is already closed."
    )
    assert await _say(dispatcher, clock, "claim 1", "sam") == (
        "Request #1 is closed, so it cannot be claimed."
    )


async def test_takers_get_a_hint_newcomers_do_not(dispatcher, clock):
    """Someone who received 3+ more reviews than they gave (after 3 requests) is pointed at open
    requests they could review; a newcomer is not."""
    assert "\n" not in await _say(dispatcher, clock, "https://example.com/x #python", "sam")
    for i in range(3):
        await _reviewed(dispatcher, clock, f"https://example.com/{i}", "riley", "vera")
    reply = await _say(dispatcher, clock, "https://example.com/new #python", "riley")
    assert reply.endswith("While you wait, you could help someone else: #1 https://example.com/x.")


async def test_the_hint_suggests_only_requests_posted_in_the_takers_community(dispatcher, clock):
    """Another community's `local` request is not suggested: it was never posted here."""
    away = member("sam", community="elsewhere")
    await _say(dispatcher, clock, "https://example.com/theirs #python local", away)
    await _say(dispatcher, clock, "https://example.com/shared #python", away)
    for i in range(3):
        await _reviewed(dispatcher, clock, f"https://example.com/{i}", "riley", "vera")
    reply = await _say(dispatcher, clock, "https://example.com/new #python", "riley")
    assert reply.endswith("you could help someone else: #2 https://example.com/shared.")


async def test_monthly_thank_you_post_on_the_first(dispatcher, worker, sender, store, clock):
    """On the first of the month, the review channel thanks last month's reviewers by name."""
    clock.set(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    await _reviewed(dispatcher, clock, "https://example.com/a", "riley", "vera")
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    rules = ReminderRules(
        stale_after=timedelta(days=30),
        nudge_after=timedelta(days=30),
        expire_after=timedelta(days=30),
    )
    report = await Reminders(
        store=store, clock=clock, rules=rules, platforms={sender.platform}
    ).run()
    await worker.drain()
    assert len(report.recognitions) == 1
    [post] = [n for n in sender.sent if n.kind is NoticeKind.CHANNEL_TEXT]
    assert post.text.startswith("Thank you to last month's reviewers: vera (1 review).")


def _waiting(request_id, person_id, hours_ago):
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC) - timedelta(hours=hours_ago)
    return Request(
        id=request_id,
        link=f"https://example.com/{request_id}",
        topics=("python",),
        note="",
        requester=Member(
            platform=Platform.CONSOLE,
            community_id="local",
            user_id=f"p{person_id}",
            display_name=f"p{person_id}",
            person_id=person_id,
        ),
        origin_channel_id="reviews",
        status=Status.OPEN,
        created_at=at,
        updated_at=at,
    )


TAKER = Ledger(given=0, received=6, received_recent=4, asked=7)
GIVER = Ledger(given=5, given_recent=3, received=6, received_recent=4, asked=7)


def test_takers_requests_wait_behind_givers_then_age_decides():
    """A held-back request comes after every other one, however old; within each group the
    oldest comes first."""
    old_taker, giver, newer_giver = _waiting(1, 10, 48), _waiting(2, 20, 30), _waiting(3, 30, 2)
    older_taker = _waiting(4, 11, 72)
    ordered = queue_order([newer_giver, old_taker, giver, older_taker], held={1, 4})
    assert [r.id for r in ordered] == [2, 3, 4, 1]


def test_with_nothing_held_the_order_is_age_alone():
    """RECIPROCITY=off holds nothing back, so the order is oldest first whoever asked."""
    requests = [_waiting(1, 10, 2), _waiting(2, 20, 50), _waiting(3, 30, 20)]
    assert [r.id for r in queue_order(requests)] == [2, 3, 1]


def test_who_is_held_back():
    """Only a taker's fourth request on is held back, only under soft reciprocity; a giver
    (30-day balance within the gap) never is."""
    assert takes(TAKER)
    assert not takes(GIVER)
    assert held_back(TAKER, earlier=3, soft=True)
    assert not held_back(TAKER, earlier=3, soft=False)
    assert not held_back(GIVER, earlier=6, soft=True)
    # A newcomer's first requests are never held back, even after many reviews received.
    assert not any(held_back(TAKER, earlier=n, soft=True) for n in range(3))


def test_old_reviews_received_stop_counting_after_30_days():
    """Reviews received before the 30-day window do not make a taker."""
    assert not takes(Ledger(given=0, received=20, received_recent=2, asked=22))


async def _open_id(dispatcher, clock, link, who):
    reply = await _say(dispatcher, clock, f"{link} #python", who)
    return int(reply.split("#")[1].split()[0])


async def test_list_and_digest_show_givers_requests_first(dispatcher, worker, sender, store, clock):
    """`list` and the digest put a newer request of a newcomer before an older one of someone who
    received 4 reviews and gave none; with RECIPROCITY=off both are oldest first."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    for i in range(4):
        await _reviewed(dispatcher, clock, f"https://example.com/t{i}", "tina", "vera")
    taker = await _open_id(dispatcher, clock, "https://example.com/tina", "tina")
    clock.advance(minutes=5)
    newcomer = await _open_id(dispatcher, clock, "https://example.com/nora", "nora")
    clock.advance(minutes=5)

    def ids(text):
        return [int(line.split()[0][1:]) for line in text.splitlines() if line.startswith("#")]

    assert [newcomer, taker] == ids(await _say(dispatcher, clock, "list", "sam"))
    off = Dispatcher(
        store=store, clock=clock, rules=Rules(reciprocity=False), platforms=[Platform.CONSOLE]
    )
    assert [taker, newcomer] == ids(await _say(off, clock, "list", "sam"))

    clock.advance(hours=30)
    rules = ReminderRules(
        stale_after=timedelta(hours=24),
        nudge_after=timedelta(days=30),
        expire_after=timedelta(days=30),
    )
    await Reminders(store=store, clock=clock, rules=rules, platforms={sender.platform}).run(
        only_when_due=False
    )
    await worker.drain()
    [digest] = [n for n in sender.sent if n.kind is NoticeKind.CHANNEL_TEXT]
    assert [newcomer, taker] == ids(digest.text)


async def test_a_request_someone_else_took_was_not_ignored(store, clock, worker, sender):
    """Notified of three requests that others claimed at once, a volunteer is not paused; three
    that nobody took in time are ignored ones."""
    from tests.conftest import COMMUNITY

    dispatcher = Dispatcher(
        store=store, clock=clock, rules=Rules(notify_limit=2), platforms=[Platform.CONSOLE]
    )
    await dispatcher.connect_community(COMMUNITY)
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "volunteer python", "sam")
    for i in range(4):  # vera and sam both hear of each; sam takes each one
        opened = await _say(dispatcher, clock, f"https://example.com/{i} #python", "riley")
        assert opened.endswith("2 volunteers notified.")
        await _say(dispatcher, clock, f"claim {i + 1}", "sam")
        await _say(dispatcher, clock, f"done {i + 1}", "sam")
        clock.advance(minutes=2)
    await _say(dispatcher, clock, "https://example.com/cancelled #python", "riley")
    await _say(dispatcher, clock, "cancel 5", "riley")
    for i in range(3):  # nobody takes these: vera and sam ignore three in a row
        await _say(dispatcher, clock, f"https://example.com/open{i} #python", "riley")
    clock.advance(days=1)
    last = await _say(dispatcher, clock, "https://example.com/late #python", "riley")
    assert last.endswith("0 volunteers notified.")
    await worker.drain()
    paused = [t for t in _dms(sender, "vera") if "notifications are paused" in t]
    assert len(paused) == 1
    assert "the last 3 requests" in paused[0]


async def test_thanks_on_an_x2_request_reach_each_reviewer_once(dispatcher, worker, sender, clock):
    """🙏 on a request two people reviewed thanks both; a second 🙏 thanks nobody again."""
    await _say(dispatcher, clock, "https://example.com/a #python x2", "riley")
    await worker.drain()  # the relay post becomes message m1
    for reviewer in ("vera", "sam"):
        await _say(dispatcher, clock, "claim 1", reviewer)
    for reviewer in ("vera", "sam"):
        await _say(dispatcher, clock, "done 1", reviewer)
    thanks = await dispatcher.handle(reaction("m1", "pray", "riley", at=clock.now()))
    assert thanks.text == "Thanks sent to vera, sam."
    assert not await dispatcher.handle(reaction("m1", "pray", "riley", at=clock.now()))
    await worker.drain()
    for reviewer in ("vera", "sam"):
        assert _dms(sender, reviewer)[-1:] == ["riley thanked you for reviewing request #1."]
        assert _dms(sender, reviewer).count("riley thanked you for reviewing request #1.") == 1


async def test_recent_ledgers_agree_with_each_ledger(dispatcher, store, clock):
    """The digest's one-query balances equal each person's own ledger over the same window."""
    await _reviewed(dispatcher, clock, "https://example.com/a", "riley", "vera")
    await _reviewed(dispatcher, clock, "https://example.com/b", "riley", "sam")
    await _reviewed(dispatcher, clock, "https://example.com/c", "vera", "sam")
    clock.advance(days=40)  # these fall out of the window; one more falls in
    await _reviewed(dispatcher, clock, "https://example.com/d", "sam", "riley")
    since = clock.now() - timedelta(days=30)

    async def work(tx: Transaction) -> dict[int, Ledger]:
        people = [m.person_id for m in [await tx.member(member(n), clock.now()) for n in NAMES]]
        balances = await tx.recent_ledgers([*people, 999], since)
        for person in people:
            full = await tx.ledger(person, since)
            assert (balances[person].given_recent, balances[person].received_recent) == (
                full.given_recent,
                full.received_recent,
            )
        return balances

    balances = await store.run(work)
    assert balances[999] == Ledger()
    assert sum(b.given_recent for b in balances.values()) == 1


async def test_the_hint_does_not_suggest_a_request_the_taker_already_reviews(dispatcher, clock):
    """A taker holding a slot of an x2 request is not invited to help with it again."""
    await _say(dispatcher, clock, "https://example.com/held #python x2", "sam")
    await _say(dispatcher, clock, "https://example.com/free #python", "sam")
    for i in range(3):
        await _reviewed(dispatcher, clock, f"https://example.com/{i}", "riley", "vera")
    await _say(dispatcher, clock, "claim 1", "riley")
    reply = await _say(dispatcher, clock, "https://example.com/new #python", "riley")
    assert reply.endswith("you could help someone else: #2 https://example.com/free.")


async def test_a_refused_nudge_names_when_the_next_one_works(dispatcher, clock):
    """A second nudge the morning after an evening nudge is told the evening hour it may come
    back, not "tomorrow", and is accepted at that hour."""
    await _say(dispatcher, clock, "volunteer python", "vera")
    await _say(dispatcher, clock, "https://example.com/a #python", "riley")
    clock.set(clock.now().replace(hour=20, minute=0, second=30))
    await _say(dispatcher, clock, "volunteer python", "sam")
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Asked 1 more volunteer to look at request #1."
    )
    clock.advance(hours=13)  # 09:00:30 the next day
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Request #1 was re-announced less than a day ago; try again after 20:01 UTC."
    )
    clock.set(clock.now().replace(hour=20, minute=1, second=0))
    assert await _say(dispatcher, clock, "nudge 1", "riley") == (
        "Nobody else is available for request #1 right now; it stays in the digest."
    )
