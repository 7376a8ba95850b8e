"""Logging: one line per event, human text or JSON, with the event's context and no secrets.

`bind(...)` adds fields (platform, event key, request id) to every line logged inside it, through a
context variable, so a handler's lines carry them without passing loggers around. Secrets are
redacted by a filter on the handler, so no code path can leak a token into a log file.

The same filter keeps user text (links, notes, names, DM bodies, form responses) out of the logs,
unless `LOG_USER_TEXT=true`. Ids, numbers, enums, status and error codes go through; text does not:
- a library's line (slack_sdk and discord.py at DEBUG print whole payloads) keeps its dict keys,
  id-shaped values and the values of a few known keys (`error`, `type`, `ts`, headers), and every
  other quoted string becomes `'[text]'`;
- our own lines keep their message; an argument that is an object (a Notice, a dict, a list) is
  shown by its type name, and at DEBUG a string argument that is not one word becomes `[text]`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import partial
from pathlib import PurePath
from typing import Any

_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("reviewrelay_log_context", default=None)
# Token shapes, redacted even when not configured (a token pasted into the wrong variable).
_TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[0-9A-Za-z-]{6,}|xapp-[0-9A-Za-z-]{6,}"
    r"|[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"
)
# Discord puts interaction and webhook tokens (credentials to answer, for 15 minutes) in the path.
_URL_TOKENS = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/\s'\"?]+")
REDACTED = "[redacted]"
USER_TEXT = "[text]"

# Loggers whose lines we write (anything else is a library's).
_OWN = frozenset({"bot", "adapters", "storage", "__main__"})
# A quoted string in a repr or in JSON; a dict key when a colon follows.
_QUOTED = re.compile(r"""('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(\s*:)?""")
# Values that are never user text: platform ids (U0ABC123, with a digit), numbers, Slack ts,
# ISO times, empty strings and what a redactor already put there.
_ID_SHAPED = re.compile(
    r"[A-Z](?=[A-Z]*\d)[A-Z0-9]{2,}|-?\d+(?:\.\d+)?|\d{4}-\d\d-\d\d[T ][\d:.+-]+Z?|"
    r"|\[redacted\]|\(redacted\)|\[text\]"
)
# Keys whose values are codes, ids or headers in Slack's and Discord's payloads (lower case).
_SAFE_KEYS = frozenset(
    {
        "ok", "error", "errors", "warning", "needed", "provided", "type", "subtype", "op", "t",
        "id", "user", "team", "team_id", "user_id", "channel", "channel_id", "guild_id", "bot_id",
        "app_id", "api_app_id", "application_id", "message_id", "event_id", "trigger_id",
        "view_id", "callback_id", "action_id", "block_id", "custom_id", "ts", "message_ts",
        "thread_ts", "event_ts", "status", "code", "reaction", "content-type", "content-length",
        "date", "server", "user-agent", "authorization", "retry-after", "x-slack-req-id",
        "x-slack-retry-num", "x-slack-retry-reason", "x-oauth-scopes", "x-accepted-oauth-scopes",
        "x-ratelimit-bucket", "x-ratelimit-remaining", "x-ratelimit-reset-after",
    }
)  # fmt: skip
# One word: what an id, code or event key looks like (user text mostly is not, links never are).
_WORD = re.compile(r"[^\s'\"]{1,64}")
_FAST = frozenset({int, float, bool, type(None)})
_PLAIN = (int, float, Enum, PurePath, date, timedelta)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class RepeatedFailure:
    """A job that may fail at each try while its cause lasts (a full disk: every second), logged
    so as not to fill that disk: the first failure (and one of a new kind) in full, then a line
    every `every` failures in a row, and a line when it works again."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        every: int,
        level: int = logging.ERROR,
        traceback: bool = True,
    ) -> None:
        self._log, self._what, self._every = log, what, every
        self._level, self._traceback = level, traceback
        self._count = 0
        self._kind: type[BaseException] | None = None

    def failed(self, exc: Exception) -> None:
        self._count += 1
        if self._count == 1 or type(exc) is not self._kind:
            self._kind = type(exc)
            info = exc if self._traceback else None
            self._log.log(self._level, "%s failed: %s", self._what, exc, exc_info=info)
        elif self._count % self._every == 0:
            self._log.log(
                self._level, "%s still failing, %d in a row: %s", self._what, self._count, exc
            )

    def worked(self) -> None:
        if self._count:
            self._log.info("%s works again after %d failed", self._what, self._count)
            self._count, self._kind = 0, None


def hide_quoted(text: str) -> str:
    """`text` with every quoted string replaced by '[text]', except keys, ids and safe values."""
    if "'" not in text and '"' not in text:
        return text  # the usual own line: nothing to scan
    key, key_end = "", -1

    def replace(match: re.Match[str]) -> str:
        nonlocal key, key_end
        literal = match.group(1)
        if match.group(2):  # a key: kept, and remembered for the value after it
            key, key_end = literal[1:-1].lower(), match.end()
            return match.group(0)
        of_safe_key = key in _SAFE_KEYS and not text[key_end : match.start()].strip()
        if of_safe_key or _ID_SHAPED.fullmatch(literal[1:-1]):
            return literal
        return f"{literal[0]}{USER_TEXT}{literal[0]}"

    return _QUOTED.sub(replace, text)


def _own_arg(arg: Any, debug: bool) -> Any:
    if type(arg) in _FAST or isinstance(arg, _PLAIN):  # before str: a StrEnum is a code
        return arg
    if isinstance(arg, str):
        if debug and ("://" in arg or not _WORD.fullmatch(arg)):
            return USER_TEXT
        return hide_quoted(arg)
    if isinstance(arg, BaseException):  # kept readable: it carries the platform's error code
        return hide_quoted(str(arg))
    return f"[{type(arg).__name__}]"  # a dataclass or container: its repr would carry text


def _library_arg(arg: Any) -> Any:
    # aiosqlite logs each call as a functools.partial: show the SQL, not the parameters.
    if isinstance(arg, partial):
        name = getattr(arg.func, "__name__", "call")
        sql = next((a for a in arg.args if isinstance(a, str)), "")
        return f"{name} {' '.join(sql.split())}".rstrip()
    return arg


def _map_args(record: logging.LogRecord, change: Callable[..., Any], *extra: Any) -> None:
    args = record.args
    if not args:
        return
    if type(args) is tuple:
        record.args = tuple([change(a, *extra) for a in args])
    elif isinstance(args, Mapping):  # log.info("%(x)s", {"x": ...})
        record.args = {k: change(v, *extra) for k, v in args.items()}


def hide_user_text(record: logging.LogRecord) -> None:
    """Rewrite `record` in place so its message carries no user text (see the module doc)."""
    if record.name.partition(".")[0] in _OWN:
        if not isinstance(record.msg, str):  # log.debug(notice)
            record.msg, record.args = f"[{type(record.msg).__name__}]", None
        _map_args(record, _own_arg, record.levelno <= logging.DEBUG)
    else:
        _map_args(record, _library_arg)
        record.msg, record.args = hide_quoted(record.getMessage()), None


class Redactor(logging.Filter):
    """Replaces configured secrets and token-shaped strings in the final message.

    Unless `user_text` is set, it first hides user text (`hide_user_text`).
    """

    def __init__(self, secrets: Sequence[str], *, user_text: bool = False) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]  # noqa: PLR2004 - no tiny matches
        self._user_text = user_text

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _URL_TOKENS.sub(rf"\g<1>{REDACTED}", text)
        return _TOKEN_SHAPES.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._user_text:
            hide_user_text(record)
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.context = _CONTEXT.get() or {}
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "context", {})
        extra = " ".join(f"{k}={v}" for k, v in context.items())
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if extra:
            line += f" [{extra}]"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "context", {}),
        }
        if record.exc_text:
            body["exception"] = record.exc_text
        return json.dumps(body, ensure_ascii=False, default=str)


def configure(
    *,
    level: str | int,
    json_lines: bool,
    secrets: Sequence[str],
    stream: Any = None,
    user_text: bool = False,
) -> logging.Handler:
    """Install one handler on the root logger; returns it (tests remove it again).

    `user_text=True` (LOG_USER_TEXT) lets user text into the lines, for local debugging only.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(Redactor(secrets, user_text=user_text))
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
