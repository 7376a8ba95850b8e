"""The local console: the zero-setup way to try reviewrelay, and the adapter tests can drive.

It implements the same contract as the Slack and Discord adapters: lines in become inbound events
for the dispatcher, and notices out are printed as each platform would show them, with a prefix
saying where: `[#reviews]`, `[DM riley]`, `[reply]`.

    /review ...             as the default person, "sam"
    as NAME: /review ...    as someone else ("admin" is the console's community admin)
    +EMOJI ID / -EMOJI ID   add / remove a reaction on request ID's relay post
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from bot import texts
from bot.dispatcher import Dispatcher
from bot.model import (
    CommandReceived,
    Community,
    InboundEvent,
    Member,
    Notice,
    NoticeKind,
    Platform,
    ReactionChanged,
)
from bot.ports import Clock

COMMUNITY_ID = "local"
CHANNEL_ID = "reviews"
DEFAULT_USER = "sam"
ADMIN_USER = "admin"
COMMUNITY = Community(
    platform=Platform.CONSOLE,
    community_id=COMMUNITY_ID,
    name="console",
    review_channel_id=CHANNEL_ID,
)

_AS = re.compile(r"^as\s+([\w.-]{1,32})\s*:\s*(.*)$", re.IGNORECASE)
_REACTION = re.compile(r"^([+-])\s*:?([^\s:]+):?\s+#?(\d{1,9})$")
_EMOJI_NAMES = {"👀": "eyes", "✅": "white_check_mark", "✔️": "white_check_mark", "🙏": "pray"}
GREETING = (
    "reviewrelay console: type /review help, +eyes ID to react, "
    "or 'as NAME: ...' to act as someone else; Ctrl-D quits."
)
_CHUNK = 65536

Write = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the console's output is stdout


def _block(prefix: str, text: str) -> str:
    """Prefix the first line and indent the rest under it."""
    first, *rest = text.splitlines() or [""]
    pad = " " * (len(prefix) + 1)
    return "\n".join([f"{prefix} {first}", *(pad + line for line in rest)])


class ConsoleSender:
    """Prints notices; a relay post's message id is its request id, so `+eyes 1` finds it."""

    platform = Platform.CONSOLE

    def __init__(self, write: Write = _print) -> None:
        self._write = write

    async def send(self, notice: Notice) -> str | None:
        channel = f"[#{notice.channel_id}]"
        match notice.kind:
            case NoticeKind.RELAY_POST | NoticeKind.POST_UPDATE if notice.request:
                body = texts.relay_post_text(notice.request)
                if notice.mentions and notice.kind is NoticeKind.RELAY_POST:
                    body += "\ncc " + " ".join(f"@{m}" for m in notice.mentions)
                edited = f"[#{notice.channel_id}, edited]"
                prefix = channel if notice.kind is NoticeKind.RELAY_POST else edited
                self._write(_block(prefix, body))
                return str(notice.request.id)
            case NoticeKind.DIRECT:
                self._write(_block(f"[DM {notice.user_id}]", notice.text))
            case NoticeKind.EPHEMERAL:
                self._write(_block(f"[to {notice.user_id} in #{notice.channel_id}]", notice.text))
            case _:
                self._write(_block(channel, notice.text))
        return None

    async def find(self, notice: Notice) -> str | None:
        return None  # what was printed before a crash cannot be looked up: print it again


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """What one typed line means: an event for the dispatcher, or a hint for the person typing."""

    event: InboundEvent | None = None
    hint: str = ""


class ConsoleParser:
    """Turns typed lines into inbound events with unique keys."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._run = uuid.uuid4().hex[:8]  # keys stay unique across runs on one database
        self._counter = itertools.count(1)

    def parse_line(self, line: str) -> ConsoleLine:
        line = line.strip()
        if not line or line.startswith("#"):
            return ConsoleLine()
        user = DEFAULT_USER
        if found := _AS.match(line):
            user, line = found.group(1), found.group(2).strip()
        member = Member(
            platform=Platform.CONSOLE, community_id=COMMUNITY_ID, user_id=user, display_name=user
        )
        key = f"console:{self._run}:{next(self._counter)}"
        now = self._clock.now()
        if reaction := _REACTION.match(line):
            sign, emoji, request_id = reaction.groups()
            return ConsoleLine(
                ReactionChanged(
                    event_key=key,
                    member=member,
                    channel_id=CHANNEL_ID,
                    message_id=request_id,
                    emoji=_EMOJI_NAMES.get(emoji, emoji),
                    added=sign == "+",
                    received_at=now,
                    reply_inline=True,
                )
            )
        command, _, text = line.partition(" ")
        if command.lower() not in ("/review", "review"):
            return ConsoleLine(hint="Type /review help, '+eyes 1' to react, or 'as NAME: ...'.")
        return ConsoleLine(
            CommandReceived(
                event_key=key,
                member=member,
                channel_id=CHANNEL_ID,
                text=text,
                received_at=now,
                is_admin=user == ADMIN_USER,
            )
        )


class DeliversNow(Protocol):
    """What the console needs from the delivery worker: send everything due, now."""

    async def drain(self) -> None: ...


async def stdin_lines(write: Write = _print) -> AsyncIterator[str]:
    """Lines from stdin without blocking the event loop; ends at EOF. A person at a terminal is
    greeted first (a script's output stays exactly its transcript)."""
    if sys.stdin.isatty():
        write(GREETING)
    fd = sys.stdin.fileno()
    decoder = codecs.getincrementaldecoder(sys.stdin.encoding or "utf-8")(errors="replace")
    pending = ""
    while chunk := await _read(fd):
        *lines, pending = (pending + decoder.decode(chunk)).split("\n")
        for line in lines:
            yield line + "\n"
    if pending := pending + decoder.decode(b"", final=True):
        yield pending


async def _read(fd: int) -> bytes:
    """One read of `fd` once the loop sees it readable, so that ^C (a cancel) ends the wait.

    A thread blocked in readline cannot be cancelled, and asyncio.run's exit joins it: ^C hung
    until Enter or EOF.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():  # the selector reports again until the coroutine removes it
            ready.set_result(None)

    try:
        loop.add_reader(fd, on_readable)
    except (OSError, NotImplementedError):
        # A regular file or /dev/null (epoll refuses them) never waits on a person: a thread can
        # read it. NotImplementedError: an event loop without readers (Windows' proactor).
        return await asyncio.to_thread(os.read, fd, _CHUNK)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return os.read(fd, _CHUNK)


async def run_console(
    *,
    dispatcher: Dispatcher,
    deliver: DeliversNow,
    clock: Clock,
    lines: AsyncIterator[str],
    write: Write = _print,
) -> None:
    """Read lines until EOF, handling each and printing what every platform would show."""
    parser = ConsoleParser(clock)
    await deliver.drain()
    async for raw in lines:
        parsed = parser.parse_line(raw)
        if parsed.hint:
            write(_block("[console]", parsed.hint))
        if parsed.event is None:
            continue
        reply = await dispatcher.handle(parsed.event)
        if reply:
            write(_block("[reply]", reply.text))
        elif isinstance(parsed.event, ReactionChanged):
            write(_block("[console]", "Nothing happened: no relay post or emoji it reacts to."))
        await deliver.drain()
