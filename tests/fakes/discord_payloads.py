"""Payload builders and declarative world types for the fake Discord in ``fake_discord.py``.

Owns: snowflake minting, the ``FakeUser``/``FakeRole``/``FakeMember``/``FakeChannel``/``FakeGuild``
declarations tests use to describe a guild, permission arithmetic, and every JSON shape the
fake sends (users, members, channels, guilds, messages, reactions, interactions, error bodies).
No I/O and no discord.py import here: shapes follow the Discord API v10 documentation and the
fields discord.py 2.7.1 indexes without ``.get()`` (noted where they would otherwise bite).
"""

from __future__ import annotations

import copy
import datetime
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_DIRECT_MESSAGE_TYPING = 1 << 14
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Permission bits used by the default roles.
PERM_CREATE_INSTANT_INVITE = 1 << 0
PERM_ADMINISTRATOR = 1 << 3
PERM_ADD_REACTIONS = 1 << 6
PERM_VIEW_CHANNEL = 1 << 10
PERM_SEND_MESSAGES = 1 << 11
PERM_MANAGE_MESSAGES = 1 << 13
PERM_EMBED_LINKS = 1 << 14
PERM_ATTACH_FILES = 1 << 15
PERM_READ_MESSAGE_HISTORY = 1 << 16
PERM_MENTION_EVERYONE = 1 << 17
PERM_USE_EXTERNAL_EMOJIS = 1 << 18
PERM_CHANGE_NICKNAME = 1 << 26
PERM_USE_APPLICATION_COMMANDS = 1 << 31
PERM_CREATE_PUBLIC_THREADS = 1 << 35
PERM_SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    PERM_CREATE_INSTANT_INVITE
    | PERM_ADD_REACTIONS
    | PERM_VIEW_CHANNEL
    | PERM_SEND_MESSAGES
    | PERM_EMBED_LINKS
    | PERM_ATTACH_FILES
    | PERM_READ_MESSAGE_HISTORY
    | PERM_USE_EXTERNAL_EMOJIS
    | PERM_CHANGE_NICKNAME
    | PERM_USE_APPLICATION_COMMANDS
    | PERM_CREATE_PUBLIC_THREADS
    | PERM_SEND_MESSAGES_IN_THREADS
)
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | PERM_MANAGE_MESSAGES

# Channel types.
CHANNEL_GUILD_TEXT = 0
CHANNEL_DM = 1
CHANNEL_GUILD_CATEGORY = 4

# Message types and flags.
MESSAGE_DEFAULT = 0
MESSAGE_CHAT_INPUT_COMMAND = 20
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7

# Interaction types / callback types.
INTERACTION_APPLICATION_COMMAND = 2
INTERACTION_MESSAGE_COMPONENT = 3
INTERACTION_MODAL_SUBMIT = 5

# Application command option types.
OPTION_SUB_COMMAND = 1
OPTION_SUB_COMMAND_GROUP = 2
OPTION_STRING = 3
OPTION_INTEGER = 4
OPTION_BOOLEAN = 5
OPTION_USER = 6
OPTION_CHANNEL = 7
OPTION_ROLE = 8
OPTION_MENTIONABLE = 9
OPTION_NUMBER = 10

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

_last_snowflake = 0


def snowflake() -> str:
    """Mint a unique, increasing snowflake whose timestamp part is *now*.

    discord.py derives ``Interaction.created_at``/``expires_at`` from the id, so ids minted
    from a fixed counter would make every interaction look expired.
    """
    global _last_snowflake  # noqa: PLW0603 -- one process-wide sequence keeps ids unique
    now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
    _last_snowflake = max(now, _last_snowflake + 1)
    return str(_last_snowflake)


def snowflake_time_ms(value: str | int) -> int:
    return (int(value) >> 22) + DISCORD_EPOCH_MS


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


# --------------------------------------------------------------------------- world declaration


@dataclass(kw_only=True)
class FakeUser:
    username: str
    id: str = field(default_factory=snowflake)
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None


@dataclass(kw_only=True)
class FakeRole:
    name: str
    id: str = field(default_factory=snowflake)
    permissions: int = 0
    position: int = 1
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    tags: JSON | None = None


@dataclass(kw_only=True)
class FakeMember:
    user: FakeUser
    roles: list[str] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)
    flags: int = 0

    @property
    def id(self) -> str:
        return self.user.id


