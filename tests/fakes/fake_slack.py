"""A protocol-faithful fake of Slack for tests, served by aiohttp on 127.0.0.1.

Owns: ``FakeSlack`` (Web API under ``/api/<method>``, Socket Mode websocket under
``/socket-mode``, response_url sink under ``/commands/``), the ``ApiCall`` record,
fault injection, request signing (``sign``) and ``serve_bolt_app`` for putting a real
bolt ``AsyncApp`` behind HTTP. Inbound payload builders live in ``slack_payloads``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from tests.fakes import slack_payloads as p

JsonDict = dict[str, Any]
EnvelopeType = Literal["slash_commands", "events_api", "interactive"]

# Slack puts these scopes in X-OAuth-Scopes; bolt copies them into context.authorize_result.
DEFAULT_SCOPES = "chat:write,commands,im:write,reactions:read,reactions:write,users:read"
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_STATUS_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def sign(
    body: bytes, secret: str, timestamp: int | None = None, *, content_type: str | None = None
) -> dict[str, str]:
    """Headers Slack attaches to a request: ``v0=HMAC-SHA256(secret, "v0:{ts}:{body}")``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), b"v0:%d:%s" % (ts, body), hashlib.sha256).hexdigest()
    if content_type is None:
        is_json = body.lstrip().startswith(b"{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


class SlackError(Exception):
    """Raised inside a method handler to answer ``{"ok": false, "error": <code>}``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class ApiCall:
    """One request the fake answered. ``args`` merges query string and body, minus ``token``."""

    method: str
    args: JsonDict
    headers: Mapping[str, str]
    token: str | None = None
    status: int = 200
    response: JsonDict = field(default_factory=dict)


@dataclass
class _Fault:
    method: str
    times: int
    status: int | None
    error: str | None
    retry_after: int
    delay: float


_HANDLERS: dict[str, Callable[[FakeSlack, JsonDict], JsonDict]] = {}


def _api(name: str) -> Callable[[Callable[[FakeSlack, JsonDict], JsonDict]], Any]:
    def register(fn: Callable[[FakeSlack, JsonDict], JsonDict]) -> Any:
        _HANDLERS[name] = fn
        return fn

    return register


def _json_arg(args: JsonDict, key: str) -> Any:
    """Form-encoded callers send blocks/views as JSON strings, JSON callers as objects."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{key}") from None
    return value


def _required(args: JsonDict, key: str, error: str) -> str:
    value = args.get(key)
    if not value:
        raise SlackError(error)
    return str(value)


async def _read_args(request: web.Request) -> JsonDict:
    args: JsonDict = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.read()
        if raw:
            try:
                args.update(json.loads(raw))
            except ValueError:
                raise SlackError("invalid_json") from None
    elif request.content_type in _FORM_TYPES:
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


@asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_bolt_app(app: AsyncApp, path: str = "/slack/events") -> AsyncIterator[str]:
    """Serve a bolt app over HTTP on 127.0.0.1 the way a production aiohttp host would."""

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post(path, endpoint)
    async with _serve(web_app) as port:
        yield f"http://127.0.0.1:{port}{path}"


