"""The bolt listeners: `/review`, reactions, relay-post buttons and the Done form, to the core.

`register` attaches them to the AsyncApp (`adapters.slack.adapter` calls it once). Handlers are
parse, dispatch, render. They never call the Slack Web API to say something: every message goes
through the outbox and `SlackSender`. bolt runs with `process_before_response=True`, so an
event's effects are committed before Slack sees the 200, and a failure answers 500, which Slack
retries (a retry of a handled event is a no-op: the dispatcher records its key).

Two kinds of Web API call are made inline, by design. Reads: `users.info` (through `SlackUsers`,
cached) for admin rights and display names. And one write, the exception to "everything through
the outbox": the Done button opens its form with `views.open`, which *is* the answer to the
click. Its `trigger_id` expires 3 s after the click, and an outbox row would be sent too late to
use it, so it is called in the handler, bounded by `FORM_TIMEOUT`, and never retried. If Slack
will not open the form, the click completes the request without a response, so the button never
silently does nothing. The form's submission (a view_submission) is then a DONE like any other,
keyed by the view id, and its reply goes out as an ephemeral notice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any, TypeVar

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import inbound, render
from adapters.slack.users import SlackUsers
from bot import texts
from bot.model import ButtonAction, ButtonPressed, CommandReceived, ReactionChanged, Reply
from bot.ports import Clock, Inbox

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/review"
EVENTS = ("reaction_added", "reaction_removed")  # every event slack/manifest.yml subscribes to
FORM_TIMEOUT = 2.0  # seconds: Slack's trigger_id expires 3 s after the click
# Claim and Release dispatch at once; Done opens the form first.
_ACTION_PATTERN = re.compile(
    "^("
    + "|".join(re.escape(i) for a, i in inbound.ACTION_IDS.items() if a is not ButtonAction.DONE)
    + ")$"
)
_E = TypeVar("_E", CommandReceived, ReactionChanged, ButtonPressed)


# Verbs where a workspace admin may act on someone else's request (design §5), and setup.
_ADMIN_VERBS = frozenset({"setup", "release", "done", "cancel", "reopen", "close"})


def _verb(text: str) -> str:
    # The verb as `commands.parse` reads it, without a second full parse of every command.
    words = text.split(maxsplit=1)
    return words[0].lower().rstrip(":") if words else ""


def _needs_admin(text: str) -> bool:
    # The verb says whether admin rights can matter; the answer is cached per user.
    return _verb(text) in _ADMIN_VERBS


def _named(event: _E, name: str) -> _E:
    """The event with the member's display name set (unchanged when `name` is empty)."""
    if not name or name == event.member.display_name:
        return event
    return replace(event, member=replace(event.member, display_name=name))


async def _with_name(users: SlackUsers, event: _E) -> _E:
    """Reactions and buttons: the name Slack shows for the user, else whatever the payload had."""
    member = event.member
    found = await users.display_name(member.community_id, member.user_id, member.display_name)
    return _named(event, found)


async def _pressed(users: SlackUsers, event: ButtonPressed) -> ButtonPressed:
    """A Release or Done press (the button or the Done form) with the name Slack shows and the
    presser's admin rights: an admin's press acts on someone else's claim, as the commands do and
    as on Discord, whose interactions carry the rights."""
    event = await _with_name(users, event)
    if event.action is ButtonAction.CLAIM:
        return event
    member = event.member
    return replace(event, is_admin=await users.is_admin(member.community_id, member.user_id))


async def _apply(inbox: Inbox, event: ReactionChanged | ButtonPressed) -> BoltResponse | None:
    """Hand an event to the core; on failure answer 500 (the store rolled back; Slack retries)."""
    try:
        await inbox.handle(event)
    except Exception:
        log.exception("Slack %s %s failed", type(event).__name__, event.event_key)
        return BoltResponse(status=500, body="")
    return None


