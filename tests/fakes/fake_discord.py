"""A protocol-faithful fake Discord (REST API v10 + gateway) for tests that drive real discord.py.

Owns: the aiohttp server on 127.0.0.1 (ephemeral port), the fake's world state (guilds, users,
messages, reactions, DM channels, synced application commands, interactions), the websocket
gateway (HELLO/IDENTIFY/READY/GUILD_CREATE, heartbeats, RESUME with replay, INVALID_SESSION,
RECONNECT, op 8 member chunking), fault injection, and the request log tests assert on.
JSON shapes and the ``Fake*`` world declarations live in ``discord_payloads.py``.

Usage::

    guild = FakeGuild.build("Reviewers", channels=["reviews"], members=["alice", "bob"])
    async with FakeDiscord(token="test-token", guilds=[guild]) as fake:
        with point_discord_py_at(fake):
            client = discord.Client(intents=..., guild_ready_timeout=0.05)
            ...
            iid = await fake.send_slash_command(guild.id, guild.channel("reviews").id, "alice",
                                                name="review", subcommand="ask",
                                                options={"url": "https://x"})
            callback = await fake.wait_for_interaction_response(iid)

discord.py reads two class attributes: ``discord.http.Route.BASE`` must be the *str*
``fake.api_base`` (``http://127.0.0.1:<port>/api/v10``, no trailing slash) and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` must be a *yarl.URL* of ``fake.gateway_url``
(``ws://127.0.0.1:<port>/gateway``, no query: discord.py replaces the query with
``v=10&encoding=json&compress=zlib-stream``). Resumes use READY's ``resume_gateway_url``, which
is ``fake.gateway_url`` too.

Behaviour worth knowing: gateway events are filtered by the IDENTIFY intents like Discord does
(e.g. no MESSAGE_CREATE without GUILD_MESSAGES, content blanked without MESSAGE_CONTENT, full
member lists in GUILD_CREATE only with GUILD_PRESENCES); bot actions over REST emit the matching
MESSAGE_*/MESSAGE_REACTION_* dispatches; interactions must be acknowledged within
``interaction_ack_timeout`` (3 s) or the callback gets 404 Unknown interaction (10062).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fnmatch
import json
import re
import secrets
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from . import discord_payloads as p
from .answering import Answering
from .discord_payloads import JSON, FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser

__all__ = [
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "FaultRule",
    "InteractionCallback",
    "RecordedRequest",
    "point_discord_py_at",
    "snowflake",
]

snowflake = p.snowflake
T = TypeVar("T")
RequestMatch = str | Callable[["RecordedRequest"], bool]
_API_PREFIX = re.compile(r"^/api/v(?:9|10)(?=/)")
_GATEWAY_TRACE = ['["fake-discord-gateway",{"micros":0}]']
_INTERACTION_TOKEN_TTL = 15 * 60


@contextlib.contextmanager
def point_discord_py_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake`` for the ``with`` body.

    Equivalent pytest form::

        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                            yarl.URL(fake.gateway_url))
    """
    import discord.gateway
    import discord.http

    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py compares the header verbatim and treats anything
    # else (e.g. aiohttp's "; charset=utf-8") as a plain-text body.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", "Via": "1.1 google", **(headers or {})},
    )


def _no_content() -> web.Response:
    return web.Response(status=204, headers={"Via": "1.1 google"})


def _glob_match(match: str, method: str, path: str) -> bool:
    want_method, _, want_path = match.partition(" ") if " " in match else ("*", "", match)
    return want_method.upper() in ("*", method) and fnmatch.fnmatchcase(path, want_path)


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One REST hit. ``path`` is percent-decoded and relative to ``/api/v10``."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    files: list[str] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    at: float = field(default_factory=time.monotonic)
    reset: bool = False  # the fake cut the connection instead of answering (see FaultRule)

    def matches(self, match: RequestMatch) -> bool:
        return match(self) if callable(match) else _glob_match(match, self.method, self.path)


@dataclass
class InteractionCallback:
    interaction_id: str
    type: int
    data: JSON | None
    with_response: bool
    message_id: str | None = None


@dataclass
class FaultRule:
    """Answer the next ``remaining`` matching requests with ``status`` (after ``delay`` s).

    ``status=None`` only delays and then serves the request normally. ``reset`` cuts the TCP
    connection instead of answering (a connection reset): ``"before"`` the request is handled,
    or ``"after"`` it (Discord did the work; the answer is lost).
    """

    method: str
    pattern: str | re.Pattern[str]
    status: int | None
    remaining: int
    retry_after: float = 0.05
    global_: bool = False
    delay: float = 0.0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: str | None = None  # "before" | "after"

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(path) is not None
        return fnmatch.fnmatchcase(path, self.pattern)

    def response(self) -> web.Response:
        assert self.status is not None
        if self.status == 429:
            return self._rate_limited()
        if self.body is not None:
            if isinstance(self.body, str):
                return web.Response(text=self.body, status=self.status, headers=self.headers)
            return _json(self.body, self.status, self.headers)
        if self.status in (502, 504):
            # Cloudflare answers these with HTML, which discord.py must tolerate as text.
            html = (
                f"<html><head><title>{self.status}</title></head><body>{self.status}</body></html>"
            )
            return web.Response(
                body=html.encode(),
                status=self.status,
                headers={"Content-Type": "text/html", **self.headers},
            )
        default = p.DEFAULT_ERROR_BODIES.get(self.status, p.error_body(f"{self.status}: Error"))
        return _json(default, self.status, self.headers)

    def _rate_limited(self) -> web.Response:
        body = self.body or p.rate_limited_body(self.retry_after, self.global_)
        bucket = "fakebucket" + format(abs(hash(str(self.pattern))), "x")[:8]
        headers = p.rate_limit_headers(self.retry_after, self.global_, bucket)
        return _json(body, 429, {**headers, **self.headers})


@dataclass
class _StoredMessage:
    payload: JSON
    channel_id: str
    guild_id: str | None
    ephemeral: bool = False
    nonce: str | None = None
    interaction_token: str | None = None


@dataclass
class _Interaction:
    payload: JSON
    created: float
    guild_id: str | None
    channel_id: str
    invoker: FakeUser
    component_message_id: str | None = None
    callback: InteractionCallback | None = None
    original_message_id: str | None = None


# --------------------------------------------------------------------------- gateway plumbing


@dataclass(eq=False)
class _Session:
    session_id: str
    intents: int
    identify: JSON
    shard: tuple[int, int] | None
    seq: int = 0
    history: list[JSON] = field(default_factory=list)
    conn: _Connection | None = None
    invalidated: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    query: dict[str, str]
    compressor: Any = None  # zlib.compressobj when the client asked for zlib-stream
    session: _Session | None = None
    closed_by_server: bool = False
    sent: list[JSON] = field(default_factory=list)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: JSON) -> bool:
        text = json.dumps(frame, separators=(",", ":"))
        async with self.send_lock:
            if self.ws.closed:
                return False
            try:
                if self.compressor is not None:
                    # zlib-stream: one shared deflate context, each frame ends in Z_SYNC_FLUSH.
                    raw = self.compressor.compress(text.encode()) + self.compressor.flush(
                        zlib.Z_SYNC_FLUSH
                    )
                    await self.ws.send_bytes(raw)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        self.sent.append(frame)
        return True

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_by_server = True
        await self.ws.close(code=code, message=reason.encode())


@dataclass
class _Call:
    request: web.Request
    params: dict[str, str]
    body: Any
    files: list[tuple[str, str, int, str]]
    record: RecordedRequest


Handler = Callable[[_Call], Awaitable[web.Response]]


