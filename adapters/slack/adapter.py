"""SlackAdapter: the `bot.ports.Adapter` for Slack, and `build_slack` that `bot.app` calls.

`start` asks `auth.test` who the token is (the workspace and the bot user), registers the
handlers of `adapters.slack.app` on the bolt app once, connects the workspace as a community and,
with an `xapp-` token, opens the Socket Mode connection; otherwise `routes()` serves
`POST /slack/events`. All Web API calls share one keep-alive aiohttp session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import EVENTS_PATH, register
from adapters.slack.send import UNAUTHORIZED, SlackSender
from adapters.slack.users import SlackUsers
from adapters.slack.web import bolt_endpoint
from bot.errors import ConfigError
from bot.model import Community, Platform
from bot.ports import Clock, Inbox, Sender
from bot.settings import Settings

log = logging.getLogger(__name__)

API_TIMEOUT = 10  # seconds per Web API call; the outbox retries what times out


@dataclass(frozen=True, slots=True)
class Identity:
    """What `auth.test` says about our token: the workspace and the bot user."""

    team_id: str
    team_name: str
    bot_user_id: str


class SlackAdapter:
    """One workspace, one bot token: HTTP (`routes()`) or Socket Mode (an `xapp-` token)."""

    platform = Platform.SLACK

    def __init__(
        self,
        *,
        app: AsyncApp,
        client: AsyncWebClient,
        clock: Clock,
        review_channel: str | None = None,
        app_token: str | None = None,
    ) -> None:
        self._sender = SlackSender(client)
        # Typed as the port: Adapter.sender is a mutable protocol member, hence invariant.
        self.sender: Sender = self._sender
        self.app = app
        self._client = client
        self._clock = clock
        self._review_channel = review_channel
        self._app_token = app_token
        self._socket: AsyncSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self.identity: Identity | None = None
        self._registered = False

    @property
    def socket_mode(self) -> bool:
        return self._app_token is not None

    @property
    def connected(self) -> bool:
        if self.identity is None:
            return False
        if self._socket is None:
            return not self.socket_mode
        client = self._socket.client
        session = client.current_session
        return not client.closed and session is not None and not session.closed

    def routes(self) -> list[web.RouteDef]:
        """`POST /slack/events` for commands, events and buttons alike; none in Socket Mode."""
        return [] if self.socket_mode else [web.post(EVENTS_PATH, bolt_endpoint(self.app))]

    async def start(self, inbox: Inbox) -> None:
        # One keep-alive session for every Web API call (slack_sdk opens one per call otherwise).
        # slack_sdk applies its own timeout only to sessions it creates: bound ours, or a call
        # could hang for aiohttp's default 300 s.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT))
        self._client.session = self._session
        try:
            await self._connect(inbox)
        except BaseException:
            await self.stop()
            raise

    async def _connect(self, inbox: Inbox) -> None:
        identity = await self._identify()
        self._sender.bot_user_id = identity.bot_user_id
        if not self._registered:  # bolt keeps listeners for good: a restart must not add twice
            register(
                self.app,
                inbox,
                self._clock,
                users=SlackUsers(self._client, self._clock),
                client=self._client,
                bot_user_id=identity.bot_user_id,
            )
            self._registered = True
        await inbox.connect_community(
            Community(
                platform=Platform.SLACK,
                community_id=identity.team_id,
                name=identity.team_name,
                review_channel_id=self._review_channel,
            )
        )
        if self._app_token is not None:
            await self._open_socket(self._app_token)
        self.identity = identity
        log.info("Slack: connected to %s (%s)", identity.team_name, identity.team_id)

    async def stop(self) -> None:
        self.identity = None
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _open_socket(self, app_token: str) -> None:
        self._socket = AsyncSocketModeHandler(self.app, app_token=app_token)
        client = self._socket.client
        try:
            # Asked here, not inside connect(), which would retry a bad token forever.
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            code = str(exc.response.get("error", ""))
            msg = f"SLACK_APP_TOKEN: Slack refused a Socket Mode connection ({code})"
            raise ConfigError(msg) from None
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def _identify(self) -> Identity:
        try:
            found = await self._client.auth_test()
        except SlackApiError as exc:
            code = str(exc.response.get("error", ""))
            if code in UNAUTHORIZED:
                msg = f"SLACK_BOT_TOKEN: Slack rejected the token ({code})"
                raise ConfigError(msg) from None
            raise
        return Identity(
            team_id=str(found["team_id"]),
            team_name=str(found.get("team") or ""),
            bot_user_id=str(found["user_id"]),
        )


def build_slack(settings: Settings, clock: Clock) -> SlackAdapter:
    """The adapter the settings describe: Socket Mode with SLACK_APP_TOKEN, else HTTP."""
    if settings.slack_bot_token is None:
        msg = "SLACK_BOT_TOKEN: required for Slack"
        raise ConfigError(msg)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    if app_token is None and not secret:
        # With an empty secret anyone could sign a request: refuse to start instead.
        msg = "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN in HTTP mode"
        raise ConfigError(msg)
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=API_TIMEOUT,
        retry_handlers=[],  # the outbox owns retries (design §6): none hidden in the client
    )
    app = AsyncApp(
        client=client,
        # Socket Mode skips verification; "" keeps bolt from reading the environment itself.
        signing_secret=secret,
        process_before_response=True,
    )
    return SlackAdapter(
        app=app,
        client=client,
        clock=clock,
        review_channel=settings.slack_review_channel,
        app_token=app_token,
    )
