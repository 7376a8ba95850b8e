"""A protocol-faithful fake of Slack for tests, served by aiohttp on 127.0.0.1.

Owns: ``FakeSlack`` (Web API under ``/api/<method>``, Socket Mode websocket under
``/socket-mode``, response_url sink under ``/commands/``), the ``ApiCall`` record,
fault injection, request signing (``sign``) and ``serve_bolt_app`` for putting a real
bolt ``AsyncApp`` behind HTTP. Workspace state and per-method semantics live in
``slack_workspace``; inbound payload builders in ``slack_payloads``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from tests.fakes import slack_payloads as p
from tests.fakes.answering import Answering
from tests.fakes.slack_workspace import SlackError, SlackWorkspace, api_method

JsonDict = dict[str, Any]
EnvelopeType = Literal["slash_commands", "events_api", "interactive"]

# Slack puts these scopes in X-OAuth-Scopes; bolt copies them into context.authorize_result.
DEFAULT_SCOPES = (
    "channels:history,chat:write,commands,groups:history,im:history,im:write,reactions:read,"
    "reactions:write,users:read"
)
# Methods that need one of these scopes answer missing_scope without them, as in Slack (the
# others the fake serves are not checked). History: a DM (D...) needs im:history; any other
# channel either of the two, although Slack wants groups:history for a private one.
_SCOPES_NEEDED = {
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.open": ("im:write",),
}
_DM_HISTORY_SCOPE = "im:history"
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


async def _read_args(request: web.Request) -> JsonDict:
    args: JsonDict = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.read()
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise SlackError("invalid_json")
            args.update(parsed)
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


class FakeSlack(SlackWorkspace):
    """A Slack workspace plus the HTTP/websocket surface the real SDKs talk to."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",  # noqa: S107 - a fake's credential
        app_token: str = "xapp-test",  # noqa: S107
        team_id: str = p.TEAM_ID,
        bot_user_id: str = p.BOT_USER_ID,
        bot_id: str = p.BOT_ID,
        app_id: str = p.APP_ID,
        team_domain: str = p.TEAM_DOMAIN,
        scopes: str = DEFAULT_SCOPES,
        strict: bool = False,
    ) -> None:
        super().__init__(
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            app_id=app_id,
            strict=strict,
        )
        self.bot_token, self.app_token, self.scopes = bot_token, app_token, scopes
        self.latency = 0.0
        self.socket_messages: list[JsonDict] = []
        self.socket_connections = 0
        self._calls: list[ApiCall] = []
        self._faults: list[_Fault] = []
        self._revoked = False
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[JsonDict]] = {}
        self._changed = asyncio.Event()
        self._answering = Answering()
        self._stack = AsyncExitStack()
        self._port = 0

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/socket-mode", self._handle_socket)
        app.router.add_post("/commands/{rest:.*}", self._handle_response_url)
        self._port = await self._stack.enter_async_context(_serve(app))
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Open websockets would otherwise hold runner.cleanup() until its shutdown timeout.
        for ws in list(self._sockets):
            await ws.close()
        await self._stack.aclose()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}api/"

    # ---- recording --------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[ApiCall]:
        return [c for c in self._calls if method is None or c.method == method]

    async def settled(self) -> None:
        """Wait until every Web API call received is answered, late ones included (see
        `tests.fakes.answering`)."""
        await self._answering.settled()

    # ASYNC109: a per-call deadline reads better in tests than wrapping each wait in a timeout.
    async def wait_for_call(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[ApiCall]:
        await self._wait(lambda: len(self.calls(method)) >= count, timeout, f"{count}x {method}")
        return self.calls(method)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` Socket Mode connections have been accepted in total."""
        await self._wait(lambda: self.socket_connections >= count, timeout, f"socket #{count}")

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    await self._changed.wait()
        except TimeoutError:
            msg = (
                f"FakeSlack: no {what} within {timeout}s; calls: {[c.method for c in self._calls]}"
            )
            raise TimeoutError(msg) from None

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
            msg = "fail_next needs status, error or delay"
            raise ValueError(msg)
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
            with self._answering.call():
                args = await _read_args(request)
                # Slack still honours a legacy ``token`` argument when there is no Authorization.
                auth = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                token = auth or args.get("token")
                args.pop("token", None)
                await self._inject_fault(method, headers)
                self._authorize(method, token)
                self._check_scopes(method, args)
                body = self.call(method, args)
        except SlackError as e:
            status, body = e.status, {"ok": False, "error": e.error}
        self._calls.append(
            ApiCall(method, args, CIMultiDict(request.headers), token, status, copy.deepcopy(body))
        )
        self._notify()
        return web.json_response(body, status=status, headers=headers)

    async def _inject_fault(self, method: str, headers: dict[str, str]) -> None:
        fault = self._take_fault(method)
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is None or not (fault.status or fault.error):
            return
        status = fault.status or 200
        if status == 429:
            headers["Retry-After"] = str(fault.retry_after)
        default = "ratelimited" if status == 429 else _STATUS_ERRORS.get(status, "fatal_error")
        raise SlackError(fault.error or default, status=status)

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

    def _check_scopes(self, method: str, args: JsonDict) -> None:
        needed = _SCOPES_NEEDED.get(method)
        if method == "conversations.history" and str(args.get("channel", "")).startswith("D"):
            needed = (_DM_HISTORY_SCOPE,)
        if needed and not set(needed) & set(self.scopes.split(",")):
            raise SlackError("missing_scope")

    def response_url(self) -> str:
        """A response_url for payload builders; POSTs to it are recorded as "response_url" calls."""
        return f"{self.base_url}commands/{self.team_id}/{next(self._ids)}/{uuid.uuid4().hex}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        args = json.loads(raw) if raw else {}
        self._calls.append(ApiCall("response_url", args, CIMultiDict(request.headers)))
        self._notify()
        return web.Response(text="ok")

    # ---- Socket Mode ------------------------------------------------------------------------

    @api_method("apps.connections.open")
    def _apps_connections_open(self, args: JsonDict) -> JsonDict:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        url = f"ws://127.0.0.1:{self._port}/socket-mode?ticket={ticket}&app_id={self.app_id}"
        return {"url": url}

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
                # Like the SDK, treat only "{...}" frames as JSON; anything else is kept verbatim.
                data = json.loads(msg.data) if msg.data.startswith("{") else {"raw": msg.data}
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
        timeout: float = 5.0,  # noqa: ASYNC109
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
            msg = f"FakeSlack: no ack for {type} envelope {envelope_id} within {timeout}s"
            raise TimeoutError(msg) from None
        finally:
            self._acks.pop(envelope_id, None)

    async def disconnect_socket(self, reason: str = "refresh_requested") -> None:
        """Ask clients to reconnect, as Slack does every few hours."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        for ws in list(self._sockets):
            await ws.send_json(message)
