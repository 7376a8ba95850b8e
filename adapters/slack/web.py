"""aiohttp in front of bolt: `POST /slack/events` translated to an AsyncBoltRequest and back.

This replaces bolt's own `to_bolt_request` for one reason: slack-bolt 1.30 (`parse_body` in
`slack_bolt/request/internals.py`) treats any form body that contains the substring `payload`
as interactivity, looks for a `payload` field, finds none and parses a slash command such as
`/review https://example.com/payload-design` as `{}`, which then 404s. `FormSafeBoltRequest`
corrects only that case, only the parsed view, after bolt has kept the raw body: signature
verification still runs on the untouched bytes Slack signed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

_JSON = "application/json"


def form_fields(raw_body: str, content_type: str | None) -> dict[str, str] | None:
    """The fields of a form body that carries no `payload` field, else None (bolt got it right).

    Interactivity posts exactly one field named `payload`; a slash command never has one, so the
    field name, not a substring of the body, tells them apart.
    """
    # The same test bolt uses to choose its form branch, so JSON bodies are never touched.
    if content_type == _JSON or raw_body.startswith("{") or "payload" not in raw_body:
        return None
    fields = dict(parse_qsl(raw_body, keep_blank_values=True))
    return None if "payload" in fields else fields


class FormSafeBoltRequest(AsyncBoltRequest):
    """An AsyncBoltRequest whose form body is parsed by field names (see the module docstring)."""

    def __init__(
        self,
        *,
        body: str | dict[str, Any],
        query: str | dict[str, str] | dict[str, Sequence[str]] | None = None,
        headers: dict[str, str | Sequence[str]] | None = None,
        context: dict[str, Any] | None = None,
        mode: str = "http",
    ) -> None:
        super().__init__(body=body, query=query, headers=headers, context=context, mode=mode)
        fields = form_fields(self.raw_body, self.content_type) if mode == "http" else None
        if fields is not None:
            # raw_body stays as received: AsyncRequestVerification signs and checks raw_body.
            self.body = fields
            self.context = build_async_context(AsyncBoltContext(context or {}), fields)

    def to_copyable(self) -> FormSafeBoltRequest:
        # bolt copies requests for lazy listeners by re-parsing raw_body; keep the fix in copies.
        return FormSafeBoltRequest(
            body=self.raw_body if self.mode == "http" else self.body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


async def to_bolt_request(request: web.Request) -> FormSafeBoltRequest:
    raw = await request.read()
    headers: dict[str, str | Sequence[str]] = dict(request.headers.items())
    # Undecodable bytes cannot carry a valid signature: replace them and let verification say 401.
    return FormSafeBoltRequest(
        body=raw.decode("utf-8", errors="replace"), query=request.query_string, headers=headers
    )


def bolt_endpoint(app: AsyncApp) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that runs one Slack request through the bolt app."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    return endpoint
