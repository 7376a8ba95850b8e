"""`reviewrelay`: run the bot, send reminders, check, back up, migrate, export or forget data.

Configuration errors end the process with one line naming the setting and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from adapters.checks import CheckRow
from bot import app, logs
from bot.errors import AmbiguousUserError, ConfigError, StoreError
from bot.reminders import SweepReport
from bot.settings import Settings, load_settings
from storage.migrate import MigrationStep

EXIT_CONFIG = 2
# Commands about the data already there: on a missing file SqliteStore.open would make an empty
# database and they would answer about it as if a wrong DATABASE_URL were a real, empty one.
# `run` and `console` create the database on first use, `db upgrade` too (a deploy script may run
# it before the first start), and `check` reports whether it opens.
_NEED_DATABASE = frozenset({"remind", "backup", "export", "forget"})


def _version() -> str:
    try:
        return metadata.version("reviewrelay")
    except metadata.PackageNotFoundError:  # a checkout run without installing it
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviewrelay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (the local console when no platform token is set)")
    sub.add_parser("console", help="run the local console, whatever tokens are set")
    remind = sub.add_parser("remind", help="run today's reminders once (for cron), then exit")
    remind.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be sent, without sending or recording it",
    )
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply pending migrations")
    db.add_argument(
        "--progress",
        action="store_true",
        help="report each migration on stderr even when it is not a terminal",
    )
    check = sub.add_parser("check", help="validate settings, the store and the platform tokens")
    check.add_argument("--offline", action="store_true", help="do not call Slack or Discord")
    sub.add_parser(
        "discord-invite",
        help="print the URL that adds the Discord bot to a server (logs in over HTTP only)",
    )
    backup = sub.add_parser("backup", help="copy the database consistently, even while running")
    backup.add_argument("path", type=Path, help="a new file for the copy")
    for name, text in (
        ("export", "print a person's data as JSON"),
        ("forget", "delete a person's data (prints what it deleted)"),
    ):
        person = sub.add_parser(name, help=text)
        person.add_argument("--platform", required=True, choices=["slack", "discord", "console"])
        person.add_argument("--user", required=True, help="the platform's user id")
        person.add_argument("--community", help="workspace or guild id, if the id is ambiguous")
    return parser


def _configure_logging(settings: Settings, *, quiet: bool) -> None:
    # The console speaks on stdout; keep log lines to warnings there so the transcript stays clean.
    level = logging.WARNING if quiet else settings.log_level
    logs.configure(
        level=level,
        json_lines=settings.log_format == "json",
        secrets=settings.secrets(),
        user_text=settings.log_user_text,
    )


def _print_checks(rows: list[CheckRow]) -> bool:
    width = max(len(r.name) for r in rows)
    for row in rows:
        mark = "ok  " if row.ok else "FAIL"
        line = f"{mark} {row.name:<{width}}  {row.detail}"
        if row.fix:
            line += f"\n     {'':<{width}}  fix: {row.fix}"
        _say(line)
    return all(r.ok for r in rows)


def _progress(done: int, total: int) -> None:
    _say(f"\rbackup: {done}/{total} pages", err=True, end="")


class MigrationPrinter:
    """Migration progress on stderr: each start and end, and a line a second while one runs."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._last = 0.0

    def __call__(self, step: MigrationStep) -> None:
        name = f"migration {step.number:04d} ({step.index} of {step.total})"
        if step.done:
            line = f"{name}: applied in {step.elapsed:.1f}s, {step.rows:,} row(s) written"
        elif step.steps == 0:
            line = f"{name}: applying"
        elif time.monotonic() - self._last >= self._interval:
            # SQLite counts rows when a statement ends: inside one long UPDATE only time moves.
            line = (
                f"{name}: {step.elapsed:.1f}s, {step.steps:,} SQLite steps, "
                f"{step.rows:,} row(s) written so far"
            )
        else:
            return
        self._last = time.monotonic()
        _say(line, err=True)


def _show_progress(args: argparse.Namespace) -> bool:
    return bool(args.progress) or sys.stderr.isatty()


def _upgrade(settings: Settings, args: argparse.Namespace) -> int:
    printer = MigrationPrinter() if _show_progress(args) else None
    _say(f"database at schema version {asyncio.run(app.upgrade(settings, printer))}")
    return 0


