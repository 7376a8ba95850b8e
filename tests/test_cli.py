"""The operator's commands, run as a real `reviewrelay` process: check, backup, export, forget,
db upgrade."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bot.cli import MigrationPrinter
from storage.migrate import MigrationStep, migrations
from tests.process import run_reviewrelay

_run = run_reviewrelay


@pytest.fixture
def with_data(tmp_path: Path) -> Path:
    script = "as riley: /review https://example.com/draft #go private words\n"
    assert _run(tmp_path, "run", stdin=script).returncode == 0
    return tmp_path


def test_version_is_the_installed_package_version(tmp_path: Path):
    """`--version` prints the version pip installed, and touches nothing."""
    result = _run(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"reviewrelay {metadata.version('reviewrelay')}\n"
    assert list(tmp_path.iterdir()) == []


def test_check_offline_reports_settings_and_store(tmp_path: Path):
    """`check --offline` validates settings and opens the store, one row each, exit 0."""
    result = _run(tmp_path, "check", "--offline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["ok", "settings", "valid"]
    assert "store" in result.stdout


def test_check_of_a_database_in_a_missing_folder_fails_its_row_without_a_traceback(
    tmp_path: Path,
):
    """The store row fails with the fix; aiosqlite's thread, stopped by the failed connect,
    does not die with a traceback on the closed event loop."""
    result = _run(tmp_path, "check", "--offline", DATABASE_URL=f"sqlite:///{tmp_path}/nodir/x.db")
    assert result.returncode == 1
    assert "FAIL store" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr


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


def test_backup_copies_an_older_schema_as_it_is(with_data: Path):
    """A backup taken with a newer reviewrelay (before upgrading) leaves the database and the copy
    at the schema they had: the copy is what to go back to if the upgrade goes wrong."""
    older = 11  # 0012 only adds volunteers.ignored_since: taken away, the file is at 11
    with sqlite3.connect(with_data / "reviewrelay.db") as raw:
        raw.execute("ALTER TABLE volunteers DROP COLUMN ignored_since")
        raw.execute(f"PRAGMA user_version = {older}")
    result = _run(with_data, "backup", "copy.db")
    assert result.returncode == 0, result.stderr
    for name in ("reviewrelay.db", "copy.db"):
        with sqlite3.connect(with_data / name) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == older


def test_backup_into_a_missing_folder_is_refused_in_one_line(with_data: Path):
    """A backup PATH in a folder that does not exist is refused in one line (exit 2)."""
    result = _run(with_data, "backup", "nodir/b.db")
    assert result.returncode == 2
    assert result.stderr == (
        "reviewrelay: cannot write the backup to nodir/b.db: its folder does not exist\n"
    )
    assert not (with_data / "nodir").exists()


def test_a_backup_that_fails_midway_says_why_and_leaves_no_file(with_data: Path):
    """A backup the disk cannot hold ends with one line naming it (exit 2) and no partial copy."""
    # A file size limit stands in for a full disk; ignoring SIGXFSZ turns it into a write error.
    script = 'ulimit -f 64 && trap "" XFSZ && exec "$0" -m bot backup copy.db'
    # The clean environment of tests.process.run_reviewrelay, which cannot wrap the command.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_URL"))
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        ["/bin/sh", "-c", script, sys.executable],
        capture_output=True,
        text=True,
        cwd=with_data,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith("reviewrelay: the backup to copy.db failed: ")
    assert "Traceback" not in result.stderr
    assert list(with_data.glob("copy.db*")) == []


@pytest.mark.parametrize(
    "command",
    [
        ["backup", "copy.db"],
        ["export", "--platform", "console", "--user", "riley"],
        ["forget", "--platform", "console", "--user", "riley"],
        ["remind"],
        ["remind", "--dry-run"],
    ],
    ids=" ".join,
)
def test_commands_on_a_missing_database_refuse_and_create_nothing(tmp_path: Path, command):
    """Commands about existing data say there is no database (exit 2) rather than make one."""
    result = _run(tmp_path, *command, DATABASE_URL="sqlite:///rr.db")
    assert result.returncode == 2
    assert result.stderr == "reviewrelay: no database at rr.db; check DATABASE_URL\n"
    assert list(tmp_path.iterdir()) == []


def test_export_then_forget_a_person(with_data: Path):
    """`export` prints a person's data; `forget` removes it; afterwards there is nothing to find."""
    exported = _run(with_data, "export", "--platform", "console", "--user", "riley")
    assert exported.returncode == 0, exported.stderr
    assert "private words" in exported.stdout
    assert "export: identities 1, requests 1, reviews 0" in exported.stderr
    forgot = _run(with_data, "forget", "--platform", "console", "--user", "riley")
    assert forgot.returncode == 0, forgot.stderr
    gone = _run(with_data, "export", "--platform", "console", "--user", "riley")
    assert gone.returncode == 1
    with sqlite3.connect(with_data / "reviewrelay.db") as raw:
        assert "private words" not in "\n".join(raw.iterdump())


