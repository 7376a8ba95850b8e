"""Builders for the payloads Slack sends to an app, shaped as Slack documents them.

Owns the inbound side of the Slack fixture: slash commands, Events API callbacks,
interactivity (block_actions, view_submission) and url_verification. Each kind comes
as a ``*_payload`` dict (what a Socket Mode envelope carries) and a ``*_body`` bytes
(what Slack POSTs over HTTP, to be signed with ``fake_slack.sign``).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any, Literal
from urllib.parse import urlencode

JsonDict = dict[str, Any]

TEAM_ID = "T0001"
TEAM_DOMAIN = "fake-team"
APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
CHANNEL_ID = "C0001"
USER_ID = "U0ALICE"
USER_NAME = "alice"
# Slack stopped checking this legacy token long ago but still sends it in every payload.
VERIFICATION_TOKEN = "fake-verification-token"
# Port 9 (discard) on loopback: a payload built without a fake never reaches anything real.
UNUSED_RESPONSE_URL = "http://127.0.0.1:9/commands/T0001/0/unused"

_event_ids = itertools.count(1)


def form_body(payload: JsonDict) -> bytes:
    """Form-encode a flat payload the way Slack POSTs slash commands."""
    return urlencode(payload).encode()


def json_body(payload: JsonDict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def interactive_body(payload: JsonDict) -> bytes:
    """Interactivity is JSON wrapped in a single ``payload`` form field."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def slash_command_payload(
    text: str,
    *,
    command: str = "/review",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    channel_id: str = CHANNEL_ID,
    channel_name: str = "general",
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    trigger_id: str | None = None,
    api_app_id: str = APP_ID,
    response_url: str = UNUSED_RESPONSE_URL,
    enterprise_id: str | None = None,
) -> dict[str, str]:
    """All values are strings: on the wire this is a form, and Socket Mode keeps that."""
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or f"{int(time.time())}.{next(_event_ids)}.fake",
    }
    if enterprise_id is not None:
        payload |= {"enterprise_id": enterprise_id, "enterprise_name": "Fake Org"}
    return payload


def slash_command_body(text: str, **kwargs: Any) -> bytes:
    return form_body(slash_command_payload(text, **kwargs))


def event_callback_payload(
    event: JsonDict,
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    event_time: int | None = None,
    bot_user_id: str = BOT_USER_ID,
) -> JsonDict:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):09d}",
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{team_id}",
    }


def event_callback_body(event: JsonDict, **kwargs: Any) -> bytes:
    return json_body(event_callback_payload(event, **kwargs))


def reaction_event(
    kind: Literal["reaction_added", "reaction_removed"] = "reaction_added",
    *,
    user: str = USER_ID,
    reaction: str = "eyes",
    channel: str = CHANNEL_ID,
    ts: str,
    item_user: str = BOT_USER_ID,
    event_ts: str | None = None,
) -> JsonDict:
    return {
        "type": kind,
        "user": user,
        "reaction": reaction,
        "item_user": item_user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": event_ts or f"{time.time():.6f}",
    }


def message_event(
    text: str,
    *,
    user: str = USER_ID,
    channel: str = CHANNEL_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: Literal["channel", "group", "im", "mpim"] = "channel",
    team_id: str = TEAM_ID,
) -> JsonDict:
    ts = ts or f"{time.time():.6f}"
    event: JsonDict = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "team": team_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    team_id: str = TEAM_ID,
    channel_id: str = CHANNEL_ID,
    message_ts: str,
    trigger_id: str | None = None,
    block_id: str = "actions",
    message: JsonDict | None = None,
    response_url: str = UNUSED_RESPONSE_URL,
    api_app_id: str = APP_ID,
) -> JsonDict:
    """A button click on a message (the common case: ``type: button`` in a message container)."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{int(time.time())}.{next(_event_ids)}.fake",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": message or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def block_actions_body(action_id: str, value: str, **kwargs: Any) -> bytes:
    return interactive_body(block_actions_payload(action_id, value, **kwargs))


def view_submission_payload(
    callback_id: str,
    values: JsonDict,
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    team_id: str = TEAM_ID,
    view_id: str = "V0000001",
    private_metadata: str = "",
    trigger_id: str | None = None,
    view_hash: str = "1700000000.fakehash",
    api_app_id: str = APP_ID,
    bot_id: str = BOT_ID,
) -> JsonDict:
    """``values`` is view.state.values: ``{block_id: {action_id: {"type": ..., "value": ...}}}``."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or f"{int(time.time())}.{next(_event_ids)}.fake",
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": view_hash,
            "title": {"type": "plain_text", "text": "Review", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": api_app_id,
            "external_id": "",
            "bot_id": bot_id,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(callback_id: str, values: JsonDict, **kwargs: Any) -> bytes:
    return interactive_body(view_submission_payload(callback_id, values, **kwargs))


def url_verification_body(challenge: str) -> bytes:
    return json_body(
        {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    )
