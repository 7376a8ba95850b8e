"""The operator's commands, run as a real `reviewrelay` process: check, backup, export, forget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.process import run_reviewrelay

_run = run_reviewrelay


@pytest.fixture
def with_data(tmp_path: Path) -> Path:
    script = "as riley: /review https://example.com/draft #go private words\n"
    assert _run(tmp_path, "run", stdin=script).returncode == 0
    return tmp_path


def test_check_offline_reports_settings_and_store(tmp_path: Path):
    """`check --offline` validates settings and opens the store, one row each, exit 0."""
    result = _run(tmp_path, "check", "--offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["ok", "settings", "valid"]
    assert "store" in result.stdout


def test_check_names_the_fix_for_an_unreachable_platform(tmp_path: Path):
    """With a Slack token but no Slack to reach, `check` fails that row and says what to fix,
    without printing the token."""
    result = _run(
        tmp_path,
        "check",
        SLACK_BOT_TOKEN="xoxb-9999-secret",
        SLACK_SIGNING_SECRET="signing-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    assert result.returncode == 1
    assert "FAIL slack" in result.stdout
    assert "fix: check SLACK_API_URL" in result.stdout
    assert "xoxb-9999-secret" not in result.stdout + result.stderr


def test_backup_copies_a_consistent_database(with_data: Path):
    """`backup PATH` writes a copy with the data; an existing PATH is refused (exit 2)."""
    result = _run(with_data, "backup", "copy.db")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(with_data / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT link FROM requests").fetchall() == [
            ("https://example.com/draft",)
        ]
    again = _run(with_data, "backup", "copy.db")
    assert again.returncode == 2
    assert "exists" in again.stderr


def test_export_then_forget_a_person(with_data: Path):
    """`export` prints a person's data; `forget` removes it; afterwards there is nothing to find."""
    exported = _run(with_data, "export", "--platform", "console", "--user", "riley")
    assert exported.returncode == 0, exported.stderr
    assert "private words" in exported.stdout
    forgot = _run(with_data, "forget", "--platform", "console", "--user", "riley")
    assert forgot.returncode == 0, forgot.stderr
    gone = _run(with_data, "export", "--platform", "console", "--user", "riley")
    assert gone.returncode == 1
    with sqlite3.connect(with_data / "reviewrelay.db") as raw:
        assert "private words" not in "\n".join(raw.iterdump())
