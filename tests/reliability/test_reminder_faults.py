"""Daily reminders while Slack fails a third of the calls: each day's digest once, edits applied.

Six days of the real Slack app, core and store on the FakeClock. Every morning the sweep runs three
times (at 09:00, a minute later as the bot's own loop would, and once more as after a restart),
people claim listed requests (the digest is edited), claims age into nudges and auto-releases, and
the worker delivers through 30% of calls answering 500/502/503. Passing: one digest post per day,
every notice sent in the end (nothing dead), at most one nudge per claimer per day, and each day's
digest finally shows without the requests claimed after it was posted.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.adapters.slack.conftest import REVIEW_CHANNEL
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack
from tests.reliability.conftest import Figures, db_path, query, slack_bot, worker_rounds

DAYS = 6
FAULT_SHARE = 0.3
REQUESTS = 12


async def test_digests_and_nudges_survive_a_third_of_calls_failing(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # a Monday, before 09:00
    faults: Counter[str] = Counter()

    def arm(calls: int) -> None:
        for _ in range(calls):
            if rng.random() < FAULT_SHARE:
                slack.fail_next("*", status=rng.choice([500, 502, 503]))
                faults["5xx"] += 1
            else:
                slack.fail_next("*", delay=1e-6)
                faults["ok"] += 1

    claimed_after_digest: dict[int, list[int]] = {}
    shown: dict[int, str] = {}  # each day's digest as Slack shows it once the claims went out
    async with slack_bot(
        tmp_path,
        slack,
        clock,
        requests_per_hour=1_000,
        stale_after_hours=1,
        claim_nudge_after_days=1,
    ) as bot:
        for i in range(REQUESTS):
            answer = await bot.command(f"https://example.com/r{i} #python", (f"U0REQ{i:02d}", "r"))
            assert "is open" in answer.json()["text"]
        await worker_rounds(clock, db_path(tmp_path), bot.core.worker, arm)
        next_claim = 1
        for day in range(DAYS):
            clock.set(datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(days=day))
            for _ in range(3):  # 09:00, the next minute's check, and a restarted bot's
                await bot.core.reminders.run()
                clock.advance(minutes=1)
            await worker_rounds(clock, db_path(tmp_path), bot.core.worker, arm)
            claimed = []
            for _ in range(2):  # two listed requests get claimed after the digest went out
                answer = await bot.command(f"claim {next_claim}", (f"U0CLM{next_claim:02d}", "c"))
                assert answer.json()["text"].startswith("You claimed")
                claimed.append(next_claim)
                next_claim += 1
            await worker_rounds(clock, db_path(tmp_path), bot.core.worker, arm)
            shown[day] = _digest_now(slack)
            claimed_after_digest[day] = claimed

    outbox = Counter(s for (s,) in query(db_path(tmp_path), "SELECT status FROM outbox"))
    assert outbox == {"sent": outbox.total()}  # everything delivered, nothing dead
    digests = [
        c
        for c in slack.calls("chat.postMessage")
        if c.status == 200
        and c.args.get("channel") == REVIEW_CHANNEL
        and str(c.args.get("text", "")).startswith("Waiting for a reviewer")
    ]
    assert len(digests) == DAYS  # one a day: never skipped, never doubled
    # Nudges: at most one per claimer per day, and each accepted by Slack exactly once.
    nudge_rows = query(
        db_path(tmp_path),
        "SELECT user_id, substr(created_at, 1, 10), text FROM outbox "
        "WHERE kind = 'direct' AND text LIKE 'You claimed request #%Still on it?%'",
    )
    assert nudge_rows, "claims a day old were nudged"
    per_day = Counter((user, day) for user, day, _ in nudge_rows)
    assert max(per_day.values()) == 1
    accepted = Counter(
        (c.args["channel"], c.args["text"])
        for c in slack.calls("chat.postMessage")
        if c.status == 200 and "Still on it?" in str(c.args.get("text", ""))
    )
    assert sorted(accepted) == sorted((user, text) for user, _, text in nudge_rows)
    assert set(accepted.values()) == {1}
    for day, claimed in claimed_after_digest.items():
        lines = shown[day].splitlines()
        for request_id in claimed:
            line = next(x for x in lines if x.startswith(f"#{request_id} ·"))
            assert "claimed by" in line, f"day {day}: the digest was not edited for #{request_id}"
    figures["days"] = DAYS
    figures["calls"] = faults.total()
    figures["faults_5xx"] = faults["5xx"]
    figures["digests_posted"] = len(digests)
    figures["outbox_rows_sent"] = outbox["sent"]
    figures["nudges"] = len(nudge_rows)


def _digest_now(slack: FakeSlack) -> str:
    """The newest digest's text as Slack shows it: its post, or the last edit Slack accepted."""
    post = next(
        c
        for c in reversed(slack.calls("chat.postMessage"))
        if c.status == 200
        and c.args.get("channel") == REVIEW_CHANNEL
        and str(c.args.get("text", "")).startswith("Waiting for a reviewer")
    )
    edits = [
        c
        for c in slack.calls("chat.update")
        if c.status == 200 and c.args.get("ts") == post.response.get("ts")
    ]
    return str((edits[-1] if edits else post).args.get("text", ""))