def test_a_user_id_naming_different_people_needs_its_community(with_data: Path):
    """An id stored as two people (in two communities, unlinked) is not exported or forgotten
    at random: the operator is asked which, and --community picks one."""
    with sqlite3.connect(with_data / "reviewrelay.db") as raw:
        person = raw.execute("INSERT INTO persons (created_at) VALUES ('2026-01-01')").lastrowid
        raw.execute(
            "INSERT INTO members (platform, community_id, user_id, display_name, person_id) "
            "VALUES ('console', 'elsewhere', 'riley', 'riley too', ?)",
            (person,),
        )
    for command in ("export", "forget"):
        result = _run(with_data, command, "--platform", "console", "--user", "riley")
        assert result.returncode == 2
        assert result.stderr == (
            "reviewrelay: console user riley is a different person in each of the communities "
            "elsewhere, local: say which with --community\n"
        )
    forgot = _run(
        with_data, "forget", "--platform", "console", "--user", "riley", "--community", "local"
    )
    assert forgot.returncode == 0, forgot.stderr
    assert "private words" in forgot.stdout
    other = _run(with_data, "export", "--platform", "console", "--user", "riley")
    assert other.returncode == 0, other.stderr
    assert "riley too" in other.stdout


def test_export_names_the_community_it_looked_in(with_data: Path):
    """A user not stored in the given community is reported with that community."""
    result = _run(
        with_data, "export", "--platform", "console", "--user", "riley", "--community", "T9"
    )
    assert result.returncode == 1
    assert result.stderr == "reviewrelay: no console user riley in community T9 is stored\n"


def test_db_upgrade_prints_each_migration_of_an_old_file(tmp_path: Path):
    """`db upgrade --progress` on a schema-1 file names each migration, its place and its time."""
    with sqlite3.connect(tmp_path / "reviewrelay.db") as raw:
        raw.executescript(migrations()[0][1] + "\nPRAGMA user_version = 1;")
    result = _run(tmp_path, "db", "upgrade", "--progress")
    assert result.returncode == 0, result.stderr
    pending = [number for number, _ in migrations()][1:]
    applied = [line for line in result.stderr.splitlines() if ": applied in " in line]
    assert [line.split(": applied")[0] for line in applied] == [
        f"migration {number:04d} ({index} of {len(pending)})"
        for index, number in enumerate(pending, 1)
    ]
    assert all(line.endswith("row(s) written") for line in applied)
    assert result.stdout.strip() == f"database at schema version {pending[-1]}"


def test_db_upgrade_is_quiet_when_not_asked_and_not_a_terminal(tmp_path: Path):
    """Without --progress and with stderr not a terminal, the migrations leave only log lines."""
    result = _run(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert ": applying" not in result.stderr
    assert "applied migration 0001" in result.stderr  # the one INFO line per migration


def test_migration_printer_reports_a_long_statement_once_a_second(capsys, monkeypatch):
    """Reports from inside a long statement print at most one line per interval."""
    now = [100.0]
    monkeypatch.setattr("bot.cli.time.monotonic", lambda: now[0])
    printer = MigrationPrinter(interval=1.0)

    def step(steps: int, *, done: bool = False) -> MigrationStep:
        return MigrationStep(
            number=5, index=1, total=2, elapsed=now[0] - 100, rows=7, steps=steps, done=done
        )

    printer(step(0))
    for tick in range(1, 26):  # 2.5 s of reports, ten a second
        now[0] = 100 + tick / 10
        printer(step(tick * 100_000))
    printer(step(2_500_000, done=True))
    assert capsys.readouterr().err.splitlines() == [
        "migration 0005 (1 of 2): applying",
        "migration 0005 (1 of 2): 1.0s, 1,000,000 SQLite steps, 7 row(s) written so far",
        "migration 0005 (1 of 2): 2.0s, 2,000,000 SQLite steps, 7 row(s) written so far",
        "migration 0005 (1 of 2): applied in 2.5s, 7 row(s) written",
    ]
