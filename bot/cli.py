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
from bot.settings import Settings, load_settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reviewrelay", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (the local console when no platform token is set)")
    sub.add_parser("console", help="run the local console, whatever tokens are set")
    sub.add_parser("remind", help="send today's digest of stale requests once, then exit")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply pending migrations")
    return parser


def _configure_logging(settings: Settings, *, quiet: bool) -> None:
    # The console speaks on stdout; keep log lines to warnings there so the transcript stays clean.
    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
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
                results = asyncio.run(app.remind(settings))
                sent = sum(1 for r in results if r.sent and r.stale)
                skipped = sum(1 for r in results if not r.sent)
                print(  # noqa: T201 - CLI output
                    f"reminders: {sent} digest(s) sent, {skipped} already sent today",
                    file=sys.stderr,
                )
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
