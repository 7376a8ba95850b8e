"""The console adapter: line parsing, and the README walk-through through `reviewrelay run`."""

from __future__ import annotations

from pathlib import Path

from adapters.console.console import ConsoleParser
from bot.model import CommandReceived, ReactionChanged
from tests.fakes.fake_clock import FakeClock
from tests.process import run_reviewrelay

WALKTHROUGH = """\
/review volunteer python writing
as riley: /review https://example.com/draft #python check section 2
+eyes 1
as vera: +eyes 1
+white_check_mark 1
as riley: /review mine
as riley: /review ftp://example.com/x
"""


def _run(tmp_path: Path, script: str, *args: str, **env: str):
    return run_reviewrelay(tmp_path, *args, stdin=script, **env)


def test_parse_line_reads_people_reactions_and_commands():
    """`as NAME:` picks the actor, `+EMOJI ID` is a reaction, anything else gets a hint."""
    parser = ConsoleParser(FakeClock())
    asked = parser.parse_line("as riley: /review https://example.com #go").event
    assert isinstance(asked, CommandReceived)
    assert (asked.member.user_id, asked.text) == ("riley", "https://example.com #go")
    reacted = parser.parse_line("-👀 3").event
    assert isinstance(reacted, ReactionChanged)
    assert (reacted.emoji, reacted.added, reacted.message_id) == ("eyes", False, "3")
    assert parser.parse_line("hello").hint.startswith("Type /review help")
    assert parser.parse_line("").event is None


def test_readme_walkthrough_runs_end_to_end(tmp_path: Path):
    """Piping the README's script into `reviewrelay run` prints every platform view and exits 0."""
    result = _run(tmp_path, WALKTHROUGH, "run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[reply] You will hear about requests on: python, writing." in out
    assert "[#reviews] Review request #1 from riley: https://example.com/draft" in out
    assert "cc @you" in out
    assert "[reply] Request #1 is open; 1 volunteer notified." in out
    assert "[DM riley] you claimed your request #1" in out
    assert "[reply] Request #1 is already claimed by you." in out
    assert "Status: done by you" in out
    assert "[DM riley] you finished reviewing your request #1" in out
    assert "[reply] You have no open requests or claims." in out
    assert "[reply] Only http:// and https:// links can be shared for review." in out
    assert "Traceback" not in out + result.stderr
    assert (tmp_path / "reviewrelay.db").exists()


def test_state_survives_a_restart_and_remind_runs_once_a_day(tmp_path: Path):
    """A second run sees the first run's request; `remind` twice sends the digest once."""
    _run(tmp_path, "as riley: /review https://example.com/a #go\n", "run")
    listed = _run(tmp_path, "/review list\n", "run")
    assert "#1 · https://example.com/a · #go · by riley" in listed.stdout
    first = _run(tmp_path, "", "remind", STALE_AFTER_HOURS="0")
    second = _run(tmp_path, "", "remind", STALE_AFTER_HOURS="0")
    assert first.returncode == 0, first.stderr
    assert "[#reviews] Waiting for a reviewer (1):" in first.stdout
    assert "https://example.com/a" in first.stdout
    assert second.stdout == ""
    assert "1 community(ies) already had today's digest" in second.stderr


def test_bad_setting_exits_2_with_one_line(tmp_path: Path):
    """A malformed setting stops the bot with one line naming the variable, no traceback."""
    (tmp_path / ".env").write_text("REMINDER_TIME=25:99\n")
    result = _run(tmp_path, "", "run")
    assert result.returncode == 2
    assert result.stderr.strip() == "reviewrelay: REMINDER_TIME: '25:99' is not a time like 09:00"
