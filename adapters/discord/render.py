"""Notices and replies as Discord messages: embeds, buttons, the Done form, and pings only where
they are meant.

Pure functions, no I/O. Discord's size limits are applied here (content 2,000 characters; embed
title 256, description 4,096, field 1,024, 25 fields, 6,000 in all), cutting with an ellipsis,
because discord.py checks none of them and Discord answers 400 to the whole message. User text in
embeds has its Markdown and mention syntax neutralised; what actually guarantees that nobody is
pinged is `allowed_mentions`: none on the client, and only the volunteers we mean on a relay post.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Self, TypedDict

import discord

from bot import texts, transitions
from bot.commands import MAX_RESPONSE
from bot.model import ButtonAction, NoticeKind, Platform, Reply, Request, Status

CONTENT_LIMIT: Final = 2000
TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FIELD_NAME_LIMIT: Final = 256
FIELD_VALUE_LIMIT: Final = 1024
FIELDS_LIMIT: Final = 25
FOOTER_LIMIT: Final = 2048
EMBED_LIMIT: Final = 6000
ELLIPSIS: Final = "…"

MENTION_NOTE: Final = ": a review request on your topics"
POST_TITLE: Final = "Review request #{id}"  # short: it never needs cutting to TITLE_LIMIT
_POST_TITLE = re.compile(r"Review request #([1-9][0-9]*)")
FOOTER: Final = (
    "React 👀 to claim, ✅ when done. Several 👀 while the bot was offline: the first one "
    "Discord lists wins."
)

CUSTOM_ID_TEMPLATE: Final = r"review:(?P<action>claim|release|done):(?P<request_id>[1-9][0-9]{0,8})"
FORM_ID: Final = re.compile(
    r"review-done:(?P<request_id>[1-9][0-9]{0,8}):(?P<message_id>[0-9]{1,20})"
)
RESPONSE_INPUT: Final = "response"
MODAL_TITLE_LIMIT: Final = 45
LABEL_LIMIT: Final = 45
LABEL_DESCRIPTION_LIMIT: Final = 100
PLACEHOLDER_LIMIT: Final = 100
_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")
_MENTION_SYNTAX = re.compile(r"@(everyone|here|[!&]?[0-9]+)")
_LINK_DISPLAY = str.maketrans({c: f"%{ord(c):02X}" for c in "[]()<>` "})
_COLOURS = {
    Status.OPEN: discord.Colour.blurple(),
    Status.CLAIMED: discord.Colour.gold(),
    Status.DONE: discord.Colour.green(),
    Status.CANCELLED: discord.Colour.light_grey(),
    Status.EXPIRED: discord.Colour.dark_grey(),
}
_BUTTON_LOOK = {
    ButtonAction.CLAIM: ("Claim", discord.ButtonStyle.primary),
    ButtonAction.DONE: ("Done", discord.ButtonStyle.success),
    ButtonAction.RELEASE: ("Release", discord.ButtonStyle.secondary),
}


class RelayPost(TypedDict):
    """Keyword arguments for `send` / `edit` of a relay post."""

    content: str | None
    embed: discord.Embed
    view: discord.ui.View
    allowed_mentions: discord.AllowedMentions


class ChannelText(TypedDict):
    """Keyword arguments for `send` / `edit` of plain channel text (the digest)."""

    content: str | None
    embeds: list[discord.Embed]


def fit(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def custom_id(action: ButtonAction, request_id: int) -> str:
    return f"review:{action.value}:{request_id}"


class ReviewButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID_TEMPLATE
):
    """A Claim / Done / Release button that still works after a restart (a persistent item).

    Being fully dynamic, a view of these is not kept in discord.py's view store per message.
    Pressing one dispatches the `review_button` event, which the client turns into a ButtonPressed.
    """

    def __init__(self, action: ButtonAction, request_id: int) -> None:
        label, style = _BUTTON_LOOK[action]
        button: discord.ui.Button[discord.ui.View] = discord.ui.Button(
            label=label, style=style, custom_id=custom_id(action, request_id)
        )
        super().__init__(button)
        self.action = action
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(ButtonAction(match["action"]), int(match["request_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch("review_button", interaction, self.action, self.request_id)


def _plain(text: str, limit: int) -> str:
    """User text for an embed: Markdown escaped, mention syntax broken, then cut to `limit`."""
    text = _MENTION_SYNTAX.sub("@\u200b\\1", discord.utils.escape_markdown(text))
    return fit(text, limit)


def link_display(link: str) -> str:
    """The link as shown: characters that could open Markdown (a masked link) percent-encoded."""
    return link.translate(_LINK_DISPLAY)


def _embed_url(link: str) -> str | None:
    shown = link_display(link)
    return (
        shown if shown.isascii() and shown.isprintable() and len(shown) <= CONTENT_LIMIT else None
    )


def _shrink_to_total(embed: discord.Embed) -> None:
    """Cut the longest field until the whole embed fits Discord's 6,000-character total."""
    while len(embed) > EMBED_LIMIT and embed.fields:
        index, longest = max(enumerate(embed.fields), key=lambda f: len(f[1].value or ""))
        value = longest.value or ""
        excess = len(embed) - EMBED_LIMIT
        embed.set_field_at(
            index,
            name=longest.name or "",
            value=fit(value, max(1, len(value) - excess)),
            inline=bool(longest.inline),
        )