class FakeSlack:
    """In-memory Slack workspace plus the HTTP/websocket surface the SDKs talk to."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        team_id: str = p.TEAM_ID,
        bot_user_id: str = p.BOT_USER_ID,
        bot_id: str = p.BOT_ID,
        app_id: str = p.APP_ID,
        team_domain: str = p.TEAM_DOMAIN,
        scopes: str = DEFAULT_SCOPES,
        strict: bool = False,
    ) -> None:
        """``strict``: unknown channels/users are errors, as in Slack, instead of auto-created."""
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.team_domain, self.app_id = team_id, team_domain, app_id
        self.bot_user_id, self.bot_id, self.scopes = bot_user_id, bot_id, scopes
        self.strict = strict
        self.latency = 0.0
        self.ephemerals: list[JsonDict] = []
        self.socket_messages: list[JsonDict] = []
        self.socket_connections = 0
        self._calls: list[ApiCall] = []
        self._faults: list[_Fault] = []
        self._revoked = False
        self._channels: dict[str, dict[str, JsonDict]] = {}
        self._users: dict[str, JsonDict] = {}
        self._dms: dict[tuple[str, ...], str] = {}
        self._views: dict[str, JsonDict] = {}
        self._used_triggers: set[str] = set()
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[JsonDict]] = {}
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._changed = asyncio.Event()
        self._serving: Any = None
        self._port = 0
        self.add_user(bot_user_id, name="reviewrelay", is_bot=True)

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket-mode", self._handle_socket)
        app.router.add_post("/commands/{rest:.*}", self._handle_response_url)
        self._serving = _serve(app)
        self._port = await self._serving.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Open websockets would otherwise hold runner.cleanup() until its shutdown timeout.
        for ws in list(self._sockets):
            await ws.close()
        await self._serving.__aexit__(*exc)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    # ---- recording --------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[JsonDict]:
        """Current channel state in ts order (updates applied, deletions gone)."""
        stored = self._channels.get(channel, {})
        return [copy.deepcopy(stored[ts]) for ts in sorted(stored)]

    def views(self) -> list[JsonDict]:
        return [copy.deepcopy(v) for v in self._views.values()]

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        await self._wait(lambda: len(self.calls(method)) >= count, timeout, f"{count}x {method}")
        return self.calls(method)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` Socket Mode connections have been accepted in total."""
        await self._wait(lambda: self.socket_connections >= count, timeout, f"socket #{count}")

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    await self._changed.wait()
        except TimeoutError:
            seen = [c.method for c in self._calls]
            raise TimeoutError(f"FakeSlack: no {what} within {timeout}s; calls: {seen}") from None

    def _notify(self) -> None:
        # A fresh Event per change lets every waiter re-check its predicate without a lock.
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- fault injection ----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int = 1,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"`` = any) misbehave.

        ``status=429`` answers ratelimited with Retry-After; other statuses answer that status;
        ``error`` alone answers HTTP 200 ``ok: false``; ``delay`` alone just answers late.
        """
        if status is None and error is None and delay <= 0:
            raise ValueError("fail_next needs status, error or delay")
        self._faults.append(_Fault(method, times, status, error, retry_after, delay))

    def set_token_revoked(self, revoked: bool = True) -> None:
        self._revoked = revoked

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (method, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---- HTTP surface -------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        headers: dict[str, str] = {"X-OAuth-Scopes": self.scopes}
        status, args, token = 200, {}, None
        try:
            args = await _read_args(request)
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() or args.pop("token", None)
            args.pop("token", None)
            fault = self._take_fault(method)
            delay = self.latency + (fault.delay if fault else 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            if fault and (fault.status or fault.error):
                status = fault.status or 200
                if status == 429:
                    headers["Retry-After"] = str(fault.retry_after)
                default = "ratelimited" if status == 429 else _STATUS_ERRORS.get(status, "fatal_error")
                raise SlackError(fault.error or default)
            self._authorize(method, token)
            handler = _HANDLERS.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            body = {"ok": True, **handler(self, args)}
        except SlackError as e:
            body = {"ok": False, "error": e.error}
        self._calls.append(
            ApiCall(method, args, CIMultiDict(request.headers), token, status, copy.deepcopy(body))
        )
        self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        if self._revoked:
            raise SlackError("token_revoked")
        wanted = self.app_token if method in _APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            raise SlackError("not_allowed_token_type")

    def response_url(self) -> str:
        """A response_url for payload builders; POSTs to it are recorded as ``response_url`` calls."""
        return f"{self.base_url}commands/{self.team_id}/{next(self._ids)}/{uuid.uuid4().hex}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        args = json.loads(raw) if raw else {}
        self._calls.append(ApiCall("response_url", args, CIMultiDict(request.headers)))
        self._notify()
        return web.Response(text="ok")

    # ---- workspace state ------------------------------------------------------------------

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + 100 * next(self._ts)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def add_channel(self, channel_id: str) -> None:
        self._channels.setdefault(channel_id, {})

    def add_user(self, user_id: str, *, name: str | None = None, **fields: Any) -> JsonDict:
        name = name or user_id.lower()
        user: JsonDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": name.title(),
            "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "is_bot": False,
            "is_admin": False,
            "profile": {"real_name": name.title(), "display_name": name},
        }
        user.update(fields)
        self._users[user_id] = user
        return user

    def add_message(self, channel: str, text: str, *, user: str = p.USER_ID, **extra: Any) -> str:
        """Seed a message as if a person had posted it; returns its ts."""
        self.add_channel(channel)
        ts = self._next_ts()
        self._channels[channel][ts] = {"type": "message", "user": user, "text": text, "ts": ts}
        self._channels[channel][ts].update(extra)
        return ts

    def _channel(self, channel: object) -> str:
        if not channel:
            raise SlackError("channel_not_found")
        cid = str(channel)
        if cid[0] in "UW":  # Slack accepts a user ID and posts to the bot's DM with them
            return self._open_conversation((cid,))
        if cid not in self._channels:
            if self.strict:
                raise SlackError("channel_not_found")
            self.add_channel(cid)
        return cid

    def _message(self, args: JsonDict, ts_key: str = "ts") -> tuple[str, JsonDict]:
        channel = self._channel(args.get("channel"))
        msg = self._channels[channel].get(str(args.get(ts_key, "")))
        if msg is None:
            raise SlackError("message_not_found")
        return channel, msg

    def _open_conversation(self, users: tuple[str, ...]) -> str:
        key = tuple(sorted(users))
        if key not in self._dms:
            prefix = "D" if len(key) == 1 else "G"
            self._dms[key] = f"{prefix}0{next(self._ids):07d}"
            self.add_channel(self._dms[key])
        return self._dms[key]

    # ---- Web API methods --------------------------------------------------------------------

    @_api("auth.test")
    def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Fake Team",
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    @_api("chat.postMessage")
    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = self._channel(args.get("channel"))
        msg: JsonDict = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": "",
            "ts": self._next_ts(),
        }
        self._apply_content(msg, args)
        for key in ("thread_ts", "metadata"):
            if args.get(key):
                msg[key] = _json_arg(args, key) if key == "metadata" else str(args[key])
        self._channels[channel][msg["ts"]] = msg
        return {"channel": channel, "ts": msg["ts"], "message": copy.deepcopy(msg)}

    @staticmethod
    def _apply_content(msg: JsonDict, args: JsonDict) -> None:
        # Like chat.update in Slack: fields left out keep their previous value.
        if not any(args.get(k) is not None for k in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        if args.get("text") is not None:
            msg["text"] = str(args["text"])
        for key in ("blocks", "attachments"):
            if args.get(key) is not None:
                msg[key] = _json_arg(args, key)

    @_api("chat.update")
    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args)
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        self._apply_content(msg, args)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": msg["ts"], "text": msg["text"], "message": copy.deepcopy(msg)}

    @_api("chat.delete")
    def _chat_delete(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args)
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        del self._channels[channel][msg["ts"]]
        return {"channel": channel, "ts": msg["ts"]}

    @_api("chat.postEphemeral")
    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = self._channel(args.get("channel"))
        msg: JsonDict = {"channel": channel, "user": _required(args, "user", "user_not_in_channel")}
        self._apply_content(msg, args)
        msg["ts"] = self._next_ts()
        self.ephemerals.append(msg)
        return {"message_ts": msg["ts"]}

    @_api("conversations.open")
    def _conversations_open(self, args: JsonDict) -> JsonDict:
        if args.get("channel"):
            return {"channel": {"id": self._channel(args["channel"])}}
        users = args.get("users") or []
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        for user in users:
            self._user(user)
        already_open = tuple(sorted(users)) in self._dms
        channel_id = self._open_conversation(tuple(users))
        return {"no_op": already_open, "already_open": already_open, "channel": {"id": channel_id}}

    def _user(self, user_id: str) -> JsonDict:
        if user_id not in self._users:
            if self.strict:
                raise SlackError("user_not_found")
            self.add_user(user_id)
        return self._users[user_id]

    @_api("users.info")
    def _users_info(self, args: JsonDict) -> JsonDict:
        return {"user": copy.deepcopy(self._user(_required(args, "user", "user_not_found")))}

    @_api("reactions.add")
    def _reactions_add(self, args: JsonDict) -> JsonDict:
        _, msg = self._message(args, "timestamp")
        name = _required(args, "name", "invalid_name")
        reactions: list[JsonDict] = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if self.bot_user_id in entry["users"]:
            raise SlackError("already_reacted")
        entry["users"].append(self.bot_user_id)
        entry["count"] += 1
        return {}

    @_api("reactions.remove")
    def _reactions_remove(self, args: JsonDict) -> JsonDict:
        _, msg = self._message(args, "timestamp")
        name = args.get("name")
        reactions: list[JsonDict] = msg.get("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None or self.bot_user_id not in entry["users"]:
            raise SlackError("no_reaction")
        entry["users"].remove(self.bot_user_id)
        entry["count"] -= 1
        msg["reactions"] = [r for r in reactions if r["count"] > 0]
        return {}

    @_api("reactions.get")
    def _reactions_get(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args, "timestamp")
        return {"type": "message", "channel": channel, "message": copy.deepcopy(msg)}

    @_api("views.open")
    def _views_open(self, args: JsonDict) -> JsonDict:
        trigger_id = _required(args, "trigger_id", "invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        view = self._store_view(_json_arg(args, "view"), f"V0{next(self._ids):07d}")
        self._used_triggers.add(trigger_id)
        return {"view": view}

    @_api("views.update")
    def _views_update(self, args: JsonDict) -> JsonDict:
        external_id = args.get("external_id")
        view_id = args.get("view_id") or next(
            (v["id"] for v in self._views.values() if external_id and v["external_id"] == external_id),
            None,
        )
        if view_id not in self._views:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != self._views[str(view_id)]["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view(_json_arg(args, "view"), str(view_id))}

    def _store_view(self, view: object, view_id: str) -> JsonDict:
        if not isinstance(view, dict) or "blocks" not in view:
            raise SlackError("invalid_arguments")
        stored: JsonDict = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        stored |= {k: v for k, v in view.items() if k not in stored}
        self._views[view_id] = stored
        return copy.deepcopy(stored)

    @_api("apps.connections.open")
    def _apps_connections_open(self, args: JsonDict) -> JsonDict:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        url = f"ws://127.0.0.1:{self._port}/socket-mode?ticket={ticket}&app_id={self.app_id}"
        return {"url": url}

    # ---- Socket Mode ------------------------------------------------------------------------

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse()  # autoping answers the SDK's "sdk-ping-pong:<t>" pings
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._notify()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.socket_messages.append(data)
                ack = self._acks.pop(str(data.get("envelope_id")), None)
                if ack is not None and not ack.done():
                    ack.set_result(data)
                self._notify()
        finally:
            self._sockets.remove(ws)
            self._notify()
        return ws

    async def push_socket_envelope(
        self,
        type: EnvelopeType,  # mirrors the envelope field; shadows the builtin on purpose
        payload: JsonDict,
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> JsonDict:
        """Send an envelope on the newest connection; return the client's ack message."""
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            # Slack lets only these kinds answer in the ack (slash text, modal errors, options).
            accepts_response_payload = type == "slash_commands" or payload.get("type") in (
                "view_submission",
                "block_suggestion",
            )
        envelope: JsonDict = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api" or retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        ack: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = ack
        try:
            async with asyncio.timeout(timeout):
                while not self._sockets:
                    await self._changed.wait()
                await self._sockets[-1].send_json(envelope)
                return await ack
        except TimeoutError:
            raise TimeoutError(f"FakeSlack: no ack for {type} envelope within {timeout}s") from None
        finally:
            self._acks.pop(envelope_id, None)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        """Ask clients to reconnect, as Slack does every few hours."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        for ws in list(self._sockets):
            await ws.send_json(message)