@dataclass(kw_only=True)
class FakeChannel:
    name: str
    id: str = field(default_factory=snowflake)
    type: int = CHANNEL_GUILD_TEXT
    topic: str | None = None
    position: int = 0
    parent_id: str | None = None
    nsfw: bool = False


@dataclass(kw_only=True)
class FakeGuild:
    """A guild as the fake serves it; the ``@everyone`` role's id is the guild id, as on Discord."""

    name: str
    id: str = field(default_factory=snowflake)
    channels: list[FakeChannel] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)
    owner_id: str | None = None
    everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    preferred_locale: str = "en-US"
    features: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        name: str,
        *,
        channels: Iterable[str | FakeChannel] = ("general",),
        members: Iterable[str | FakeUser | FakeMember] = (),
        roles: Iterable[str | FakeRole] = (),
        id: str | None = None,
    ) -> FakeGuild:
        """Terse declaration: strings become channels/roles/members with fresh snowflakes."""
        guild = cls(name=name, id=id or snowflake())
        for position, ch in enumerate(channels):
            guild.channels.append(ch if isinstance(ch, FakeChannel) else FakeChannel(name=ch))
            guild.channels[-1].position = position
        for role in roles:
            guild.roles.append(role if isinstance(role, FakeRole) else FakeRole(name=role))
        for member in members:
            if isinstance(member, FakeMember):
                guild.members.append(member)
            elif isinstance(member, FakeUser):
                guild.members.append(FakeMember(user=member))
            else:
                guild.members.append(FakeMember(user=FakeUser(username=member)))
        return guild

    def channel(self, name_or_id: str) -> FakeChannel:
        for ch in self.channels:
            if name_or_id in (ch.id, ch.name):
                return ch
        raise KeyError(name_or_id)

    def member(self, name_or_id: str) -> FakeMember:
        for m in self.members:
            if name_or_id in (m.user.id, m.user.username):
                return m
        raise KeyError(name_or_id)

    def role(self, name_or_id: str) -> FakeRole:
        for r in self.roles:
            if name_or_id in (r.id, r.name):
                return r
        raise KeyError(name_or_id)

    def find_member(self, user_id: str) -> FakeMember | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def permissions_for(self, member: FakeMember) -> int:
        # Channel overwrites are not modelled: guild-level permissions are the channel's.
        if member.user.id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.everyone_permissions
        for role in self.roles:
            if role.id in member.roles:
                value |= role.permissions
        return ALL_PERMISSIONS if value & PERM_ADMINISTRATOR else value


# --------------------------------------------------------------------------- entity payloads


def user_payload(user: FakeUser) -> JSON:
    data: JSON = {
        "id": user.id,
        "username": user.username,
        "global_name": user.global_name,
        "discriminator": "0",
        "avatar": user.avatar,
        "public_flags": 0,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
    }
    if user.bot:
        data["bot"] = True
    return data


def current_user_payload(user: FakeUser) -> JSON:
    return {
        **user_payload(user),
        "verified": True,
        "mfa_enabled": False,
        "flags": 0,
        "locale": "en-US",
    }


