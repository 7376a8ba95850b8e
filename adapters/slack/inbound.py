"""Slack payloads in, model events out: pure functions, no I/O, never raising on what Slack sends.

Each `parse_*` takes the payload bolt hands a listener (the form fields of a slash command, the
Events API envelope, the block_actions or view_submission payload) and returns an event with a
de-duplication key, or None when the payload is not one of ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.commands import MAX_RESPONSE, clean_text
from bot.model import (
    ButtonAction,
    ButtonPressed,
    CommandReceived,
    Member,
    Platform,
    ReactionChanged,
)

ACTION_PREFIX = "review_"
ACTION_IDS = {action: f"{ACTION_PREFIX}{action.value}" for action in ButtonAction}
_ACTIONS_BY_ID = {action_id: action for action, action_id in ACTION_IDS.items()}
DONE_CALLBACK_ID = ACTION_IDS[ButtonAction.DONE]  # the Done form's callback_id
RESPONSE_BLOCK_ID = "response"
RESPONSE_ACTION_ID = "response"
_REACTION_EVENTS = {"reaction_added": True, "reaction_removed": False}
_MAX_REQUEST_ID_DIGITS = 9
# With "escape channels, users, and links" on, Slack wraps links as <url> or <url|label>.
_LINK_MARKUP = re.compile(r"<(https?://[^|>\s]*)(?:\|[^>]*)?>")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _member(team_id: str, user_id: str, name: str) -> Member:
    return Member(platform=Platform.SLACK, community_id=team_id, user_id=user_id, display_name=name)


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<`, `>` in what people typed (render escapes it again)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command_text(raw: str) -> str:
    """Slash command text as the person typed it: link markup unwrapped, entities decoded.

    Slack escapes `&`, `<` and `>` in command text, so a link with a query string arrives with
    `&amp;`; the core must see the real link. Decoding is safe because every renderer escapes.
    """
    return unescape(_LINK_MARKUP.sub(r"\1", raw))


def parse_slash_command(body: Mapping[str, Any], *, received_at: datetime) -> CommandReceived:
    """`/review ...`: keyed by `trigger_id`, which Slack mints once per invocation."""
    team_id, user_id = _str(body.get("team_id")), _str(body.get("user_id"))
    trigger_id = _str(body.get("trigger_id"))
    # Slack always sends a trigger_id; without one, a key from the moment still keeps keys unique.
    key = trigger_id or f"{team_id}:{user_id}:{received_at.isoformat()}"
    return CommandReceived(
        event_key=f"slack:command:{key}",
        member=_member(team_id, user_id, _str(body.get("user_name"))),
        channel_id=_str(body.get("channel_id")),
        text=command_text(_str(body.get("text"))),
        received_at=received_at,
    )


def in_direct_message(body: Mapping[str, Any]) -> bool:
    """Whether a slash command was typed in a DM or group DM, where the bot cannot post."""
    name = _str(body.get("channel_name"))
    return (
        name == "directmessage"
        or name.startswith("mpdm-")
        or _str(body.get("channel_id")).startswith("D")
    )


def event_stamp(raw: str) -> Decimal | None:
    """Slack's `event_ts` ("1700000001.000200") as an exact decimal; None if it is not one.

    Not a float (which rounds the microseconds away) and not the string (where "999.9" sorts
    after "1000.0").
    """
    try:
        stamp = Decimal(raw)
    except InvalidOperation:
        return None
    return stamp if stamp.is_finite() else None


def installed_team(body: Mapping[str, Any]) -> str:
    """The workspace an Events API envelope was delivered to: the one commands come from.

    In a channel another organisation shares with us (Slack Connect), the top-level `team_id`
    is the organisation that created the channel; `authorizations[0].team_id` is our install
    (bolt reads it the same way, `extract_team_id`).
    """
    authorizations = body.get("authorizations")
    if isinstance(authorizations, list) and authorizations:
        team = _str(_map(authorizations[0]).get("team_id"))
        if team:
            return team
    return _str(body.get("team_id")) or _str(_map(body.get("event")).get("team"))


def emoji_name(reaction: str) -> str:
    """`thumbsup::skin-tone-2` -> `thumbsup`: a skin tone does not change what a reaction means."""
    return reaction.split("::", 1)[0].strip(":")


def parse_reaction(
    body: Mapping[str, Any], *, received_at: datetime, bot_user_id: str | None = None
) -> ReactionChanged | None:
    """A `reaction_added`/`reaction_removed` envelope as a ReactionChanged, or None.

    None for reactions on files, the bot's own reactions, reactions on messages someone else
    wrote, and anything incomplete. The key is the envelope's `event_id`, which Slack keeps
    across its retries of one event; `event_ts` orders one user's reactions, as Slack may
    deliver them out of order.
    """
    event = _map(body.get("event"))
    added = _REACTION_EVENTS.get(_str(event.get("type")))
    item = _map(event.get("item"))
    user_id, event_id = _str(event.get("user")), _str(body.get("event_id"))
    channel_id, message_ts = _str(item.get("channel")), _str(item.get("ts"))
    emoji = emoji_name(_str(event.get("reaction")))
    if added is None or item.get("type") != "message" or user_id == bot_user_id:
        return None
    author = _str(event.get("item_user"))
    if bot_user_id and author and author != bot_user_id:
        return None  # relay posts are the bot's own: skip the store for everyone else's messages
    if not (user_id and event_id and channel_id and message_ts and emoji):
        return None
    return ReactionChanged(
        event_key=f"slack:event:{event_id}",
        # Events carry no name; the store keeps the last one.
        member=_member(installed_team(body), user_id, ""),
        channel_id=channel_id,
        message_id=message_ts,
        emoji=emoji,
        added=added,
        received_at=received_at,
        occurred_at=event_stamp(_str(event.get("event_ts"))),
    )


def _request_id(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_REQUEST_ID_DIGITS:
        return None
    return int(value)


def parse_block_action(body: Mapping[str, Any], *, received_at: datetime) -> ButtonPressed | None:
    """A Claim/Release/Done click on a relay post; None for any other action.

    block_actions carry no event_id; `trigger_id` is minted once per click, so it is the key.
    The reply goes out as an ephemeral notice: Slack shows nothing from a block_actions ack.
    """
    actions = body.get("actions")
    action = _map(actions[0]) if isinstance(actions, list) and actions else {}
    kind = _ACTIONS_BY_ID.get(_str(action.get("action_id")))
    request_id = _request_id(_str(action.get("value")))
    user, container = _map(body.get("user")), _map(body.get("container"))
    user_id = _str(user.get("id"))
    channel_id = _str(container.get("channel_id")) or _str(_map(body.get("channel")).get("id"))
    message_ts = _str(container.get("message_ts")) or _str(_map(body.get("message")).get("ts"))
    if kind is None or request_id is None or not (user_id and channel_id and message_ts):
        return None
    team_id = _str(_map(body.get("team")).get("id")) or _str(user.get("team_id"))
    key = _str(body.get("trigger_id")) or f"{user_id}:{_str(action.get('action_ts'))}"
    return ButtonPressed(
        event_key=f"slack:action:{key}",
        member=_member(team_id, user_id, _str(user.get("username")) or _str(user.get("name"))),
        channel_id=channel_id,
        message_id=message_ts,
        action=kind,
        request_id=request_id,
        received_at=received_at,
        reply_inline=False,
    )


def parse_view_submission(
    body: Mapping[str, Any], *, received_at: datetime
) -> ButtonPressed | None:
    """The Done form submitted: a DONE press carrying the response (empty when left blank).

    The request and post come from the form's `private_metadata`, which only the app sets. The key
    is the view id: one form, one completion, however often it is submitted. The response is
    cleaned as `/review done <id> <response>` cleans it: one line, no control characters.
    """
    view = _map(body.get("view"))
    if view.get("callback_id") != DONE_CALLBACK_ID:
        return None
    try:
        metadata = _map(json.loads(_str(view.get("private_metadata"))))
    except ValueError:
        return None
    raw_id = metadata.get("request_id")
    request_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else 0
    channel_id, message_ts = _str(metadata.get("channel")), _str(metadata.get("ts"))
    user = _map(body.get("user"))
    user_id, view_id = _str(user.get("id")), _str(view.get("id"))
    valid_id = 0 < request_id < 10**_MAX_REQUEST_ID_DIGITS
    if not (valid_id and channel_id and user_id and view_id):
        return None
    values = _map(_map(view.get("state")).get("values"))
    field = _map(_map(values.get(RESPONSE_BLOCK_ID)).get(RESPONSE_ACTION_ID))
    # Submitted from a Slack Connect partner's workspace, `team` is that workspace (unlike a
    # click's); `app_installed_team_id` is ours, as on the click (bolt reads it the same way).
    team_id = (
        _str(view.get("app_installed_team_id"))
        or _str(_map(body.get("team")).get("id"))
        or _str(user.get("team_id"))
    )
    return ButtonPressed(
        event_key=f"slack:view:{view_id}",
        member=_member(team_id, user_id, _str(user.get("username")) or _str(user.get("name"))),
        channel_id=channel_id,
        message_id=message_ts,
        action=ButtonAction.DONE,
        request_id=request_id,
        received_at=received_at,
        response=clean_text(_str(field.get("value")), MAX_RESPONSE),
        reply_inline=False,
    )
