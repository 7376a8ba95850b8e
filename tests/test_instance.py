"""One bot per database: a second `run` stops, and `remind` leaves delivery to the running bot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import instance
from tests.process import run_reviewrelay


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    database = tmp_path / "relay.db"
    with instance.serving(database):
        with pytest.raises(instance.AlreadyRunningError) as refused, instance.serving(database):
            pass
        assert refused.value.pid == os.getpid()
        assert str(database) in str(refused.value)
    with instance.serving(database):  # released on the way out
        pass


def test_an_in_memory_database_needs_no_lock(tmp_path: Path) -> None:
    with instance.serving(":memory:"), instance.serving(":memory:"):
        pass


def _console(cwd: Path) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=clean | {"STALE_AFTER_HOURS": "0"},
    )


def _until(process: subprocess.Popen[str], text: str) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        assert line, f"the bot ended before printing {text!r}"
    pytest.fail(f"no {text!r} within 30 s")


def test_second_run_stops_and_remind_queues_for_the_running_bot(tmp_path: Path) -> None:
    running = _console(tmp_path)
    try:
        assert running.stdin is not None
        running.stdin.write("as riley: /review https://example.com/a #go\n")
        running.stdin.flush()
        _until(running, "[reply] Request #1 is open")

        second = run_reviewrelay(tmp_path, "run")
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"reviewrelay: another reviewrelay (pid {running.pid}) is already running on "
            "reviewrelay.db; stop it first (one running bot per database)"
        )

        cron = run_reviewrelay(tmp_path, "remind", STALE_AFTER_HOURS="0")
        assert cron.returncode == 0, cron.stderr
        assert cron.stdout == ""  # queued, not delivered: that is the running bot's job
        assert "1 digest(s)" in cron.stderr

        running.stdin.write("/review list\n")  # the console delivers after each line
        running.stdin.flush()
        _until(running, "[#reviews] Waiting for a reviewer (1):")
    finally:
        out, err = running.communicate(timeout=30)
    assert running.returncode == 0, err
    assert "Waiting for a reviewer" not in out  # once, not twice
