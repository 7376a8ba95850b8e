"""Replies and notices to Slack message shapes (mrkdwn text, Block Kit): pure, no I/O.

All user text is escaped here and nowhere else: `&`, `<` and `>` become entities, so a note that
says `<!channel>` or `<@U123>` shows those characters and pings nobody. The only mentions the bot
writes are the volunteer ids the core passes in, and it never asks Slack to re-parse text
(`link_names`, `parse=full`). Every text is cut to Slack's limits, counted in UTF-16 units.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from adapters.slack.inbound import (
    ACTION_IDS,
    DONE_CALLBACK_ID,
    RESPONSE_ACTION_ID,
    RESPONSE_BLOCK_ID,
)
from bot import texts, transitions
from bot.commands import MAX_RESPONSE
from bot.model import ButtonAction, Platform, Reply, Request, Status

SECTION_LIMIT: Final = 3000  # characters per section or context text
TEXT_LIMIT: Final = 4000  # top-level `text`: Slack truncates long ones; keep them readable
MAX_BLOCKS: Final = 50
BUTTON_TEXT_LIMIT: Final = 75
_MODAL_TITLE_LIMIT: Final = 24
MAX_MENTIONS: Final = 50  # the core notifies at most 50; 50 ids of <= 36 units fit a section
_NAME_LIMIT = 200
_LINK_LIMIT = 2400
_ELLIPSIS = "…"
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")

Block = dict[str, Any]
_LABELS: dict[ButtonAction, str] = {
    ButtonAction.CLAIM: "Claim",
    ButtonAction.DONE: "Done",
    ButtonAction.RELEASE: "Release",
}


def _units(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units): an emoji outside the BMP counts twice."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_MARKERS = dict.fromkeys(map(ord, "*_~`"))


_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def escape(text: str) -> str:
    """Escape mrkdwn control characters; `&` first is implied by mapping each character once."""
    return text.translate(_ESCAPE_TABLE)


def unformatted(text: str) -> str:
    """A name without mrkdwn markers: a name cannot pose as bold labels like *Status:*."""
    return text.translate(_MARKERS)


def fit(text: str, limit: int) -> str:
    """Escape `text` and cut it to `limit` units without splitting an entity or a surrogate pair."""
    escaped = escape(text)
    if _units(escaped) <= limit:
        return escaped
    kept: list[str] = []
    size = 0
    for ch in text:
        piece = _ESCAPES.get(ch, ch)
        if size + _units(piece) > limit - 1:
            break
        kept.append(piece)
        size += _units(piece)
    return "".join(kept) + _ELLIPSIS


def render_text(text: str) -> str:
    """Plain core text (DMs, ephemerals, the digest) as safe mrkdwn."""
    return fit(text, TEXT_LIMIT)


def render_reply(reply: Reply) -> dict[str, Any]:
    """Arguments for a slash command's `ack`: ephemeral, or an empty 200 when there is no text."""
    if not reply:
        return {}
    return {"text": render_text(reply.text), "response_type": "ephemeral"}


def render_apology() -> dict[str, Any]:
    return {"text": texts.APOLOGY, "response_type": "ephemeral"}


def _link(url: str) -> str:
    """A clickable link; `|` would end the target early, so it is percent-encoded."""
    label = fit(url, _NAME_LIMIT)
    target = escape(url).replace("|", "%7C")
    if _units(target) + _units(label) + 3 <= _LINK_LIMIT:
        return f"<{target}|{label}>"
    return fit(url, _LINK_LIMIT)  # too long to repeat: Slack still links a bare URL


def _mentions(user_ids: Iterable[str]) -> str:
    # Ids come from Slack via the core; the pattern keeps anything else out of mention syntax.
    return " ".join(f"<@{u}>" for u in user_ids if _USER_ID.match(u))


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _buttons(request: Request) -> list[Block]:
    buttons = [
        {
            "type": "button",
            "action_id": ACTION_IDS[action],
            "text": {
                "type": "plain_text",
                "text": _LABELS[action][:BUTTON_TEXT_LIMIT],
                "emoji": True,
            },
            "value": str(request.id),
            **({"style": "primary"} if index == 0 else {}),
        }
        for index, action in enumerate(transitions.buttons(request))
    ]
    if not buttons:
        return []
    return [{"type": "actions", "block_id": "review_actions", "elements": buttons}]


def render_relay_post(
    request: Request, mentions: Sequence[str] = (), *, community_id: str | None = None
) -> dict[str, Any]:
    """A request in a review channel: `text` (notifications) and `blocks` (what people see).

    Buttons follow the status: Claim while a slot is free, Done and Release while someone reviews
    (they act on the presser's own claim), none once it ended.
    People from another community (`community_id` is the workspace the post is in) are named
    with where they are from.
    """
    viewer = (Platform.SLACK, community_id) if community_id else None
    requester = fit(unformatted(texts.who(request.requester, viewer)), _NAME_LIMIT)
    head = f"*Review request #{request.id}* from {requester}\n{_link(request.link)}"
    blocks: list[Block] = [_section(head)]
    if request.topics:
        blocks.append(_context(fit("Topics: " + " ".join(f"#{t}" for t in request.topics), 500)))
    if request.note:
        blocks.append(_section("*Note:* " + fit(request.note, SECTION_LIMIT - 10)))
    status = unformatted(texts.status_text(request, viewer))
    blocks.append(_context("*Status:* " + fit(status, SECTION_LIMIT - 12)))
    if request.status is Status.DONE and request.response:
        blocks.append(_section("*Response:* " + fit(request.response, SECTION_LIMIT - 14)))
    cc = _mentions(mentions[:MAX_MENTIONS])
    if cc:
        blocks.append(_section(f"cc {cc}"))
    blocks += _buttons(request)
    summary = fit(f"Review request #{request.id} from {requester}: ", 300)
    # Mentions go in `text` too: Slack builds the notification from it.
    text = summary + fit(request.link, 1500) + (f" cc {cc}" if cc else "")
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def render_done_form(request_id: int, channel_id: str, message_ts: str) -> dict[str, Any]:
    """The modal the Done button opens: one optional response, up to 1,000 characters.

    `private_metadata` says which request and post it is for; Slack hands it back unchanged
    with the submission (and the submission is signed, so it cannot be forged).
    """
    metadata = {"request_id": request_id, "channel": channel_id, "ts": message_ts}
    return {
        "type": "modal",
        "callback_id": DONE_CALLBACK_ID,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": _plain(texts.DONE_FORM_TITLE.format(id=request_id)[:_MODAL_TITLE_LIMIT]),
        "submit": _plain(texts.DONE_FORM_SUBMIT),
        "close": _plain(texts.DONE_FORM_CANCEL),
        "blocks": [
            _context(escape(texts.DONE_FORM_HINT.format(id=request_id))),
            {
                "type": "input",
                "block_id": RESPONSE_BLOCK_ID,
                "optional": True,
                "label": _plain(texts.DONE_FORM_LABEL),
                "element": {
                    "type": "plain_text_input",
                    "action_id": RESPONSE_ACTION_ID,
                    "multiline": True,
                    "max_length": MAX_RESPONSE,
                    "placeholder": _plain(texts.DONE_FORM_PLACEHOLDER),
                },
            },
        ],
    }


def render_form_errors(text: str) -> dict[str, Any]:
    """Arguments for a view_submission `ack` that keeps the form open, `text` under the input."""
    return {"response_action": "errors", "errors": {RESPONSE_BLOCK_ID: text}}
