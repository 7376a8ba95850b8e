"""The aiohttp server every HTTP-facing part shares: Slack's events URL, /healthz and /metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
# What /healthz reports besides its checks (degraded channels): shown, never failing the check.
Details = Callable[[], Awaitable[Mapping[str, Any]]]


@runtime_checkable
class ServesHttp(Protocol):
    """An adapter that needs routes on the shared server (Slack in HTTP mode)."""

    def routes(self) -> list[web.RouteDef]: ...


class HttpServer:
    """Serves the given routes plus `GET /healthz`, which is 200 only when every check passes.

    `details` adds facts to the /healthz body that need an operator but not a restart (a channel
    the bot lost): they are listed, and the status stays 200.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        checks: Mapping[str, Check],
        routes: Sequence[web.RouteDef] = (),
        metrics: Callable[[], Awaitable[bytes]] | None = None,
        details: Details | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._checks = dict(checks)
        self._details = details
        self._metrics = metrics
        self._app = web.Application()
        self._app.add_routes([web.get("/healthz", self._healthz), *routes])
        if metrics is not None:
            self._app.add_routes([web.get("/metrics", self._serve_metrics)])
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("HTTP server listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        results = {}
        for name, check in self._checks.items():
            try:
                results[name] = await check()
            except Exception:
                log.exception("health check %s failed", name)
                results[name] = False
        healthy = all(results.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "unhealthy", "checks": results}
        if self._details is not None:
            try:
                body.update(await self._details())
            except Exception:
                log.exception("health details failed")  # the store check says what is wrong
        return web.Response(
            text=json.dumps(body), status=200 if healthy else 503, content_type="application/json"
        )

    async def _serve_metrics(self, _: web.Request) -> web.Response:
        assert self._metrics is not None  # noqa: S101 - route exists only with a metrics source
        # Prometheus' text exposition format, version 0.0.4.
        return web.Response(
            body=await self._metrics(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
