"""In-memory Slack workspace: channels, messages, users, DMs, views, and the Web API methods.

Owns Slack's state and the per-method semantics (argument checks, error codes, response
shapes). It knows nothing about HTTP; ``fake_slack.FakeSlack`` puts it on the wire and adds
auth, recording and fault injection.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.fakes import slack_payloads as p

JsonDict = dict[str, Any]
Method = Callable[[Any, JsonDict], JsonDict]

METHODS: dict[str, Method] = {}


def api_method(name: str) -> Callable[[Method], Method]:
    """Register a handler for Web API method ``name``; it returns the body minus ``ok``."""

    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


class SlackError(Exception):
    """Answer ``{"ok": false, "error": <code>}``; Slack uses HTTP 200 for all but 429/5xx."""

    def __init__(self, error: str, *, status: int = 200) -> None:
        super().__init__(error)
        self.error, self.status = error, status


def _json_arg(args: JsonDict, key: str) -> Any:
    """Form-encoded callers send blocks/views as JSON strings, JSON callers as objects."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{key}") from None
    return value


def _flag(args: JsonDict, key: str) -> bool:
    """A boolean argument as JSON (true) or in a query string or form ("1", "true")."""
    return args.get(key) in (True, 1, "1", "true")


def _required(args: JsonDict, key: str, error: str) -> str:
    value = args.get(key)
    if not value:
        raise SlackError(error)
    return str(value)


class SlackWorkspace:
    """One team with one bot user; state changes only through Web API methods or seeding."""

    def __init__(
        self,
        *,
        team_id: str = p.TEAM_ID,
        team_domain: str = p.TEAM_DOMAIN,
        bot_user_id: str = p.BOT_USER_ID,
        bot_id: str = p.BOT_ID,
        app_id: str = p.APP_ID,
        strict: bool = False,
    ) -> None:
        """``strict``: unknown channels/users are errors, as in Slack, instead of auto-created."""
        self.team_id, self.team_domain, self.app_id = team_id, team_domain, app_id
        self.bot_user_id, self.bot_id, self.strict = bot_user_id, bot_id, strict
        self.ephemerals: list[JsonDict] = []
        self._channels: dict[str, dict[str, JsonDict]] = {}
        self._users: dict[str, JsonDict] = {}
        self._dms: dict[tuple[str, ...], str] = {}
        self._views: dict[str, JsonDict] = {}
        self._used_triggers: set[str] = set()
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self.add_user(bot_user_id, name="reviewrelay", is_bot=True)

    def call(self, method: str, args: JsonDict) -> JsonDict:
        handler = METHODS.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        return {"ok": True, **handler(self, args)}

    def messages(self, channel: str) -> list[JsonDict]:
        """Current channel state in ts order (updates applied, deletions gone, replies included)."""
        stored = self._channels.get(channel, {})
        return [copy.deepcopy(stored[ts]) for ts in sorted(stored)]

    def views(self) -> list[JsonDict]:
        return [copy.deepcopy(v) for v in self._views.values()]

    # ---- state helpers ----------------------------------------------------------------------

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

    @api_method("auth.test")
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

    @api_method("chat.postMessage")
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

    @api_method("chat.update")
    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args)
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        self._apply_content(msg, args)
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": copy.deepcopy(msg),
        }

    @api_method("chat.delete")
    def _chat_delete(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args)
        if msg.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        del self._channels[channel][msg["ts"]]
        return {"channel": channel, "ts": msg["ts"]}

    @api_method("chat.postEphemeral")
    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = self._channel(args.get("channel"))
        msg: JsonDict = {"channel": channel, "user": _required(args, "user", "user_not_in_channel")}
        self._apply_content(msg, args)
        msg["ts"] = self._next_ts()
        self.ephemerals.append(msg)
        return {"message_ts": msg["ts"]}

    @api_method("conversations.history")
    def _conversations_history(self, args: JsonDict) -> JsonDict:
        """Top-level messages newest first, between ``oldest`` and ``latest`` (exclusive unless
        ``inclusive``), ``limit`` a page (default 100, at most 999) with a ``next_cursor``;
        metadata only with ``include_all_metadata``, as in Slack."""
        # A channel the workspace has answers with no messages before its first post; outside
        # `strict` every channel asked for exists, as it does for chat.postMessage.
        channel = self._channel(args.get("channel"))
        inclusive = _flag(args, "inclusive")
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or 1e12)
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                latest, inclusive = float(base64.b64decode(cursor).decode().split(":")[1]), True
            except (ValueError, IndexError):
                raise SlackError("invalid_cursor") from None
        limit = max(1, min(int(args.get("limit") or 100), 999))
        found = [
            copy.deepcopy(msg)
            for ts, msg in sorted(self._channels[channel].items(), reverse=True)
            if msg.get("thread_ts", ts) == ts
            and (oldest <= float(ts) if inclusive else oldest < float(ts))
            and (float(ts) <= latest if inclusive else float(ts) < latest)
        ]
        page, rest = found[:limit], found[limit:]
        if not _flag(args, "include_all_metadata"):
            for msg in page:
                msg.pop("metadata", None)
        body: JsonDict = {"messages": page, "has_more": bool(rest), "pin_count": 0}
        if rest:
            next_ts = f"next_ts:{rest[0]['ts']}".encode()
            body["response_metadata"] = {"next_cursor": base64.b64encode(next_ts).decode()}
        return body

    @api_method("conversations.open")
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

    @api_method("users.info")
    def _users_info(self, args: JsonDict) -> JsonDict:
        return {"user": copy.deepcopy(self._user(_required(args, "user", "user_not_found")))}

    @api_method("reactions.add")
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

    @api_method("reactions.remove")
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

    @api_method("reactions.get")
    def _reactions_get(self, args: JsonDict) -> JsonDict:
        channel, msg = self._message(args, "timestamp")
        return {"type": "message", "channel": channel, "message": copy.deepcopy(msg)}

    @api_method("views.open")
    def _views_open(self, args: JsonDict) -> JsonDict:
        trigger_id = _required(args, "trigger_id", "invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        view = self._store_view(_json_arg(args, "view"), f"V0{next(self._ids):07d}")
        self._used_triggers.add(trigger_id)
        return {"view": view}

    @api_method("views.update")
    def _views_update(self, args: JsonDict) -> JsonDict:
        external_id = args.get("external_id")
        view_id = args.get("view_id") or next(
            (
                v["id"]
                for v in self._views.values()
                if external_id and v["external_id"] == external_id
            ),
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
