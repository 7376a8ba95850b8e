"""The console adapter: line parsing, and the README walk-through through `reviewrelay run`."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.console.console import GREETING, ConsoleParser
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


@pytest.mark.parametrize(
    ("typed", "name"), [("👀", "eyes"), ("✅", "white_check_mark"), ("🙏", "pray")]
)
def test_parse_line_names_unicode_reactions(typed: str, name: str):
    """A typed 👀, ✅ or 🙏 reacts as the emoji names the core compares (eyes, ..., pray)."""
    reacted = ConsoleParser(FakeClock()).parse_line(f"+{typed} 1").event
    assert isinstance(reacted, ReactionChanged)
    assert reacted.emoji == name


@contextlib.contextmanager
def _console(tmp_path: Path, stdin: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`reviewrelay run` with stdin a terminal or a pipe left open; yields it and stdin's writer."""
    writer, reader = pty.openpty() if stdin == "terminal" else os.pipe()[::-1]
    # The clean environment of tests.process.run_reviewrelay, which waits for the process to end.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_URL"))
    }
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=reader,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    ) as proc:
        os.close(reader)
        try:
            yield proc, writer
        finally:
            os.close(writer)
            if proc.poll() is None:
                proc.kill()


def _read_until(proc: subprocess.Popen[bytes], text: str, timeout: float = 20) -> str:
    """stdout up to and including `text`, failing after `timeout` seconds without it."""
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in out:
        ready, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        if not chunk:
            pytest.fail(f"no {text!r} on stdout; got {out.decode()!r}")
        out += chunk
    return out.decode()


@pytest.mark.parametrize("stdin", ["terminal", "pipe"])
def test_ctrl_c_stops_the_console_at_once(tmp_path: Path, stdin: str):
    """SIGINT ends a console waiting for input within seconds, exit 130, its database closed."""
    with _console(tmp_path, stdin) as (proc, writer):
        os.write(writer, b"as riley: /review https://example.com/a #go\n")
        _read_until(proc, "[reply] Request #1 is open")
        time.sleep(0.5)  # back to waiting for a line: ^C while it handles one never hung
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 130
    assert not (tmp_path / "reviewrelay.db-wal").exists()  # the last connection closed cleanly
    with sqlite3.connect(tmp_path / "reviewrelay.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT link FROM requests").fetchall() == [("https://example.com/a",)]


@pytest.mark.parametrize("stdin", ["terminal", "pipe"])
def test_a_terminal_is_greeted_and_a_pipe_is_not(tmp_path: Path, stdin: str):
    """At a terminal the console opens with one line saying what to type; a script sees none."""
    with _console(tmp_path, stdin) as (proc, writer):
        os.write(writer, b"/review mine\n")
        out = _read_until(proc, "[reply] You have no open requests or claims.")
        assert (out.splitlines()[0] == GREETING) is (stdin == "terminal")
        if stdin == "terminal":
            os.write(writer, b"\x04")  # Ctrl-D, as the greeting says
            assert proc.wait(timeout=5) == 0


def test_readme_walkthrough_runs_end_to_end(tmp_path: Path):
    """Piping the README's script into `reviewrelay run` prints every platform view and exits 0."""
    result = _run(tmp_path, WALKTHROUGH, "run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[reply] You will hear about requests on: python, writing." in out
    assert "[#reviews] Review request #1 from riley: https://example.com/draft" in out
    assert "cc @sam" in out
    assert "[reply] Request #1 is open; 1 volunteer notified." in out
    assert "[DM riley] sam claimed your request #1" in out
    assert "[reply] Request #1 is already claimed by sam." in out
    assert "Status: done by sam" in out
    assert "[DM riley] sam finished reviewing your request #1" in out
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
