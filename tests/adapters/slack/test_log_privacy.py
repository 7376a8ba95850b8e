"""DEBUG logs of a whole Slack request carry ids and error codes, never user text or secrets.

The real Slack app, core and SQLite store run against FakeSlack with logging configured as
`reviewrelay run` configures it (`bot.logs.configure`, LOG_USER_TEXT unset) at DEBUG, so
slack_sdk prints every API call's arguments and answer and aiosqlite each call on its thread. A
second, unfiltered handler proves the user text really was in the records the filter saw.
"""

from __future__ import annotations

import json
from typing import Any

from tests.adapters.slack.conftest import BOB, BOT_TOKEN, SECRET, SlackHarness
from tests.logcapture import debug_logs

REQUESTER = ("U0ZARA", "zz-zara-display-zz")
LINK = "https://example.com/SECRETDRAFT-123"
NEEDLES = {
    "link": LINK,
    "link part": "SECRETDRAFT",
    "note": "zz-private-note-zz",
    "topic": "zztopiczz",
    "display name": REQUESTER[1],
    "form response": "zz-modal-response-zz",
    "bot token": BOT_TOKEN,
    "signing secret": SECRET,
}


async def _request_lifecycle(harness: SlackHarness) -> None:
    """Volunteer, ask, a rate limit, claim, done with a form response, a dead-lettered DM."""
    harness.slack.add_user(*REQUESTER[:1], name=REQUESTER[1])
    await harness.command("volunteer zztopiczz", BOB)
    await harness.command(f"{LINK} #zztopiczz zz-private-note-zz", REQUESTER)
    harness.slack.fail_next("*", status=429, retry_after=1)
    await harness.deliver()
    harness.clock.advance(minutes=10)
    await harness.deliver()
    ts = harness.post_ts()
    await harness.react(ts, BOB)
    await harness.deliver()
    await harness.click("done", 1, BOB, ts)
    for form in harness.forms():
        await harness.submit(form, BOB, "zz-modal-response-zz")
    harness.slack.fail_next("chat.postMessage", error="channel_not_found", times=5)
    await harness.deliver()


async def test_debug_logs_carry_no_user_text_or_secret(harness: SlackHarness) -> None:
    """A request's whole life at DEBUG leaves links, notes, names and secrets out of the logs."""
    with debug_logs([BOT_TOKEN, SECRET], json_lines=True) as (stream, raw):
        await _request_lifecycle(harness)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = stream.getvalue()

    assert {name for name, needle in NEEDLES.items() if needle in logged} == set()
    seen_raw = {name for name, needle in NEEDLES.items() if any(needle in r for r in raw.lines)}
    assert {"link", "note", "display name", "form response"} <= seen_raw  # there was text to hide
    assert {"slack_sdk", "aiosqlite"} <= {line["logger"].split(".")[0] for line in lines}  # DEBUG
    _assert_still_useful(lines)


def _assert_still_useful(lines: list[dict[str, Any]]) -> None:
    """Ids, method names, error codes and dead-letter reasons stay readable."""
    sdk = [line["message"] for line in lines if line["logger"].startswith("slack_sdk")]
    assert any("api/chat.postMessage" in m and "'channel': 'C0REVIEW'" in m for m in sdk)
    assert any("'ts': '1700000000.000100'" in m for m in sdk)
    assert any("'error': 'channel_not_found'" in m for m in sdk)
    dead = [line for line in lines if "dead-lettered" in line["message"]]
    assert dead
    assert all("channel_not_found" in line["message"] for line in dead)
    assert {line.get("platform") for line in dead} == {"slack"}
    assert any(line.get("notice") for line in lines)  # the bound notice id rides along
    assert any("retrying in" in line["message"] for line in lines)