def member_payload(
    guild: FakeGuild, member: FakeMember, *, with_user: bool = True, with_permissions: bool = False
) -> JSON:
    data: JSON = {
        "roles": list(member.roles),
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "joined_at": member.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        # discord.py 2.7 indexes member['flags'] directly.
        "flags": member.flags,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user_payload(member.user)
    if with_permissions:
        data["permissions"] = str(guild.permissions_for(member))
    return data


def role_payload(role: FakeRole) -> JSON:
    data: JSON = {
        "id": role.id,
        "name": role.name,
        "color": role.color,
        "colors": {"primary_color": role.color, "secondary_color": None, "tertiary_color": None},
        "hoist": role.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "flags": 0,
    }
    if role.tags is not None:
        data["tags"] = role.tags
    return data


def everyone_role(guild: FakeGuild) -> FakeRole:
    return FakeRole(
        name="@everyone", id=guild.id, permissions=guild.everyone_permissions, position=0
    )


def channel_payload(
    guild: FakeGuild, channel: FakeChannel, *, permissions: int | None = None
) -> JSON:
    data: JSON = {
        "id": channel.id,
        "type": channel.type,
        "guild_id": guild.id,
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [],
        "parent_id": channel.parent_id,
        "flags": 0,
    }
    if channel.type != CHANNEL_GUILD_CATEGORY:
        data.update(
            topic=channel.topic,
            nsfw=channel.nsfw,
            last_message_id=None,
            rate_limit_per_user=0,
            last_pin_timestamp=None,
        )
    if permissions is not None:
        # Interaction channels and resolved channels carry the invoker's computed permissions.
        data["permissions"] = str(permissions)
    return data


def dm_channel_payload(channel_id: str, recipient: FakeUser, last_message_id: str | None) -> JSON:
    return {
        "id": channel_id,
        "type": CHANNEL_DM,
        "last_message_id": last_message_id,
        "flags": 0,
        "recipients": [user_payload(recipient)],
    }


def guild_payload(guild: FakeGuild, roles: list[FakeRole]) -> JSON:
    """The REST guild object (GET /guilds/{id}); GUILD_CREATE extends it."""
    return {
        "id": guild.id,
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": guild.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": [role_payload(r) for r in roles],
        "emojis": [],
        "stickers": [],
        "features": list(guild.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": guild.preferred_locale,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "incidents_data": None,
    }


def guild_create_payload(
    guild: FakeGuild, roles: list[FakeRole], members: list[FakeMember], joined_at: str
) -> JSON:
    data = guild_payload(guild, roles)
    data.update(
        joined_at=joined_at,
        large=False,
        unavailable=False,
        # member_count is the real total even when ``members`` is trimmed by intents, which is
        # what makes discord.py decide whether the guild still needs chunking.
        member_count=len(guild.members),
        voice_states=[],
        members=[member_payload(guild, m) for m in members],
        channels=[channel_payload(guild, c) for c in guild.channels],
        threads=[],
        presences=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
    )
    return data


def application_payload(application_id: str, bot: FakeUser, owner: FakeUser, flags: int) -> JSON:
    """GET /oauth2/applications/@me, which ``Client.login`` calls right after GET /users/@me."""
    return {
        "id": application_id,
        "name": bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": flags,
        "owner": user_payload(owner),
        "team": None,
        "bot": user_payload(bot),
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "approximate_guild_count": 0,
        "integration_types_config": {"0": {}},
    }


# --------------------------------------------------------------------------- messages


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def emoji_key(name: str, emoji_id: str | None = None) -> str:
    """The key the REST path uses: a unicode emoji itself, or ``name:id`` for custom ones."""
    return f"{name}:{emoji_id}" if emoji_id else name


def emoji_payload(key: str) -> JSON:
    name, sep, emoji_id = key.rpartition(":")
    if sep and emoji_id.isdigit():
        return {"id": emoji_id, "name": name or None, "animated": False}
    return {"id": None, "name": key}


def message_payload(
    *,
    message_id: str,
    channel_id: str,
    author: FakeUser,
    body: Mapping[str, Any],
    message_type: int = MESSAGE_DEFAULT,
    known_users: Mapping[str, FakeUser] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSON:
    """A message object built from a create body (content/embeds/components/flags/...)."""
    content = body.get("content") or ""
    users = known_users or {}
    mentions = [user_payload(users[uid]) for uid in _USER_MENTION.findall(content) if uid in users]
    data: JSON = {
        "id": message_id,
        "channel_id": channel_id,
        "type": message_type,
        "author": user_payload(author),
        "content": content,
        "timestamp": datetime.datetime.fromtimestamp(
            snowflake_time_ms(message_id) / 1000, datetime.UTC
        ).isoformat(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts", False)),
        "mention_everyone": False,
        "mentions": mentions,
        "mention_roles": _ROLE_MENTION.findall(content),
        "attachments": list(body.get("attachments") or []),
        "embeds": copy.deepcopy(list(body.get("embeds") or [])),
        "components": copy.deepcopy(list(body.get("components") or [])),
        "pinned": False,
        "flags": int(body.get("flags") or 0),
    }
    if body.get("nonce") is not None:
        data["nonce"] = body["nonce"]
    if body.get("message_reference"):
        data["message_reference"] = {**body["message_reference"], "channel_id": channel_id}
    if extra:
        data.update(extra)
    return data


def reactions_payload(reactions: Mapping[str, Mapping[str, bool]], me_id: str) -> list[JSON]:
    """``reactions`` maps emoji key -> {user_id: burst}."""
    out: list[JSON] = []
    for key, users in reactions.items():
        if not users:
            continue
        burst = sum(1 for b in users.values() if b)
        out.append(
            {
                "emoji": emoji_payload(key),
                "count": len(users),
                "count_details": {"burst": burst, "normal": len(users) - burst},
                "me": me_id in users and not users[me_id],
                "me_burst": me_id in users and users[me_id],
                "burst_colors": [],
            }
        )
    return out


# --------------------------------------------------------------------------- interactions


def interaction_payload(
    *,
    interaction_id: str,
    interaction_type: int,
    application_id: str,
    token: str,
    data: JSON,
    guild: FakeGuild | None,
    channel: JSON,
    invoker: FakeMember | FakeUser,
    app_permissions: int,
    locale: str = "en-US",
    message: JSON | None = None,
) -> JSON:
    """INTERACTION_CREATE ``d``; every key discord.py 2.7 indexes directly is present."""
    payload: JSON = {
        "id": interaction_id,
        "application_id": application_id,
        "type": interaction_type,
        "data": data,
        "channel": channel,
        "channel_id": channel["id"],
        "token": token,
        "version": 1,
        "app_permissions": str(app_permissions),
        "locale": locale,
        "entitlements": [],
        # Required by discord.py 2.7 (Interaction.filesize_limit).
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if guild is not None:
        assert isinstance(invoker, FakeMember)
        payload.update(
            guild_id=guild.id,
            guild={
                "id": guild.id,
                "locale": guild.preferred_locale,
                "features": list(guild.features),
            },
            guild_locale=guild.preferred_locale,
            member=member_payload(guild, invoker, with_permissions=True),
            authorizing_integration_owners={"0": guild.id},
            context=0,
        )
    else:
        user = invoker.user if isinstance(invoker, FakeMember) else invoker
        # In a bot DM the guild-install owner is reported as "0".
        payload.update(
            user=user_payload(user), authorizing_integration_owners={"0": "0"}, context=1
        )
    if message is not None:
        payload["message"] = message
    return payload


def command_payload(
    body: Mapping[str, Any], *, command_id: str, application_id: str, guild_id: str | None
) -> JSON:
    """Echo a command definition the way Discord stores it after an upsert."""
    data: JSON = {
        "type": 1,
        "name_localizations": None,
        "description_localizations": None,
        "options": [],
        "default_member_permissions": None,
        "nsfw": False,
        "integration_types": [0],
        "contexts": None,
        **copy.deepcopy(dict(body)),
        "id": command_id,
        "application_id": application_id,
        "version": snowflake(),
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    else:
        data.setdefault("dm_permission", True)
    return data


_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def command_errors(body: Any, path: str = "") -> JSON:
    """Minimal Discord-side validation so malformed definitions fail like they would live."""
    errors: JSON = {}
    if not isinstance(body, Mapping):
        return {
            path or "_root": {
                "_errors": [{"code": "MODEL_TYPE_CONVERT", "message": "Must be an object."}]
            }
        }
    name = body.get("name")
    slash_like = (
        body.get("type", 1) in (1, OPTION_SUB_COMMAND, OPTION_SUB_COMMAND_GROUP) or path != ""
    )
    if (
        not isinstance(name, str)
        or not _COMMAND_NAME.match(name)
        or (slash_like and name != name.lower())
    ):
        errors[f"{path}name"] = {
            "_errors": [
                {"code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid"}
            ]
        }
    description = body.get("description", "")
    if slash_like and not (isinstance(description, str) and 1 <= len(description) <= 100):
        errors[f"{path}description"] = {
            "_errors": [
                {"code": "BASE_TYPE_BAD_LENGTH", "message": "Must be between 1 and 100 in length."}
            ]
        }
    for index, option in enumerate(body.get("options") or []):
        errors.update(command_errors(option, f"{path}options.{index}."))
    return errors


# --------------------------------------------------------------------------- gateway & options


def event_intent(event: str, in_guild: bool) -> int | None:
    """The intent a dispatch needs, or None for events every session gets."""
    if event.startswith(("MESSAGE_REACTION_",)):
        return INTENT_GUILD_MESSAGE_REACTIONS if in_guild else INTENT_DIRECT_MESSAGE_REACTIONS
    if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE", "MESSAGE_DELETE_BULK"):
        return INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
    if event == "TYPING_START":
        return INTENT_GUILD_MESSAGE_TYPING if in_guild else INTENT_DIRECT_MESSAGE_TYPING
    if event.startswith("GUILD_MEMBER_") and event != "GUILD_MEMBERS_CHUNK":
        return INTENT_GUILD_MEMBERS
    if event == "PRESENCE_UPDATE":
        return INTENT_GUILD_PRESENCES
    if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")) and event != "GUILD_MEMBERS_CHUNK":
        return INTENT_GUILDS
    return None


def infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return OPTION_BOOLEAN
    if isinstance(value, int):
        return OPTION_INTEGER
    if isinstance(value, float):
        return OPTION_NUMBER
    if isinstance(value, FakeUser | FakeMember):
        return OPTION_USER
    if isinstance(value, FakeRole):
        return OPTION_ROLE
    if isinstance(value, FakeChannel):
        return OPTION_CHANNEL
    return OPTION_STRING


def modal_submit_component(component: JSON, values: Mapping[str, str | list[str]]) -> JSON | None:
    """Turn one modal component definition into its MODAL_SUBMIT counterpart."""
    ctype = component.get("type")
    if ctype == 1:
        inner = [
            c
            for c in (modal_submit_component(c, values) for c in component.get("components", []))
            if c
        ]
        return {"type": 1, "id": component.get("id", 0), "components": inner}
    if ctype == 18:  # Label wraps exactly one input
        inner_one = modal_submit_component(component.get("component", {}), values)
        return (
            {"type": 18, "id": component.get("id", 0), "component": inner_one}
            if inner_one
            else None
        )
    custom_id = component.get("custom_id")
    if custom_id is None:
        return None
    value = values.get(custom_id, "")
    if ctype == 4:
        return {"type": 4, "id": component.get("id", 0), "custom_id": custom_id, "value": value}
    return {
        "type": ctype,
        "id": component.get("id", 0),
        "custom_id": custom_id,
        "values": list(value) if isinstance(value, list) else [value],
    }


# --------------------------------------------------------------------------- errors


def error_body(message: str, code: int = 0, errors: JSON | None = None) -> JSON:
    data: JSON = {"message": message, "code": code}
    if errors:
        data["errors"] = errors
    return data


UNAUTHORIZED = error_body("401: Unauthorized")
NOT_FOUND = error_body("404: Not Found")
MISSING_PERMISSIONS = error_body("Missing Permissions", 50013)
MISSING_ACCESS = error_body("Missing Access", 50001)
UNKNOWN_CHANNEL = error_body("Unknown Channel", 10003)
UNKNOWN_GUILD = error_body("Unknown Guild", 10004)
UNKNOWN_MEMBER = error_body("Unknown Member", 10007)
UNKNOWN_MESSAGE = error_body("Unknown Message", 10008)
UNKNOWN_USER = error_body("Unknown User", 10013)
UNKNOWN_WEBHOOK = error_body("Unknown Webhook", 10015)
UNKNOWN_EMOJI = error_body("Unknown Emoji", 10014)
UNKNOWN_COMMAND = error_body("Unknown application command", 10063)
UNKNOWN_INTERACTION = error_body("Unknown interaction", 10062)
ALREADY_ACKNOWLEDGED = error_body("Interaction has already been acknowledged.", 40060)
EMPTY_MESSAGE = error_body("Cannot send an empty message", 50006)
CANNOT_EDIT_OTHERS = error_body("Cannot edit a message authored by another user", 50005)


DEFAULT_ERROR_BODIES: dict[int, JSON] = {
    400: error_body("400: Bad Request"),
    401: UNAUTHORIZED,
    403: MISSING_PERMISSIONS,
    404: UNKNOWN_CHANNEL,
    500: error_body("500: Internal Server Error"),
    503: error_body("503: Service Unavailable"),
}


def rate_limited_body(retry_after: float, global_: bool) -> JSON:
    return {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}


def rate_limit_headers(retry_after: float, global_: bool, bucket: str) -> dict[str, str]:
    """Headers of a Discord 429. discord.py only retries when ``Via`` is present."""
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Scope": "global" if global_ else "user",
    }
    if global_:
        headers["X-RateLimit-Global"] = "true"
    else:
        headers["X-RateLimit-Bucket"] = bucket
    return headers


def invalid_form_body(errors: JSON) -> JSON:
    return error_body("Invalid Form Body", 50035, errors)


def field_error(field_name: str, code: str, message: str) -> JSON:
    return invalid_form_body({field_name: {"_errors": [{"code": code, "message": message}]}})