def _print_report(report: SweepReport, *, dry_run: bool) -> None:
    if dry_run:
        for notice in report.notices:
            target = notice.channel_id or f"DM {notice.user_id}"
            text = notice.text or f"(edit of the post of request #{notice.request_id})"
            print(f"[dry-run {notice.platform} {target}] {text}")  # noqa: T201 - CLI output
    skipped = len(report.skipped)
    print(  # noqa: T201 - CLI output
        f"reminders: {sum(1 for _, n in report.digests if n)} digest(s), "
        f"{len(report.nudged)} nudge(s), {len(report.released)} released, "
        f"{len(report.expired)} expired; {skipped} community(ies) already had today's digest",
        file=sys.stderr,
    )


def _say(text: str, *, err: bool = False, end: str = "\n") -> None:
    print(text, file=sys.stderr if err else sys.stdout, end=end, flush=True)


def _existing_database(settings: Settings) -> None:
    path = settings.database_path
    if isinstance(path, Path) and not path.exists():  # ":memory:" is always there
        msg = f"no database at {path}; check DATABASE_URL"
        raise StoreError(msg)


def _create_new(path: Path) -> str | None:
    """Create `path` empty, or say why it cannot be a new file for the backup."""
    try:
        # Made here and only if new: the OS says why it cannot be, and nothing is overwritten.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return f"{path} exists; choose a new file for the backup"
    except OSError as exc:
        missing = exc.errno == errno.ENOENT and not path.parent.exists()
        reason = "its folder does not exist" if missing else exc.strerror or str(exc)
        return f"cannot write the backup to {path}: {reason}"
    return None


def _backup(settings: Settings, path: Path) -> int:
    if refusal := _create_new(path):
        _say(f"reviewrelay: {refusal}", err=True)
        return EXIT_CONFIG
    shown = False

    def progress(done: int, total: int) -> None:
        nonlocal shown
        shown = True
        _progress(done, total)

    try:
        asyncio.run(app.backup(settings, path, progress))
    except BaseException:
        path.unlink(missing_ok=True)  # half a copy must not pass for a backup
        if shown:
            _say("", err=True)  # the reason goes on a line of its own, not after the page count
        raise
    _say(f"\nbackup written to {path}", err=True)
    return 0


def _person(settings: Settings, args: argparse.Namespace) -> int:
    forget = args.command == "forget"
    try:
        data = asyncio.run(
            app.person_data(settings, args.platform, args.user, args.community, forget=forget)
        )
    except AmbiguousUserError as exc:
        _say(f"reviewrelay: {exc}", err=True)
        return EXIT_CONFIG
    if data is None:
        where = f" in community {args.community}" if args.community else ""
        _say(f"reviewrelay: no {args.platform} user {args.user}{where} is stored", err=True)
        return 1
    _say(data)
    _say(f"{args.command}: {_counts(data)}", err=True)  # stdout stays pure JSON
    return 0


def _counts(data: str) -> str:
    """What an export holds, one count per section: `identities 2, requests 140, ...`."""
    sections = json.loads(data)
    return ", ".join(f"{k} {len(v)}" for k, v in sections.items() if isinstance(v, list))


def _command(settings: Settings, args: argparse.Namespace) -> int:
    if args.command in _NEED_DATABASE:
        _existing_database(settings)
    match args.command:
        case "run" | "console":
            asyncio.run(app.run(settings))
        case "remind":
            report = asyncio.run(app.remind(settings, dry_run=args.dry_run))
            _print_report(report, dry_run=args.dry_run)
        case "check":
            return 0 if _print_checks(asyncio.run(app.check(settings, offline=args.offline))) else 1
        case "discord-invite":
            from adapters.discord.invite import discord_invite  # noqa: PLC0415 - discord.py on use

            _say(asyncio.run(discord_invite(settings)))
        case "backup":
            return _backup(settings, args.path)
        case "export" | "forget":
            return _person(settings, args)
        case "db":
            return _upgrade(settings, args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "console":
            settings = settings.model_copy(
                update={"slack_bot_token": None, "discord_bot_token": None}
            )
        _configure_logging(
            settings,
            quiet=(args.command in ("run", "console", "remind") and app.console_mode(settings))
            or (args.command == "db" and _show_progress(args)),  # the printer says it all
        )
        return _command(settings, args)
    except (ConfigError, StoreError) as exc:
        _say(f"reviewrelay: {exc}", err=True)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
