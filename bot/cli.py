"""`reviewrelay`: run the bot, send today's reminders, or migrate the database.

Configuration errors end the process with one line naming the setting and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from bot import app
from bot.errors import ConfigError, StoreError
from bot.reminders import SweepReport
from bot.settings import Settings, load_settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviewrelay", description=__doc__.splitlines()[0])
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
    return parser


def _configure_logging(settings: Settings, *, quiet: bool) -> None:
    # The console speaks on stdout; keep log lines to warnings there so the transcript stays clean.
    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


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
            quiet=args.command in ("run", "console", "remind") and app.console_mode(settings),
        )
        match args.command:
            case "run" | "console":
                asyncio.run(app.run(settings))
            case "remind":
                report = asyncio.run(app.remind(settings, dry_run=args.dry_run))
                _print_report(report, dry_run=args.dry_run)
            case "db":
                version = asyncio.run(app.upgrade(settings))
                print(f"database at schema version {version}")  # noqa: T201 - CLI output
    except (ConfigError, StoreError) as exc:
        print(f"reviewrelay: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