async def _open_done_form(client: AsyncWebClient, trigger_id: str, event: ButtonPressed) -> bool:
    """Open the Done form for this click (see the module docstring); False if Slack would not."""
    view = render.render_done_form(event.request_id, event.channel_id, event.message_id)
    try:
        async with asyncio.timeout(FORM_TIMEOUT):
            await client.views_open(trigger_id=trigger_id, view=view)
    except (SlackClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
        reason = exc.response.get("error") if isinstance(exc, SlackApiError) else None
        log.warning(
            "Slack views.open for request #%d failed (%s): completing it without a response",
            event.request_id,
            reason or type(exc).__name__,
        )
        return False
    return True


async def _command_event(users: SlackUsers, event: CommandReceived) -> CommandReceived:
    """The command with the member's name and, where it can matter, their admin rights."""
    member = event.member
    # A cached name keeps a person's name the same across commands and reactions; the payload's
    # handle serves otherwise, and Slack is asked only when there is none.
    event = _named(event, users.cached_name(member.community_id, member.user_id))
    if not event.member.display_name:
        event = await _with_name(users, event)
    if _needs_admin(event.text):
        admin = await users.is_admin(member.community_id, member.user_id)
        event = replace(event, is_admin=admin)
    return event


def register(
    app: AsyncApp,
    inbox: Inbox,
    clock: Clock,
    *,
    users: SlackUsers,
    client: AsyncWebClient,
    bot_user_id: str | None = None,
) -> None:
    """Attach `/review`, reaction events, relay-post buttons and the Done form to the bolt app."""

    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        event = inbound.parse_slash_command(body, received_at=clock.now())
        try:
            if _verb(event.text) == "setup" and inbound.in_direct_message(body):
                # Slack delivers the command from a DM the bot is not in: nothing could be
                # posted there.
                reply = Reply(texts.SETUP_NOT_A_CHANNEL)
            else:
                reply = await inbox.handle(await _command_event(users, event))
        except Exception:
            log.exception("Slack command %s failed", event.event_key)
            await ack(**render.render_apology())
            return
        await ack(**render.render_reply(reply))

    async def on_reaction(body: dict[str, Any]) -> BoltResponse | None:
        event = inbound.parse_reaction(body, received_at=clock.now(), bot_user_id=bot_user_id)
        if event is None:
            return None
        member = event.member
        # Triage bots react 👀 to every message; a bot claims nothing (Discord skips bots too).
        # The one users.info answer serves for the name as well.
        if await users.is_bot(member.community_id, member.user_id):
            return None
        named = _named(event, users.cached_name(member.community_id, member.user_id))
        return await _apply(inbox, named)

    async def on_action(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        # Slack shows nothing from a block_actions ack; the reply goes out as an ephemeral notice.
        event = inbound.parse_block_action(body, received_at=clock.now())
        failed = None if event is None else await _apply(inbox, await _pressed(users, event))
        await ack()
        return failed

    async def on_done(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        event = inbound.parse_block_action(body, received_at=clock.now())
        failed = None
        if event is not None and not await _open_done_form(
            client, str(body.get("trigger_id") or ""), event
        ):
            # Done without a response beats doing nothing; no time is left to ask for a name.
            member = event.member
            event = _named(event, users.cached_name(member.community_id, member.user_id))
            failed = await _apply(inbox, event)
        await ack()
        return failed

    async def on_done_form(ack: AsyncAck, body: dict[str, Any]) -> None:
        event = inbound.parse_view_submission(body, received_at=clock.now())
        if event is None:
            log.warning("Slack: a Done form without a valid request; closed")
            await ack(response_action="clear")
            return
        try:
            await inbox.handle(await _pressed(users, event))
        except Exception:
            # The form stays open with the apology under the input, so the response is not lost.
            log.exception("Slack Done form %s failed", event.event_key)
            await ack(**render.render_form_errors(texts.APOLOGY))
            return
        # The reply (thanks, or why not) goes out as an ephemeral notice, like a button's.
        await ack(response_action="clear")

    app.command(COMMAND)(on_command)
    for name in EVENTS:
        app.event(name)(on_reaction)
    app.action(_ACTION_PATTERN)(on_action)
    app.action(inbound.ACTION_IDS[ButtonAction.DONE])(on_done)
    app.view(inbound.DONE_CALLBACK_ID)(on_done_form)