class FakeDiscord:
    """Fake Discord server; use as ``async with FakeDiscord(...) as fake``."""

    def __init__(
        self,
        *,
        token: str = "test-token",  # noqa: S107 -- a fake server's fixed test credential
        application_id: str | None = None,
        guilds: Iterable[FakeGuild] = (),
        bot_user: FakeUser | None = None,
        users: Iterable[FakeUser] = (),
        bot_permissions: int = p.DEFAULT_BOT_PERMISSIONS,
        application_flags: int = 0,
        allowed_intents: int | None = None,
        heartbeat_interval_ms: int = 41250,
        interaction_ack_timeout: float | None = 3.0,
        gateway_compression: bool = True,
    ) -> None:
        self.token = token
        self.application_id = application_id or snowflake()
        # A bot user's id equals its application's id on Discord.
        self.bot = bot_user or FakeUser(username="reviewrelay", id=self.application_id, bot=True)
        self.owner = FakeUser(username="app-owner")
        self.application_flags = application_flags
        self.allowed_intents = allowed_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_ack_timeout = interaction_ack_timeout
        self.gateway_compression = gateway_compression
        self.ack_heartbeats = True
        self.bot_permissions = bot_permissions
        self.guilds: list[FakeGuild] = []
        self._users: dict[str, FakeUser] = {self.bot.id: self.bot, self.owner.id: self.owner}
        for user in users:
            self._users[user.id] = user
        for guild in guilds:
            self.add_guild(guild)

        self.requests: list[RecordedRequest] = []
        self.interaction_responses: dict[str, InteractionCallback] = {}
        self.identifies: list[JSON] = []
        self.resumes: list[JSON] = []
        self.heartbeats = 0
        self.gateway_connections: list[dict[str, str]] = []
        self.gateway_received: list[JSON] = []
        self.deleted_message_ids: list[str] = []
        self.modals: dict[str, JSON] = {}
        self.internal_errors: list[Exception] = []
        # Test controls (see `replay_on_resume`, `fault_policy`, `nonce_ttl`).
        self._replay_after: int | None = None
        self.fault_policy: Callable[[str, str], FaultRule | None] | None = None
        self.nonce_ttl: float | None = None  # seconds; None: a nonce is remembered forever
        self.nonce_clock: Callable[[], float] = time.monotonic
        self._nonce_at: dict[tuple[str, str, str], float] = {}

        self._messages: dict[str, _StoredMessage] = {}
        self._channel_order: dict[str, list[str]] = {}
        self._nonces: dict[tuple[str, str, str], str] = {}
        self._reactions: dict[tuple[str, str], dict[str, dict[str, bool]]] = {}
        self._dm_by_user: dict[str, str] = {}
        self._dm_recipient: dict[str, str] = {}
        self._commands: dict[str | None, list[JSON]] = {}
        self._command_puts: dict[str | None, int] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._faults: list[FaultRule] = []
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Event()
        self._answering = Answering()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._install_routes()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/gateway/", self._gateway_handler)
        app.router.add_route("*", "/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.close(1001, "fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE`` (a str, no trailing slash)."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """``yarl.URL(...)`` of it goes in ``DEFAULT_GATEWAY``; also READY's resume URL."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ world

    def add_guild(self, guild: FakeGuild) -> FakeGuild:
        """Register a guild; adds the bot's managed role and member to it (mutates ``guild``)."""
        if guild.owner_id is None:
            guild.owner_id = self.owner.id
        if guild.find_member(self.bot.id) is None:
            bot_role = FakeRole(
                name=self.bot.username,
                permissions=self.bot_permissions,
                managed=True,
                tags={"bot_id": self.bot.id},
            )
            guild.roles.append(bot_role)
            guild.members.append(FakeMember(user=self.bot, roles=[bot_role.id]))
        for member in guild.members:
            self._users.setdefault(member.user.id, member.user)
        self.guilds.append(guild)
        return guild

    def add_user(self, user: FakeUser) -> FakeUser:
        self._users[user.id] = user
        return user

    def guild(self, guild_id: str | int) -> FakeGuild:
        for guild in self.guilds:
            if guild.id == str(guild_id):
                return guild
        raise KeyError(guild_id)

    def user(self, user_id: str | int) -> FakeUser:
        return self._users[str(user_id)]

    def _roles(self, guild: FakeGuild) -> list[FakeRole]:
        return [p.everyone_role(guild), *(r for r in guild.roles if r.id != guild.id)]

    def _find_channel(self, channel_id: str) -> tuple[FakeGuild | None, FakeChannel | None]:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return guild, channel
        return None, None

    def _channel_exists(self, channel_id: str) -> bool:
        return channel_id in self._dm_recipient or self._find_channel(channel_id)[1] is not None

    def _ensure_dm(self, user: FakeUser) -> str:
        if user.id not in self._dm_by_user:
            channel_id = snowflake()
            self._dm_by_user[user.id] = channel_id
            self._dm_recipient[channel_id] = user.id
        return self._dm_by_user[user.id]

    def _user_from(self, value: str | int | FakeUser | FakeMember) -> FakeUser:
        if isinstance(value, FakeMember):
            return value.user
        if isinstance(value, FakeUser):
            self._users.setdefault(value.id, value)
            return value
        key = str(value)
        if key in self._users:
            return self._users[key]
        for user in self._users.values():
            if user.username == key:
                return user
        if key.isdigit():
            # Unknown ids get a placeholder so reactions from "strangers" still work.
            return self.add_user(FakeUser(username=f"user-{key[-6:]}", id=key))
        raise KeyError(value)

    def _member_from(
        self, guild: FakeGuild, value: str | int | FakeUser | FakeMember
    ) -> FakeMember:
        user = self._user_from(value)
        member = guild.find_member(user.id)
        if member is None:
            raise KeyError(f"user {user.id} is not a member of guild {guild.id}")
        return member

    # ------------------------------------------------------------------ inspection

    def messages(self, channel_id: str | int, *, include_ephemeral: bool = False) -> list[JSON]:
        """Current message objects in ``channel_id`` (oldest first), after edits and deletes."""
        out = []
        for message_id in self._channel_order.get(str(channel_id), []):
            stored = self._messages.get(message_id)
            if stored is not None and (include_ephemeral or not stored.ephemeral):
                out.append(self._render(stored))
        return out

    def message(self, message_id: str | int) -> JSON | None:
        stored = self._messages.get(str(message_id))
        return None if stored is None else self._render(stored)

    def interaction_message(self, interaction_id: str | int) -> JSON | None:
        """The original response message of an interaction (for type 4/5, or the component's)."""
        record = self._interactions.get(str(interaction_id))
        if record is None or record.original_message_id is None:
            return None
        return self.message(record.original_message_id)

    def synced_commands(self, guild_id: str | int | None = None) -> list[JSON]:
        return copy.deepcopy(self._commands.get(None if guild_id is None else str(guild_id), []))

    def command_sync_count(self, guild_id: str | int | None = None) -> int:
        """Number of bulk PUTs to the global (``None``) or a guild's command list."""
        return self._command_puts.get(None if guild_id is None else str(guild_id), 0)

    def dm_channel_for(self, user_id: str | int) -> str | None:
        return self._dm_by_user.get(str(user_id))

    def reaction_users(self, channel_id: str | int, message_id: str | int, emoji: str) -> list[str]:
        return list(self._reactions.get((str(channel_id), str(message_id)), {}).get(emoji, {}))

    def requests_matching(self, match: RequestMatch) -> list[RecordedRequest]:
        """``match`` is ``"METHOD /glob/path"`` / ``"/glob/path"`` (fnmatch) or a predicate."""
        return [r for r in self.requests if r.status is not None and r.matches(match)]

    def hits(self, match: RequestMatch) -> int:
        return len(self.requests_matching(match))

    @property
    def identify_count(self) -> int:
        return len(self.identifies)

    @property
    def resume_count(self) -> int:
        return len(self.resumes)

    @property
    def intents(self) -> int | None:
        """Intents of the most recent IDENTIFY."""
        return int(self.identifies[-1].get("intents", 0)) if self.identifies else None

    @property
    def connected(self) -> bool:
        return any(s.conn is not None for s in self._sessions.values())

    async def settled(self) -> None:
        """Wait until every REST request received is answered, late ones included (see
        `tests.fakes.answering`)."""
        await self._answering.settled()

    async def wait_for(
        self,
        match: RequestMatch,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 -- the documented test-facing API
        count: int = 1,
    ) -> RecordedRequest:
        """Wait until ``count`` answered requests match (earlier ones count); return the last."""

        def check() -> RecordedRequest | None:
            found = self.requests_matching(match)
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(check, timeout, f"request {match!r} x{count}")

    async def wait_for_gateway(
        self,
        match: int | Callable[[JSON], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        count: int = 1,
    ) -> JSON:
        """Wait for a client->gateway frame by opcode (e.g. 6 for RESUME) or predicate."""

        def matches(frame: JSON) -> bool:
            return match(frame) if callable(match) else frame.get("op") == match

        def check() -> JSON | None:
            found = [f for f in self.gateway_received if matches(f)]
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(check, timeout, f"gateway frame {match!r} x{count}")

    async def wait_for_interaction_response(
        self,
        interaction_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> InteractionCallback:
        return await self._wait_until(
            lambda: self.interaction_responses.get(interaction_id),
            timeout,
            f"callback for {interaction_id}",
        )

    async def wait_for_interaction_reply(
        self,
        interaction_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> JSON:
        """The message that answers an interaction: the type 4 response, or (after a type 5
        defer) the first follow-up or edit that gave it content; ephemeral ones included."""

        def check() -> JSON | None:
            record = self._interactions.get(str(interaction_id))
            if record is None or record.callback is None:
                return None
            token = record.payload["token"]
            for stored in self._messages.values():
                flags = int(stored.payload.get("flags") or 0)
                answered = stored.payload.get("content") or stored.payload.get("embeds")
                if stored.interaction_token == token and not flags & p.FLAG_LOADING and answered:
                    return self._render(stored)
            return None

        return await self._wait_until(check, timeout, f"an answer to {interaction_id}")

    async def wait_until_connected(self, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self._wait_until(
            lambda: True if self.connected else None, timeout, "a live gateway session"
        )

    async def _wait_until(self, check: Callable[[], T | None], limit: float, what: str) -> T:
        try:
            async with asyncio.timeout(limit):
                while True:
                    event = self._changed
                    result = check()
                    if result is not None:
                        return result
                    await event.wait()
        except TimeoutError:
            recent = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-10:]]
            raise TimeoutError(
                f"timed out after {limit}s waiting for {what}; last requests: {recent}"
            ) from None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ fault injection

    async def post_as(self, channel_id: str | int, author: p.FakeUser, body: JSON) -> JSON:
        """`author` (a person, or another app's bot) posts `body` in a channel; MESSAGE_CREATE
        goes out as for any message. Returns the stored message."""
        stored = await self._store_message(str(channel_id), author, body)
        return copy.deepcopy(stored.payload)

    def fail_next(
        self,
        method: str,
        path_pattern: str | re.Pattern[str],
        status: int | None = 429,
        *,
        retry_after: float = 0.05,
        global_: bool = False,
        times: int = 1,
        delay: float = 0.0,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> FaultRule:
        """Make the next ``times`` matching requests fail (or, with ``status=None``, be slow).

        ``path_pattern`` is an fnmatch glob over the decoded path after ``/api/v10`` (``*``
        crosses ``/``), or a compiled regex used with ``fullmatch``; ``method`` may be ``"*"``.
        Defaults: 429 -> Discord's rate-limit body + ``Via``/``Retry-After``/``X-RateLimit-*``;
        403 -> Missing Permissions (50013); 404 -> Unknown Channel (10003); 500/503 -> JSON;
        502/504 -> Cloudflare-style HTML. ``body`` overrides the JSON (or text) body.
        """
        rule = FaultRule(
            method=method.upper(),
            pattern=path_pattern,
            status=status,
            remaining=times,
            retry_after=retry_after,
            global_=global_,
            delay=delay,
            body=body,
            headers=dict(headers or {}),
        )
        self._faults.append(rule)
        return rule

    def slow_next(
        self, method: str, path_pattern: str | re.Pattern[str], delay: float, *, times: int = 1
    ) -> FaultRule:
        return self.fail_next(method, path_pattern, None, delay=delay, times=times)

    def _take_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self._faults:
            if rule.remaining > 0 and rule.matches(method, path):
                rule.remaining -= 1
                return rule
        if self.fault_policy is not None:
            # Drawn per request by the test (e.g. a seeded share of failures), after armed rules.
            return self.fault_policy(method, path)
        return None

    def replay_on_resume(self, after_seq: int) -> None:
        """On the next RESUME, replay every event after ``after_seq`` even if the client saw it.

        Discord replays from the sequence number the client sends; a client whose last
        acknowledged position lags what it processed gets those events a second time, with the
        same sequence numbers. This makes the next RESUME do exactly that.
        """
        self._replay_after = after_seq

    # ------------------------------------------------------------------ REST plumbing

    def _install_routes(self) -> None:
        table: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/users/{user_id}", self._get_user, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/guilds/{guild_id}", self._get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", self._get_guild_roles, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member, True),
            ("GET", "/channels/{channel_id}", self._get_channel, True),
            ("POST", "/channels/{channel_id}/typing", self._typing, True),
            ("GET", "/channels/{channel_id}/messages", self._list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self._create_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message, True),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions",
                self._clear_reactions,
                True,
            ),
            (
                "GET",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
                self._reaction_users,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
                self._clear_reactions,
                True,
            ),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._add_own_reaction,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
                self._remove_reaction_rest,
                True,
            ),
            ("GET", "/applications/{app_id}/commands", self._list_commands, True),
            ("PUT", "/applications/{app_id}/commands", self._put_commands, True),
            ("POST", "/applications/{app_id}/commands", self._upsert_command, True),
            ("GET", "/applications/{app_id}/commands/{command_id}", self._get_command, True),
            ("DELETE", "/applications/{app_id}/commands/{command_id}", self._delete_command, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._list_commands, True),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands, True),
            (
                "POST",
                "/applications/{app_id}/guilds/{guild_id}/commands",
                self._upsert_command,
                True,
            ),
            (
                "GET",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                self._get_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                self._delete_command,
                True,
            ),
            # Interaction callbacks and webhook follow-ups authenticate by the token in the path;
            # discord.py sends no Authorization header on them.
            (
                "POST",
                "/interactions/{interaction_id}/{token}/callback",
                self._interaction_callback,
                False,
            ),
            ("POST", "/webhooks/{app_id}/{token}", self._followup, False),
            (
                "GET",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{app_id}/{token}/messages/{message_id}",
                self._webhook_message,
                False,
            ),
        ]
        for method, template, handler, auth in table:
            regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")
            self._routes.append((method, regex, handler, auth))

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[str, str, int, str]]]:
        files: list[tuple[str, str, int, str]] = []
        if request.content_type.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                raw = await part.read()
                if part.name == "payload_json":
                    body = json.loads(raw)
                elif part.filename is not None:
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    files.append((part.name or "", part.filename, len(raw), ctype))
            return body, files
        raw_text = await request.text()
        if not raw_text:
            return None, files
        try:
            return json.loads(raw_text), files
        except ValueError:
            return raw_text, files

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        prefix = _API_PREFIX.match(raw_path)
        rel_raw = raw_path[prefix.end() :] if prefix else raw_path
        body, files = await self._read_body(request)
        record = RecordedRequest(
            method=request.method,
            path=unquote(rel_raw),
            query=dict(request.query),
            json=body,
            headers=dict(request.headers),
            files=[f[1] for f in files],
        )
        self.requests.append(record)
        try:
            with self._answering.call():
                response = await self._respond(
                    request,
                    under_api=prefix is not None,
                    rel_raw=rel_raw,
                    body=body,
                    files=files,
                    record=record,
                )
        except Exception as exc:  # a bug in the fake must fail the test, not hang it
            self.internal_errors.append(exc)
            # 599: discord.py raises DiscordServerError at once instead of retrying like on 500.
            response = _json(p.error_body(f"fake discord internal error: {exc!r}"), 599)
        record.status = response.status
        self._notify()
        return response

    async def _respond(
        self,
        request: web.Request,
        *,
        under_api: bool,
        rel_raw: str,
        body: Any,
        files: list[tuple[str, str, int, str]],
        record: RecordedRequest,
    ) -> web.Response:
        rule = self._take_fault(request.method, record.path)
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.reset is not None:
                response = _no_content()
                if rule.reset == "after":
                    response = await self._route(
                        request,
                        under_api=under_api,
                        rel_raw=rel_raw,
                        body=body,
                        files=files,
                        record=record,
                    )
                record.reset = True
                if request.transport is not None:
                    request.transport.abort()  # no answer at all: a connection reset
                return response
            if rule.status is not None:
                response = rule.response()
                record.response = _response_body(response)
                return response
        return await self._route(
            request, under_api=under_api, rel_raw=rel_raw, body=body, files=files, record=record
        )

    async def _route(
        self,
        request: web.Request,
        *,
        under_api: bool,
        rel_raw: str,
        body: Any,
        files: list[tuple[str, str, int, str]],
        record: RecordedRequest,
    ) -> web.Response:
        if not under_api:
            return self._answer(record, p.NOT_FOUND, 404)
        path_known = False
        for method, regex, handler, needs_auth in self._routes:
            matched = regex.match(rel_raw)
            if matched is None:
                continue
            path_known = True
            if method != request.method:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                return self._answer(record, p.UNAUTHORIZED, 401)
            params = {k: unquote(v) for k, v in matched.groupdict().items()}
            response = await handler(_Call(request, params, body, files, record))
            record.response = _response_body(response)
            return response
        if path_known:
            return self._answer(record, p.error_body("405: Method Not Allowed"), 405)
        return self._answer(record, p.NOT_FOUND, 404)

    def _answer(self, record: RecordedRequest, data: Any, status: int = 200) -> web.Response:
        record.response = data
        return _json(data, status)

    # ------------------------------------------------------------------ REST: users/guilds/channels

    async def _get_me(self, call: _Call) -> web.Response:
        return _json(p.current_user_payload(self.bot))

    async def _get_user(self, call: _Call) -> web.Response:
        user = self._users.get(call.params["user_id"])
        return _json(p.user_payload(user)) if user else _json(p.UNKNOWN_USER, 404)

    async def _get_application(self, call: _Call) -> web.Response:
        return _json(
            p.application_payload(self.application_id, self.bot, self.owner, self.application_flags)
        )

    async def _get_gateway(self, call: _Call) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, call: _Call) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _create_dm(self, call: _Call) -> web.Response:
        recipient_id = str((call.body or {}).get("recipient_id", ""))
        user = self._users.get(recipient_id)
        if user is None:
            return _json(
                p.field_error("recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake."), 400
            )
        channel_id = self._ensure_dm(user)
        return _json(p.dm_channel_payload(channel_id, user, self._last_message_id(channel_id)))

    def _guild_or_none(self, guild_id: str) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    async def _get_guild(self, call: _Call) -> web.Response:
        guild = self._guild_or_none(call.params["guild_id"])
        if guild is None:
            return _json(p.UNKNOWN_GUILD, 404)
        return _json(p.guild_payload(guild, self._roles(guild)))

    async def _get_guild_channels(self, call: _Call) -> web.Response:
        guild = self._guild_or_none(call.params["guild_id"])
        if guild is None:
            return _json(p.UNKNOWN_GUILD, 404)
        return _json([p.channel_payload(guild, c) for c in guild.channels])

    async def _get_guild_roles(self, call: _Call) -> web.Response:
        guild = self._guild_or_none(call.params["guild_id"])
        if guild is None:
            return _json(p.UNKNOWN_GUILD, 404)
        return _json([p.role_payload(r) for r in self._roles(guild)])

    async def _get_member(self, call: _Call) -> web.Response:
        guild = self._guild_or_none(call.params["guild_id"])
        if guild is None:
            return _json(p.UNKNOWN_GUILD, 404)
        member = guild.find_member(call.params["user_id"])
        return _json(p.member_payload(guild, member)) if member else _json(p.UNKNOWN_MEMBER, 404)

    async def _get_channel(self, call: _Call) -> web.Response:
        channel_id = call.params["channel_id"]
        if channel_id in self._dm_recipient:
            user = self._users[self._dm_recipient[channel_id]]
            return _json(p.dm_channel_payload(channel_id, user, self._last_message_id(channel_id)))
        guild, channel = self._find_channel(channel_id)
        if guild is None or channel is None:
            return _json(p.UNKNOWN_CHANNEL, 404)
        data = p.channel_payload(guild, channel)
        data["last_message_id"] = self._last_message_id(channel_id)
        return _json(data)

    async def _typing(self, call: _Call) -> web.Response:
        if not self._channel_exists(call.params["channel_id"]):
            return _json(p.UNKNOWN_CHANNEL, 404)
        return _no_content()

    # ------------------------------------------------------------------ REST: messages

    def _last_message_id(self, channel_id: str) -> str | None:
        visible = [
            m for m in self._channel_order.get(channel_id, []) if not self._messages[m].ephemeral
        ]
        return visible[-1] if visible else None

    def _render(self, stored: _StoredMessage) -> JSON:
        data = copy.deepcopy(stored.payload)
        channel_id, message_id = stored.channel_id, data["id"]
        reactions = self._reactions.get((channel_id, message_id), {})
        if reactions:
            data["reactions"] = p.reactions_payload(reactions, self.bot.id)
        return data

    def _gateway_message(self, stored: _StoredMessage) -> JSON:
        """A message as gateway events carry it: plus ``guild_id`` and a partial ``member``."""
        data = self._render(stored)
        if stored.guild_id is not None:
            data["guild_id"] = stored.guild_id
            member = self.guild(stored.guild_id).find_member(data["author"]["id"])
            if member is not None:
                data["member"] = p.member_payload(
                    self.guild(stored.guild_id), member, with_user=False
                )
        return data

    def _validate_message_body(self, body: Any, *, partial: bool = False) -> JSON | None:
        if not isinstance(body, dict):
            return p.field_error("_root", "MODEL_TYPE_CONVERT", "Must be an object.")
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            return p.field_error("content", "BASE_TYPE_STRING", "Must be a string.")
        if content is not None and len(content) > 2000:
            return p.field_error(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if len(body.get("embeds") or []) > 10:
            return p.field_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return p.field_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if partial:
            return None
        has_any = any(
            body.get(k)
            for k in ("content", "embeds", "components", "attachments", "sticker_ids", "poll")
        )
        return None if has_any else p.EMPTY_MESSAGE

    def _attachments(self, body: JSON, files: list[tuple[str, str, int, str]]) -> list[JSON]:
        described = [
            a for a in body.get("attachments") or [] if isinstance(a, dict) and "url" not in a
        ]
        out = []
        for index, (_, filename, size, ctype) in enumerate(files):
            attachment_id = snowflake()
            out.append(
                {
                    "id": attachment_id,
                    "filename": filename,
                    "size": size,
                    "content_type": ctype,
                    "url": f"https://cdn.discordapp.com/attachments/0/{attachment_id}/{filename}",
                    "proxy_url": f"https://media.discordapp.net/attachments/0/{attachment_id}/{filename}",
                    "description": described[index].get("description")
                    if index < len(described)
                    else None,
                }
            )
        return out

    async def _store_message(
        self,
        channel_id: str,
        author: FakeUser,
        body: JSON,
        *,
        files: list[tuple[str, str, int, str]] | None = None,
        message_type: int = p.MESSAGE_DEFAULT,
        extra: JSON | None = None,
        interaction_token: str | None = None,
        dispatch: bool = True,
    ) -> _StoredMessage:
        guild, _ = self._find_channel(channel_id)
        body = dict(body)
        body["attachments"] = self._attachments(body, files or [])
        message_id = snowflake()
        payload = p.message_payload(
            message_id=message_id,
            channel_id=channel_id,
            author=author,
            body=body,
            message_type=message_type,
            known_users=self._users,
            extra=extra,
        )
        stored = _StoredMessage(
            payload=payload,
            channel_id=channel_id,
            guild_id=guild.id if guild else None,
            ephemeral=bool(payload["flags"] & p.FLAG_EPHEMERAL),
            nonce=None if body.get("nonce") is None else str(body["nonce"]),
            interaction_token=interaction_token,
        )
        self._messages[message_id] = stored
        self._channel_order.setdefault(channel_id, []).append(message_id)
        if dispatch and not stored.ephemeral:
            await self.dispatch("MESSAGE_CREATE", self._gateway_message(stored))
        return stored

    async def _apply_edit(
        self, stored: _StoredMessage, body: JSON, files: list[tuple[str, str, int, str]]
    ) -> None:
        payload = stored.payload
        for key in ("content", "embeds", "components"):
            if key in body:
                payload[key] = (
                    copy.deepcopy(body[key])
                    if body[key] is not None
                    else ([] if key != "content" else "")
                )
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS (1<<2) is user-editable; keep the rest (e.g. EPHEMERAL).
            payload["flags"] = (payload["flags"] & ~(1 << 2)) | (int(body["flags"]) & (1 << 2))
        if "attachments" in body or files:
            kept = {
                str(a.get("id"))
                for a in body.get("attachments") or []
                if "filename" not in a or "url" in a
            }
            payload["attachments"] = [a for a in payload["attachments"] if a["id"] in kept]
            payload["attachments"] += self._attachments(body, files)
        payload["flags"] &= ~p.FLAG_LOADING
        payload["edited_timestamp"] = p.iso_now()
        if not stored.ephemeral:
            await self.dispatch("MESSAGE_UPDATE", self._gateway_message(stored))

    async def _list_messages(self, call: _Call) -> web.Response:
        channel_id = call.params["channel_id"]
        if not self._channel_exists(channel_id):
            return _json(p.UNKNOWN_CHANNEL, 404)
        query = call.request.query
        limit = max(1, min(100, int(query.get("limit", "50"))))
        items = self.messages(channel_id)
        if "before" in query:
            items = [m for m in items if int(m["id"]) < int(query["before"])]
        if "after" in query:
            items = [m for m in items if int(m["id"]) > int(query["after"])][:limit]
        return _json(list(reversed(items))[:limit])

    async def _create_message(self, call: _Call) -> web.Response:
        channel_id = call.params["channel_id"]
        _, channel = self._find_channel(channel_id)
        if channel is None and channel_id not in self._dm_recipient:
            return _json(p.UNKNOWN_CHANNEL, 404)
        if channel is not None and channel.type == p.CHANNEL_GUILD_CATEGORY:
            return _json(p.error_body("Cannot send messages in a non-text channel", 50008), 400)
        body = call.body if isinstance(call.body, dict) else {}
        if call.files:
            body = {**body, "attachments": body.get("attachments") or [{}] * len(call.files)}
        error = self._validate_message_body(body)
        if error is not None:
            return _json(error, 400)
        nonce = body.get("nonce")
        key = (channel_id, self.bot.id, str(nonce))
        if nonce is not None and body.get("enforce_nonce"):
            # Discord dedupes by nonce "in the past few minutes" (nonce_ttl; None: forever):
            # the earlier message by the same author comes back, and no new one is created.
            existing = self._messages.get(self._nonces.get(key, ""))
            fresh = self.nonce_ttl is None or (
                self.nonce_clock() - self._nonce_at.get(key, 0.0) <= self.nonce_ttl
            )
            if existing is not None and fresh:
                return _json(self._render(existing))
        stored = await self._store_message(channel_id, self.bot, body, files=call.files)
        if nonce is not None and body.get("enforce_nonce"):
            self._nonces[key] = stored.payload["id"]
            self._nonce_at[key] = self.nonce_clock()
        return _json(self._render(stored))

    def _message_in(self, channel_id: str, message_id: str) -> _StoredMessage | None:
        stored = self._messages.get(message_id)
        if stored is None or stored.channel_id != channel_id or stored.ephemeral:
            return None
        return stored

    async def _get_message(self, call: _Call) -> web.Response:
        if not self._channel_exists(call.params["channel_id"]):
            return _json(p.UNKNOWN_CHANNEL, 404)
        stored = self._message_in(call.params["channel_id"], call.params["message_id"])
        return _json(self._render(stored)) if stored else _json(p.UNKNOWN_MESSAGE, 404)

    async def _edit_message(self, call: _Call) -> web.Response:
        if not self._channel_exists(call.params["channel_id"]):
            return _json(p.UNKNOWN_CHANNEL, 404)
        stored = self._message_in(call.params["channel_id"], call.params["message_id"])
        if stored is None:
            return _json(p.UNKNOWN_MESSAGE, 404)
        body = call.body if isinstance(call.body, dict) else {}
        if stored.payload["author"]["id"] != self.bot.id and set(body) - {"flags"}:
            return _json(p.CANNOT_EDIT_OTHERS, 403)
        error = self._validate_message_body(body, partial=True)
        if error is not None:
            return _json(error, 400)
        await self._apply_edit(stored, body, call.files)
        return _json(self._render(stored))

    async def _delete_message(self, call: _Call) -> web.Response:
        channel_id = call.params["channel_id"]
        if not self._channel_exists(channel_id):
            return _json(p.UNKNOWN_CHANNEL, 404)
        stored = self._message_in(channel_id, call.params["message_id"])
        if stored is None:
            return _json(p.UNKNOWN_MESSAGE, 404)
        if stored.payload["author"]["id"] != self.bot.id and stored.guild_id is not None:
            guild = self.guild(stored.guild_id)
            bot_member = guild.find_member(self.bot.id)
            if bot_member is None or not guild.permissions_for(bot_member) & p.PERM_MANAGE_MESSAGES:
                return _json(p.MISSING_PERMISSIONS, 403)
        await self._delete_stored(stored)
        return _no_content()

    async def _delete_stored(self, stored: _StoredMessage) -> None:
        message_id = stored.payload["id"]
        self._messages.pop(message_id, None)
        self._channel_order[stored.channel_id].remove(message_id)
        self.deleted_message_ids.append(message_id)
        if not stored.ephemeral:
            data: JSON = {"id": message_id, "channel_id": stored.channel_id}
            if stored.guild_id:
                data["guild_id"] = stored.guild_id
            await self.dispatch("MESSAGE_DELETE", data)

    # ------------------------------------------------------------------ REST: reactions

    def _reaction_target(self, call: _Call) -> tuple[tuple[str, str] | None, web.Response | None]:
        channel_id, message_id = call.params["channel_id"], call.params["message_id"]
        if not self._channel_exists(channel_id):
            return None, _json(p.UNKNOWN_CHANNEL, 404)
        key = (channel_id, message_id)
        if self._message_in(channel_id, message_id) is None and key not in self._reactions:
            return None, _json(p.UNKNOWN_MESSAGE, 404)
        return key, None

    async def _add_own_reaction(self, call: _Call) -> web.Response:
        target, error = self._reaction_target(call)
        if target is None:
            assert error is not None
            return error
        emoji = call.params["emoji"]
        if emoji.isascii() and ":" not in emoji:
            return _json(p.UNKNOWN_EMOJI, 400)
        users = self._reactions.setdefault(target, {}).setdefault(emoji, {})
        if self.bot.id not in users:
            users[self.bot.id] = False
            await self.dispatch(
                "MESSAGE_REACTION_ADD", self._reaction_event(target, self.bot.id, emoji, add=True)
            )
        return _no_content()

    async def _remove_reaction_rest(self, call: _Call) -> web.Response:
        target, error = self._reaction_target(call)
        if target is None:
            assert error is not None
            return error
        user_id = self.bot.id if call.params["user_id"] == "@me" else call.params["user_id"]
        users = self._reactions.get(target, {}).get(call.params["emoji"], {})
        if user_id in users:
            del users[user_id]
            event = self._reaction_event(target, user_id, call.params["emoji"], add=False)
            await self.dispatch("MESSAGE_REACTION_REMOVE", event)
        return _no_content()

    async def _reaction_users(self, call: _Call) -> web.Response:
        target, error = self._reaction_target(call)
        if target is None:
            assert error is not None
            return error
        query = call.request.query
        users = self._reactions.get(target, {}).get(call.params["emoji"], {})
        want_burst = query.get("type") == "1"
        ids = sorted((uid for uid, burst in users.items() if burst == want_burst), key=int)
        if "after" in query:
            ids = [uid for uid in ids if int(uid) > int(query["after"])]
        limit = max(1, min(100, int(query.get("limit", "25"))))
        return _json([p.user_payload(self._user_from(uid)) for uid in ids[:limit]])

    async def _clear_reactions(self, call: _Call) -> web.Response:
        target, error = self._reaction_target(call)
        if target is None:
            assert error is not None
            return error
        emoji = call.params.get("emoji")
        if emoji is None:
            self._reactions.pop(target, None)
        else:
            self._reactions.get(target, {}).pop(emoji, None)
        return _no_content()

    def _reaction_event(
        self, target: tuple[str, str], user_id: str, emoji: str, *, add: bool, burst: bool = False
    ) -> JSON:
        channel_id, message_id = target
        guild, _ = self._find_channel(channel_id)
        data: JSON = {
            "user_id": user_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "emoji": p.emoji_payload(emoji),
            # discord.py 2.7 indexes data['type'] (0 normal, 1 burst).
            "burst": burst,
            "type": 1 if burst else 0,
        }
        if add:
            data["burst_colors"] = []
            stored = self._messages.get(message_id)
            if stored is not None:
                data["message_author_id"] = stored.payload["author"]["id"]
        if guild is not None:
            data["guild_id"] = guild.id
            member = guild.find_member(user_id)
            if add and member is not None:
                data["member"] = p.member_payload(guild, member)
        return data

    # ------------------------------------------------------------------ REST: application commands

    def _command_scope(self, call: _Call) -> tuple[str | None, web.Response | None]:
        if call.params["app_id"] != self.application_id:
            return None, _json(p.MISSING_ACCESS, 403)
        guild_id = call.params.get("guild_id")
        if guild_id is not None and self._guild_or_none(guild_id) is None:
            return None, _json(p.MISSING_ACCESS, 403)
        return guild_id, None

    def _command_record(self, body: JSON, guild_id: str | None, existing: list[JSON]) -> JSON:
        ctype = body.get("type", 1)
        previous = next(
            (c for c in existing if c["name"] == body.get("name") and c["type"] == ctype), None
        )
        command_id = previous["id"] if previous else snowflake()
        return p.command_payload(
            body, command_id=command_id, application_id=self.application_id, guild_id=guild_id
        )

    async def _list_commands(self, call: _Call) -> web.Response:
        scope, error = self._command_scope(call)
        return error or _json(self._commands.get(scope, []))

    async def _put_commands(self, call: _Call) -> web.Response:
        scope, error = self._command_scope(call)
        if error is not None:
            return error
        body = call.body
        if not isinstance(body, list):
            return _json(p.field_error("_root", "MODEL_TYPE_CONVERT", "Must be an array."), 400)
        errors: JSON = {}
        for index, command in enumerate(body):
            for key, value in p.command_errors(command).items():
                errors[f"{index}.{key}"] = value
        names = [(c.get("type", 1), c.get("name")) for c in body if isinstance(c, dict)]
        if len(names) != len(set(names)):
            errors["_root"] = {
                "_errors": [{"code": "APPLICATION_COMMANDS_DUPLICATE_NAME", "message": "Duplicate"}]
            }
        if errors:
            return _json(p.invalid_form_body(errors), 400)
        existing = self._commands.get(scope, [])
        self._commands[scope] = [self._command_record(c, scope, existing) for c in body]
        self._command_puts[scope] = self._command_puts.get(scope, 0) + 1
        return _json(self._commands[scope])

    async def _upsert_command(self, call: _Call) -> web.Response:
        scope, error = self._command_scope(call)
        if error is not None:
            return error
        errors = p.command_errors(call.body)
        if errors:
            return _json(p.invalid_form_body(errors), 400)
        existing = self._commands.setdefault(scope, [])
        record = self._command_record(call.body, scope, existing)
        existing[:] = [c for c in existing if c["id"] != record["id"]] + [record]
        return _json(record, 201)

    async def _get_command(self, call: _Call) -> web.Response:
        scope, error = self._command_scope(call)
        if error is not None:
            return error
        found = next(
            (c for c in self._commands.get(scope, []) if c["id"] == call.params["command_id"]), None
        )
        return _json(found) if found else _json(p.UNKNOWN_COMMAND, 404)

    async def _delete_command(self, call: _Call) -> web.Response:
        scope, error = self._command_scope(call)
        if error is not None:
            return error
        commands = self._commands.get(scope, [])
        remaining = [c for c in commands if c["id"] != call.params["command_id"]]
        if len(remaining) == len(commands):
            return _json(p.UNKNOWN_COMMAND, 404)
        self._commands[scope] = remaining
        return _no_content()

    # ------------------------------------------------------------------ REST: interactions

    def _interaction_by_token(self, app_id: str, token: str) -> _Interaction | None:
        if app_id != self.application_id:
            return None
        record = next((i for i in self._interactions.values() if i.payload["token"] == token), None)
        if record is None or time.monotonic() - record.created > _INTERACTION_TOKEN_TTL:
            return None
        return record

    def _interaction_message_extra(self, record: _Interaction) -> JSON:
        payload = record.payload
        metadata: JSON = {
            "id": payload["id"],
            "type": payload["type"],
            "user": p.user_payload(record.invoker),
            "authorizing_integration_owners": payload["authorizing_integration_owners"],
        }
        if payload["type"] == p.INTERACTION_APPLICATION_COMMAND:
            metadata.update(
                name=payload["data"]["name"], command_type=payload["data"].get("type", 1)
            )
        if record.component_message_id is not None:
            metadata["interacted_message_id"] = record.component_message_id
        return {
            "webhook_id": self.application_id,
            "application_id": self.application_id,
            "interaction_metadata": metadata,
        }

    async def _interaction_callback(self, call: _Call) -> web.Response:
        interaction_id = call.params["interaction_id"]
        record = self._interactions.get(interaction_id)
        if record is None or record.payload["token"] != call.params["token"]:
            return _json(p.UNKNOWN_INTERACTION, 404)
        if record.callback is not None:
            return _json(p.ALREADY_ACKNOWLEDGED, 400)
        timeout = self.interaction_ack_timeout
        if timeout is not None and time.monotonic() - record.created > timeout:
            # Discord forgets unacknowledged interactions after 3 s.
            return _json(p.UNKNOWN_INTERACTION, 404)
        body = call.body if isinstance(call.body, dict) else {}
        cb_type = int(body.get("type", 0))
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        message: _StoredMessage | None = None
        msg_type = (
            p.MESSAGE_CHAT_INPUT_COMMAND if record.payload["type"] == 2 else p.MESSAGE_DEFAULT
        )
        if cb_type == 4:
            msg_body = dict(data or {})
            if call.files:
                msg_body.setdefault("attachments", [{}] * len(call.files))
            error = self._validate_message_body(msg_body)
            if error is not None:
                return _json(error, 400)
            message = await self._store_message(
                record.channel_id,
                self.bot,
                msg_body,
                files=call.files,
                message_type=msg_type,
                extra=self._interaction_message_extra(record),
                interaction_token=record.payload["token"],
            )
        elif cb_type == 5:
            flags = p.FLAG_LOADING | (int((data or {}).get("flags") or 0) & p.FLAG_EPHEMERAL)
            message = await self._store_message(
                record.channel_id,
                self.bot,
                {"content": "", "flags": flags},
                message_type=msg_type,
                extra=self._interaction_message_extra(record),
                interaction_token=record.payload["token"],
            )
        elif cb_type in (6, 7):
            target = self._messages.get(record.component_message_id or "")
            if target is None:
                return _json(
                    p.error_body("Interaction callback type invalid for this interaction", 40073),
                    400,
                )
            if cb_type == 7 and data is not None:
                await self._apply_edit(target, data, call.files)
            message = target
        elif cb_type == 9 and data is not None:
            self.modals[str(data.get("custom_id"))] = copy.deepcopy(data)
        callback = InteractionCallback(
            interaction_id=interaction_id,
            type=cb_type,
            data=copy.deepcopy(data),
            with_response=call.request.query.get("with_response", "").lower() in ("1", "true"),
            message_id=message.payload["id"] if message else None,
        )
        record.callback = callback
        record.original_message_id = callback.message_id
        self.interaction_responses[interaction_id] = callback
        if not callback.with_response:
            return _no_content()
        # discord.py 2.7 always asks ?with_response=1 and parses this object (it crashes on 204).
        response: JSON = {
            "interaction": {
                "id": interaction_id,
                "type": record.payload["type"],
                "response_message_loading": cb_type == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            },
            "resource": {"type": cb_type},
        }
        if message is not None:
            response["interaction"]["response_message_id"] = message.payload["id"]
            if cb_type in (4, 7):
                response["resource"]["message"] = self._render(message)
        return _json(response)

    async def _followup(self, call: _Call) -> web.Response:
        record = self._interaction_by_token(call.params["app_id"], call.params["token"])
        if record is None or record.callback is None:
            return _json(p.UNKNOWN_WEBHOOK, 404)
        body = call.body if isinstance(call.body, dict) else {}
        if call.files:
            body = {**body, "attachments": body.get("attachments") or [{}] * len(call.files)}
        error = self._validate_message_body(body)
        if error is not None:
            return _json(error, 400)
        msg_type = (
            p.MESSAGE_CHAT_INPUT_COMMAND if record.payload["type"] == 2 else p.MESSAGE_DEFAULT
        )
        stored = await self._store_message(
            record.channel_id,
            self.bot,
            body,
            files=call.files,
            message_type=msg_type,
            extra=self._interaction_message_extra(record),
            interaction_token=record.payload["token"],
        )
        if call.request.query.get("wait", "").lower() in ("1", "true"):
            return _json(self._render(stored))
        return _no_content()

    async def _webhook_message(self, call: _Call) -> web.Response:
        record = self._interaction_by_token(call.params["app_id"], call.params["token"])
        if record is None:
            return _json(p.UNKNOWN_WEBHOOK, 404)
        message_id = call.params["message_id"]
        if message_id == "@original":
            message_id = record.original_message_id or ""
        stored = self._messages.get(message_id)
        token = record.payload["token"]
        if stored is None or (
            stored.interaction_token != token and message_id != record.original_message_id
        ):
            return _json(p.UNKNOWN_MESSAGE, 404)
        method = call.request.method
        if method == "DELETE":
            await self._delete_stored(stored)
            return _no_content()
        if method == "PATCH":
            body = call.body if isinstance(call.body, dict) else {}
            error = self._validate_message_body(body, partial=True)
            if error is not None:
                return _json(error, 400)
            await self._apply_edit(stored, body, call.files)
        return _json(self._render(stored))

    # ------------------------------------------------------------------ gateway: server side

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws=ws, request=request, query=dict(request.query))
        if self.gateway_compression and conn.query.get("compress") == "zlib-stream":
            conn.compressor = zlib.compressobj()
        self.gateway_connections.append(conn.query)
        self._connections.add(conn)
        self._notify()
        try:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": _GATEWAY_TRACE}
            await conn.send({"op": 10, "d": hello, "s": None, "t": None})
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await conn.close(4002, "Error while decoding payload.")
                    break
                self.gateway_received.append(frame)
                self._notify()
                await self._on_gateway_frame(conn, frame)
        finally:
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client closing with 1000/1001 ends its session for good, as on Discord.
                if not conn.closed_by_server and ws.close_code in (1000, 1001):
                    session.invalidated = True
            self._notify()
        return ws

    async def _on_gateway_frame(self, conn: _Connection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            self.heartbeats += 1
            if self.ack_heartbeats:
                await conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._on_identify(conn, data or {})
        elif op == 6:
            await self._on_resume(conn, data or {})
        elif op == 8:
            await self._on_request_members(conn, data or {})
        elif op in (3, 4):
            pass  # presence / voice state updates are accepted and only logged
        else:
            await conn.close(4001, "Unknown opcode.")

    async def _on_identify(self, conn: _Connection, data: JSON) -> None:
        if data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        if conn.session is not None:
            await conn.close(4005, "Already authenticated.")
            return
        intents = int(data.get("intents", 0))
        if (
            self.allowed_intents is not None
            and intents & p.PRIVILEGED_INTENTS & ~self.allowed_intents
        ):
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard_data = data.get("shard")
        shard = (int(shard_data[0]), int(shard_data[1])) if shard_data else None
        session = _Session(
            session_id=uuid.uuid4().hex, intents=intents, identify=copy.deepcopy(data), shard=shard
        )
        self.identifies.append(copy.deepcopy(data))
        self._sessions[session.session_id] = session
        conn.session, session.conn = session, conn
        guilds = [g for g in self.guilds if self._in_shard(session, g.id)]
        ready: JSON = {
            "v": 10,
            "user": p.current_user_payload(self.bot),
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            # discord.py 2.7 reads application['id'] and application['flags'].
            "application": {"id": self.application_id, "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": _GATEWAY_TRACE,
        }
        if shard is not None:
            ready["shard"] = list(shard)
        large_threshold = int(data.get("large_threshold", 50))
        async with session.lock:
            await self._emit_locked(session, "READY", ready)
            for guild in guilds:
                await self._emit_locked(
                    session, "GUILD_CREATE", self._guild_create(guild, intents, large_threshold)
                )
        self._notify()

    def _guild_create(self, guild: FakeGuild, intents: int, large_threshold: int) -> JSON:
        # Discord sends the full member list only with GUILD_PRESENCES (and a non-large guild);
        # otherwise just the bot itself, and members-intent clients chunk via op 8.
        large = len(guild.members) > large_threshold
        if intents & p.INTENT_GUILD_PRESENCES and not large:
            members = list(guild.members)
        else:
            members = [m for m in guild.members if m.user.id == self.bot.id]
        bot_member = guild.find_member(self.bot.id)
        joined_at = bot_member.joined_at if bot_member else p.iso_now()
        data = p.guild_create_payload(guild, self._roles(guild), members, joined_at)
        data["large"] = large
        return data

    async def _on_resume(self, conn: _Connection, data: JSON) -> None:
        if data.get("token") != self.token:
            await conn.close(4004, "Authentication failed.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or session.invalidated:
            await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return
        self.resumes.append(copy.deepcopy(data))
        old = session.conn
        if old is not None and old is not conn:
            old.session = None
            with contextlib.suppress(ConnectionError, RuntimeError):
                await old.close(4000, "Session resumed elsewhere.")
        client_seq = int(data.get("seq") or 0)
        if self._replay_after is not None:
            client_seq, self._replay_after = min(client_seq, self._replay_after), None
        async with session.lock:
            conn.session, session.conn = session, conn
            for frame in session.history:
                if frame["s"] > client_seq:
                    await conn.send(frame)
            session.seq += 1
            await conn.send(
                {"op": 0, "t": "RESUMED", "s": session.seq, "d": {"_trace": _GATEWAY_TRACE}}
            )
        self._notify()

    async def _on_request_members(self, conn: _Connection, data: JSON) -> None:
        session = conn.session
        if session is None:
            await conn.close(4003, "Not authenticated.")
            return
        guild_ids = data.get("guild_id")
        for guild_id in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self._guild_or_none(str(guild_id))
            if guild is None:
                continue
            members = list(guild.members)
            not_found: list[str] = []
            if data.get("user_ids"):
                wanted = [str(u) for u in data["user_ids"]]
                members = [m for m in members if m.user.id in wanted]
                not_found = [u for u in wanted if guild.find_member(u) is None]
            else:
                query = str(data.get("query") or "").lower()
                members = [
                    m
                    for m in members
                    if m.user.username.lower().startswith(query)
                    or (m.nick or "").lower().startswith(query)
                ]
                if int(data.get("limit") or 0):
                    members = members[: int(data["limit"])]
            chunk: JSON = {
                "guild_id": guild.id,
                "members": [p.member_payload(guild, m) for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": not_found,
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            async with session.lock:
                await self._emit_locked(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _in_shard(self, session: _Session, guild_id: str | None) -> bool:
        if session.shard is None:
            return True
        shard_id, count = session.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % count == shard_id

    async def _emit_locked(self, session: _Session, event: str, data: JSON) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": copy.deepcopy(data)}
        session.history.append(frame)
        if session.conn is not None:
            await session.conn.send(frame)

    def _for_session(self, session: _Session, event: str, data: JSON) -> JSON | None:
        guild_id = data.get("guild_id")
        if not self._in_shard(session, guild_id):
            return None
        need = p.event_intent(event, guild_id is not None)
        if need is not None and not session.intents & need:
            return None
        if (
            event in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            and guild_id
            and not session.intents & p.INTENT_MESSAGE_CONTENT
        ):
            author_id = data.get("author", {}).get("id")
            mentioned = any(m.get("id") == self.bot.id for m in data.get("mentions", []))
            if author_id != self.bot.id and not mentioned:
                # Without MESSAGE_CONTENT Discord blanks these fields for other users' messages.
                data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
                data.pop("poll", None)
        return data

    # ------------------------------------------------------------------ gateway: test controls

    async def dispatch(self, event: str, data: JSON, *, respect_intents: bool = True) -> int:
        """Send a DISPATCH to every live session; returns how many sessions got (or buffered) it.

        Sessions whose socket is currently down buffer the event; it is replayed on RESUME.
        With ``respect_intents`` (default) events the session's intents exclude are dropped and
        message content is blanked without MESSAGE_CONTENT, as Discord does.
        """
        delivered = 0
        for session in list(self._sessions.values()):
            if session.invalidated:
                continue
            payload = self._for_session(session, event, data) if respect_intents else data
            if payload is None:
                continue
            async with session.lock:
                await self._emit_locked(session, event, payload)
            delivered += 1
        self._notify()
        return delivered

    async def drop_connection(self, code: int | None = 4000, *, reason: str = "") -> None:
        """Close every gateway socket from the server side, keeping sessions resumable.

        ``code=None`` aborts the TCP connection without a close frame (a network drop).
        """
        for conn in list(self._connections):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            conn.closed_by_server = True
            if code is None:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=code, message=reason.encode())

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 to connected sessions; non-resumable ones are forgotten (fresh IDENTIFY)."""
        for session in list(self._sessions.values()):
            conn = session.conn
            if conn is None or session.invalidated:
                continue
            if not resumable:
                session.invalidated = True
            await conn.send({"op": 9, "d": resumable, "s": None, "t": None})

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py closes and RESUMEs."""
        for session in list(self._sessions.values()):
            if session.conn is not None and not session.invalidated:
                await session.conn.send({"op": 7, "d": None, "s": None, "t": None})

    # ------------------------------------------------------------------ gateway: scenario builders

    async def post_user_message(
        self,
        channel_id: str | int,
        user: str | int | FakeUser | FakeMember,
        content: str,
        *,
        dispatch: bool = True,
        **fields: Any,
    ) -> str:
        """Store a message authored by ``user`` (not the bot) and dispatch MESSAGE_CREATE."""
        author = self._user_from(user)
        channel_id = str(channel_id)
        if not self._channel_exists(channel_id):
            raise KeyError(f"unknown channel {channel_id}")
        stored = await self._store_message(
            channel_id, author, {"content": content, **fields}, dispatch=dispatch
        )
        return str(stored.payload["id"])

    async def add_reaction(
        self,
        guild_id: str | int | None,
        channel_id: str | int,
        message_id: str | int,
        user_id: str | int,
        emoji_name: str,
        *,
        emoji_id: str | None = None,
        burst: bool = False,
    ) -> int:
        """A user reacts: update reaction state (REST GET agrees) and dispatch MESSAGE_REACTION_ADD.

        Returns how many gateway sessions got (or buffered) the event.
        """
        del guild_id  # derived from the channel, accepted for call-site symmetry with the events
        target = (str(channel_id), str(message_id))
        user = self._user_from(user_id)
        key = p.emoji_key(emoji_name, emoji_id)
        users = self._reactions.setdefault(target, {}).setdefault(key, {})
        if user.id in users:
            return 0  # Discord sends nothing for a duplicate reaction
        users[user.id] = burst
        return await self.dispatch(
            "MESSAGE_REACTION_ADD",
            self._reaction_event(target, user.id, key, add=True, burst=burst),
        )

    async def remove_reaction(
        self,
        guild_id: str | int | None,
        channel_id: str | int,
        message_id: str | int,
        user_id: str | int,
        emoji_name: str,
        *,
        emoji_id: str | None = None,
    ) -> int:
        del guild_id
        target = (str(channel_id), str(message_id))
        key = p.emoji_key(emoji_name, emoji_id)
        users = self._reactions.get(target, {}).get(key, {})
        user_id = self._user_from(user_id).id
        if user_id not in users:
            return 0
        burst = users.pop(user_id)
        return await self.dispatch(
            "MESSAGE_REACTION_REMOVE",
            self._reaction_event(target, user_id, key, add=False, burst=burst),
        )

    def _interaction_context(
        self,
        guild_id: str | int | None,
        channel_id: str | int | None,
        user: str | int | FakeUser | FakeMember,
    ) -> tuple[FakeGuild | None, JSON, FakeMember | FakeUser, int]:
        if guild_id is None:
            dm_user = self._user_from(user)
            channel_id = str(channel_id) if channel_id is not None else self._ensure_dm(dm_user)
            channel = p.dm_channel_payload(channel_id, dm_user, self._last_message_id(channel_id))
            return None, channel, dm_user, p.DEFAULT_BOT_PERMISSIONS
        guild = self.guild(guild_id)
        member = self._member_from(guild, user)
        chan = guild.channel(str(channel_id)) if channel_id is not None else guild.channels[0]
        bot_member = guild.find_member(self.bot.id)
        app_permissions = guild.permissions_for(bot_member) if bot_member else 0
        return (
            guild,
            p.channel_payload(guild, chan, permissions=guild.permissions_for(member)),
            member,
            app_permissions,
        )

    async def _send_interaction(
        self,
        interaction_type: int,
        data: JSON,
        guild_id: str | int | None,
        channel_id: str | int | None,
        user: str | int | FakeUser | FakeMember,
        *,
        message: JSON | None = None,
        locale: str = "en-US",
    ) -> str:
        guild, channel, invoker, app_permissions = self._interaction_context(
            guild_id, channel_id, user
        )
        interaction_id = snowflake()
        payload = p.interaction_payload(
            interaction_id=interaction_id,
            interaction_type=interaction_type,
            application_id=self.application_id,
            token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            data=data,
            guild=guild,
            channel=channel,
            invoker=invoker,
            app_permissions=app_permissions,
            locale=locale,
            message=message,
        )
        self._interactions[interaction_id] = _Interaction(
            payload=payload,
            created=time.monotonic(),
            guild_id=guild.id if guild else None,
            channel_id=channel["id"],
            invoker=invoker.user if isinstance(invoker, FakeMember) else invoker,
            component_message_id=message["id"] if message else None,
        )
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction_id

    def _find_command(
        self, name: str, guild_id: str | None, command_type: int = 1
    ) -> tuple[JSON | None, str | None]:
        for scope in ([guild_id] if guild_id else []) + [None]:
            for command in self._commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == command_type:
                    return command, scope
        return None, None

    async def send_slash_command(
        self,
        guild_id: str | int | None,
        channel_id: str | int | None,
        user: str | int | FakeUser | FakeMember,
        *,
        name: str = "review",
        subcommand: str | None = "ask",
        options: Mapping[str, Any] | None = None,
        group: str | None = None,
        guild_command: bool = False,
        locale: str = "en-US",
    ) -> str:
        """Dispatch a CHAT_INPUT INTERACTION_CREATE; returns the interaction id.

        Option types come from the synced definition when the command was synced (so USER/
        CHANNEL/ROLE options get ``resolved`` data); otherwise they are inferred from the Python
        values. ``data.guild_id`` (which discord.py's tree needs to find guild commands) is set
        when the command was synced to that guild, or when ``guild_command=True``.
        """
        gid = None if guild_id is None else str(guild_id)
        command, scope = self._find_command(name, gid)
        data: JSON = {"id": command["id"] if command else snowflake(), "name": name, "type": 1}
        if scope is not None or (guild_command and gid is not None):
            data["guild_id"] = gid
        definitions: list[JSON] = list(command.get("options") or []) if command else []
        for level in (group, subcommand):
            if level is not None:
                parent = next((o for o in definitions if o.get("name") == level), {})
                definitions = list(parent.get("options") or [])
        guild = self.guild(gid) if gid else None
        built, resolved = self._build_options(definitions, options or {}, guild)
        if subcommand is not None:
            built = [{"type": p.OPTION_SUB_COMMAND, "name": subcommand, "options": built}]
            if group is not None:
                built = [{"type": p.OPTION_SUB_COMMAND_GROUP, "name": group, "options": built}]
        data["options"] = built
        if resolved:
            data["resolved"] = resolved
        return await self._send_interaction(
            p.INTERACTION_APPLICATION_COMMAND, data, gid, channel_id, user, locale=locale
        )

    def _build_options(
        self, definitions: list[JSON], values: Mapping[str, Any], guild: FakeGuild | None
    ) -> tuple[list[JSON], JSON]:
        options: list[JSON] = []
        resolved: dict[str, dict[str, JSON]] = {}
        for name, value in values.items():
            definition = next((d for d in definitions if d.get("name") == name), None)
            opt_type = int(definition["type"]) if definition else p.infer_option_type(value)
            if opt_type in (p.OPTION_USER, p.OPTION_CHANNEL, p.OPTION_ROLE, p.OPTION_MENTIONABLE):
                entity_id = (
                    value.id
                    if isinstance(value, FakeUser | FakeMember | FakeRole | FakeChannel)
                    else str(value)
                )
                self._resolve_into(resolved, opt_type, entity_id, guild)
                options.append({"name": name, "type": opt_type, "value": entity_id})
                continue
            converted: Any = {
                p.OPTION_INTEGER: int,
                p.OPTION_NUMBER: float,
                p.OPTION_BOOLEAN: bool,
            }.get(opt_type, str)(value)
            options.append({"name": name, "type": opt_type, "value": converted})
        return options, resolved

    def _resolve_into(
        self,
        resolved: dict[str, dict[str, JSON]],
        opt_type: int,
        entity_id: str,
        guild: FakeGuild | None,
    ) -> None:
        if guild is not None and opt_type in (p.OPTION_ROLE, p.OPTION_MENTIONABLE):
            role = next((r for r in self._roles(guild) if r.id == entity_id), None)
            if role is not None:
                resolved.setdefault("roles", {})[entity_id] = p.role_payload(role)
                return
        if opt_type == p.OPTION_CHANNEL and guild is not None:
            channel = guild.channel(entity_id)
            perms = guild.permissions_for(guild.member(self.bot.id))
            resolved.setdefault("channels", {})[entity_id] = p.channel_payload(
                guild, channel, permissions=perms
            )
            return
        if opt_type in (p.OPTION_USER, p.OPTION_MENTIONABLE):
            user = self._user_from(entity_id)
            resolved.setdefault("users", {})[entity_id] = p.user_payload(user)
            member = guild.find_member(entity_id) if guild else None
            if guild is not None and member is not None:
                member_data = p.member_payload(
                    guild, member, with_user=False, with_permissions=True
                )
                resolved.setdefault("members", {})[entity_id] = member_data

    async def send_button_click(
        self,
        guild_id: str | int | None,
        channel_id: str | int,
        message_id: str | int,
        user: str | int | FakeUser | FakeMember,
        custom_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> str:
        """Dispatch a MESSAGE_COMPONENT interaction (button by default; pass ``component_type=3``
        and ``values`` for a string select). Uses the stored message when the fake knows it."""
        stored = self._messages.get(str(message_id))
        if stored is not None:
            message = self._render(stored)
        else:
            button = {"type": 2, "style": 1, "label": custom_id, "custom_id": custom_id}
            message = p.message_payload(
                message_id=str(message_id),
                channel_id=str(channel_id),
                author=self.bot,
                body={"content": "", "components": [{"type": 1, "components": [button]}]},
            )
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return await self._send_interaction(
            p.INTERACTION_MESSAGE_COMPONENT, data, guild_id, channel_id, user, message=message
        )

    async def send_modal_submit(
        self,
        guild_id: str | int | None,
        channel_id: str | int | None,
        user: str | int | FakeUser | FakeMember,
        custom_id: str,
        values: Mapping[str, str | list[str]],
    ) -> str:
        """Dispatch a MODAL_SUBMIT; mirrors the layout of the modal the bot opened (type 9)."""
        modal = self.modals.get(custom_id)
        if modal is not None:
            components = [
                c
                for c in (p.modal_submit_component(c, values) for c in modal.get("components", []))
                if c
            ]
        else:
            components = [
                {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
                for key, value in values.items()
            ]
        data: JSON = {"custom_id": custom_id, "components": components}
        return await self._send_interaction(
            p.INTERACTION_MODAL_SUBMIT, data, guild_id, channel_id, user
        )


def _response_body(response: web.Response) -> Any:
    if response.body is None or not isinstance(response.body, bytes | bytearray):
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        return bytes(response.body).decode(errors="replace")