def render_embed(request: Request, community_id: str | None = None) -> discord.Embed:
    """The embed of a relay post: link, topics, requester, note, status and response."""
    viewer = (Platform.DISCORD, community_id) if community_id else None
    embed = discord.Embed(
        title=POST_TITLE.format(id=request.id),
        url=_embed_url(request.link),
        description=fit(link_display(request.link), DESCRIPTION_LIMIT),
        colour=_COLOURS.get(request.status, discord.Colour.default()),
    )
    fields: list[tuple[str, str]] = []
    if request.topics:
        fields.append(("Topics", " ".join(f"#{t}" for t in request.topics)))
    fields.append(("Requested by", texts.who(request.requester, viewer)))
    if request.note:
        fields.append(("Note", request.note))
    fields.append(("Status", texts.status_text(request, viewer)))
    if request.status is Status.DONE and request.response:
        fields.append(("Response", request.response))
    for name, value in fields[:FIELDS_LIMIT]:
        embed.add_field(
            name=fit(name, FIELD_NAME_LIMIT), value=_plain(value, FIELD_VALUE_LIMIT), inline=False
        )
    embed.set_footer(text=fit(FOOTER, FOOTER_LIMIT))
    _shrink_to_total(embed)
    return embed


def relay_post_request(message: discord.Message) -> int | None:
    """The request id a relay post is for, read back from its embed's title (None if the message
    is not a relay post)."""
    for embed in message.embeds:
        found = _POST_TITLE.fullmatch(embed.title or "")
        if found:
            return int(found.group(1))
    return None


def render_view(request: Request) -> discord.ui.View:
    """The buttons that fit the request's status (none once it is finished)."""
    view = discord.ui.View(timeout=None)
    for action in transitions.buttons(request):
        view.add_item(ReviewButton(action, request.id))
    return view


def _mention_line(users: Sequence[str]) -> str:
    return " ".join(f"<@{u}>" for u in users) + MENTION_NOTE


def render_relay_post(
    request: Request, mentions: Sequence[str] = (), *, community_id: str | None = None
) -> RelayPost:
    """A relay post; `mentions` (Discord user ids) are pinged in `content`, and only they are."""
    users: list[str] = []
    for user in dict.fromkeys(m for m in mentions if _SNOWFLAKE.match(m)):
        if len(_mention_line([*users, user])) > CONTENT_LIMIT:
            break  # whole mentions only: a cut one would still be in allowed_mentions
        users.append(user)
    return RelayPost(
        content=_mention_line(users) if users else None,
        embed=render_embed(request, community_id),
        view=render_view(request),
        allowed_mentions=discord.AllowedMentions(
            everyone=False,
            users=[discord.Object(id=int(u)) for u in users],
            roles=False,
            replied_user=False,
        ),
    )


def render_text(text: str) -> ChannelText:
    """Plain channel text (the digest); too long for a message, it goes in an embed instead."""
    if len(text) <= CONTENT_LIMIT:
        return ChannelText(content=text or ELLIPSIS, embeds=[])
    return ChannelText(
        content=None, embeds=[discord.Embed(description=fit(text, DESCRIPTION_LIMIT))]
    )


def render_direct(text: str) -> str:
    """A DM (requester news, nudges, refusals of reactions): short text, no pings."""
    return fit(text or ELLIPSIS, CONTENT_LIMIT)


def sent_text(kind: NoticeKind, text: str) -> str:
    """What a text notice (a DM, or channel text) shows once sent: its content, or the embed a
    long one goes in. `DiscordSender.find` compares it with `text_of` a message."""
    if kind is NoticeKind.DIRECT:
        return render_direct(text).strip()
    sent = render_text(text)
    return (sent["content"] or sent["embeds"][0].description or "").strip()


def text_of(message: discord.Message) -> str:
    """A message's content, or its first embed's description when it has none (Discord trims
    the whitespace around content, so both sides are compared trimmed)."""
    if message.content:
        return message.content.strip()
    return next(((e.description or "").strip() for e in message.embeds), "")


def render_reply(reply: Reply) -> str:
    """The ephemeral answer to a slash command, a button press or the Done form."""
    return fit(reply.text or texts.NOTHING_CHANGED, CONTENT_LIMIT)


def done_form_id(request_id: int, message_id: int | str) -> str:
    return f"review-done:{request_id}:{message_id}"


class DoneForm(discord.ui.Modal):
    """The form the Done button opens: one optional paragraph for the reviewer's response.

    Its custom id names the request and the post, so the client handles the submission by that
    id alone, as it handles the buttons: see `ReviewClient.on_interaction`.
    """

    def __init__(self, request_id: int, message_id: int | str) -> None:
        super().__init__(
            title=fit(texts.DONE_FORM_TITLE.format(id=request_id), MODAL_TITLE_LIMIT),
            custom_id=done_form_id(request_id, message_id),
        )
        self.response: discord.ui.TextInput[DoneForm] = discord.ui.TextInput(
            custom_id=RESPONSE_INPUT,
            style=discord.TextStyle.paragraph,
            placeholder=fit(texts.DONE_FORM_PLACEHOLDER, PLACEHOLDER_LIMIT),
            required=False,
            max_length=MAX_RESPONSE,
        )
        hint = texts.DONE_FORM_HINT.format(id=request_id)
        self.add_item(
            discord.ui.Label(
                text=fit(texts.DONE_FORM_LABEL, LABEL_LIMIT),
                description=fit(hint, LABEL_DESCRIPTION_LIMIT),
                component=self.response,
            )
        )
