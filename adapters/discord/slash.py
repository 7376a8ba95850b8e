"""The `/review` slash command: one subcommand per verb of the command language.

Every verb in `bot.commands.VERBS` is a subcommand. The ones with typed options are spelt out
here, with descriptions and Discord-side limits; a verb the core adds later appears at once as a
subcommand with one free-text `text` option, parsed like Slack's text, until it gets typed options.
Handlers only forward to a `CommandSink` (the client). No autocomplete: the adapter holds no store,
so it cannot list topics or request ids without a platform-neutral query the core does not offer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from bot.commands import MAX_REVIEWERS, VERBS

log = logging.getLogger(__name__)

MAX_SUBCOMMANDS: Final = 25  # Discord's limit per group
_ID = "The request number, e.g. 12"
_ON_OFF = [Choice(name="on", value="on"), Choice(name="off", value="off")]
_TEXT_VERBS: Final = {  # verbs without typed options yet: a description each
    "stats": "Your give and take: reviews given and received",
    "quiet": "Quiet hours for notifications, e.g. 22:00-08:00 Europe/Berlin, or off",
    "nudge": "Ask more volunteers to look at a request",
    "close": "Close a request that got enough feedback",
    "export-me": "Your data, sent to you by DM",
    "forget-me": "Delete your data here (text: confirm)",
}


class CommandSink(Protocol):
    """Where subcommands go: the client, which owns the inbox and the reply."""

    async def run_command(
        self, interaction: discord.Interaction[Any], verb: str, options: Mapping[str, object]
    ) -> None: ...

    async def run_text_command(
        self, interaction: discord.Interaction[Any], verb: str, text: str | None
    ) -> None: ...


Interaction = discord.Interaction[Any]


class ReviewGroup(app_commands.Group):
    """`/review ...`; guild-only, since every request lives in a community."""

    def __init__(self, sink: CommandSink) -> None:
        super().__init__(
            name="review",
            description="Ask for peer review, volunteer, and work on review requests",
            guild_only=True,
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=False, private_channel=False
            ),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        )
        self._sink = sink
        for verb in VERBS:
            if self.get_command(verb) is not None:
                continue
            if len(self.commands) >= MAX_SUBCOMMANDS:
                log.warning(
                    "/review has %d subcommands already; no room for %s", MAX_SUBCOMMANDS, verb
                )
                continue
            self.add_command(_text_command(verb, sink))

    @app_commands.command(name="ask", description="Ask for a review of a link")
    @app_commands.describe(
        link="What to review: an http(s) link",
        topics="Topics, e.g. python writing",
        note="What you would like feedback on",
        local="Keep the request in this server only",
        reviewers="How many reviewers you would like (1 to 3)",
    )
    async def ask(  # noqa: PLR0917 - discord.py maps each option to a parameter
        self,
        interaction: Interaction,
        link: Range[str, 1, 2000],
        topics: Range[str, 1, 400] | None = None,
        note: Range[str, 1, 500] | None = None,
        local: bool | None = None,
        reviewers: Range[int, 1, MAX_REVIEWERS] | None = None,
    ) -> None:
        options = {
            "link": link,
            "topics": topics,
            "note": note,
            "local": local,
            "reviewers": reviewers,
        }
        await self._sink.run_command(interaction, "ask", options)

    @app_commands.command(name="volunteer", description="Hear about requests on these topics")
    @app_commands.describe(topics="Topics, e.g. python writing")
    async def volunteer(self, interaction: Interaction, topics: Range[str, 1, 400]) -> None:
        await self._sink.run_command(interaction, "volunteer", {"topics": topics})

    @app_commands.command(name="unvolunteer", description="Stop hearing about some or all topics")
    @app_commands.describe(topics="Topics to drop (all when empty)")
    async def unvolunteer(
        self, interaction: Interaction, topics: Range[str, 1, 400] | None = None
    ) -> None:
        await self._sink.run_command(interaction, "unvolunteer", {"topics": topics})

    @app_commands.command(name="list", description="Open requests, optionally on one topic")
    @app_commands.describe(topic="Only this topic, e.g. python")
    async def list_(self, interaction: Interaction, topic: Range[str, 1, 40] | None = None) -> None:
        await self._sink.run_command(interaction, "list", {"topic": topic})

    @app_commands.command(name="mine", description="Your requests and claims")
    async def mine(self, interaction: Interaction) -> None:
        await self._sink.run_command(interaction, "mine", {})

    @app_commands.command(name="claim", description="Claim a request to review it")
    @app_commands.describe(id=_ID)
    async def claim(self, interaction: Interaction, id: Range[int, 1, 999_999_999]) -> None:
        await self._sink.run_command(interaction, "claim", {"id": id})

    @app_commands.command(name="release", description="Hand a claimed request back")
    @app_commands.describe(id=_ID)
    async def release(self, interaction: Interaction, id: Range[int, 1, 999_999_999]) -> None:
        await self._sink.run_command(interaction, "release", {"id": id})

    @app_commands.command(name="done", description="Mark your review done")
    @app_commands.describe(id=_ID, response="A short note or a link to your comments")
    async def done(
        self,
        interaction: Interaction,
        id: Range[int, 1, 999_999_999],
        response: Range[str, 1, 1000] | None = None,
    ) -> None:
        await self._sink.run_command(interaction, "done", {"id": id, "response": response})

    @app_commands.command(name="cancel", description="Cancel your request")
    @app_commands.describe(id=_ID)
    async def cancel(self, interaction: Interaction, id: Range[int, 1, 999_999_999]) -> None:
        await self._sink.run_command(interaction, "cancel", {"id": id})

    @app_commands.command(name="reopen", description="Put an expired request back in the queue")
    @app_commands.describe(id=_ID)
    async def reopen(self, interaction: Interaction, id: Range[int, 1, 999_999_999]) -> None:
        await self._sink.run_command(interaction, "reopen", {"id": id})

    @app_commands.command(name="snooze", description="Still on it: no reminders for a while")
    @app_commands.describe(id=_ID)
    async def snooze(self, interaction: Interaction, id: Range[int, 1, 999_999_999]) -> None:
        await self._sink.run_command(interaction, "snooze", {"id": id})

    @app_commands.command(name="pause", description="Take a break from notifications")
    @app_commands.describe(days="For how many days")
    async def pause(self, interaction: Interaction, days: Range[int, 1, 365]) -> None:
        await self._sink.run_command(interaction, "pause", {"days": days})

    @app_commands.command(name="resume", description="Hear about requests again")
    async def resume(self, interaction: Interaction) -> None:
        await self._sink.run_command(interaction, "resume", {})

    @app_commands.command(name="setup", description="Admins: make this the review channel")
    @app_commands.describe(
        tz="Time zone for reminders, e.g. Europe/Berlin",
        time="Daily reminder time, e.g. 09:00",
        share="Also post requests asked in other communities",
        recognition="A monthly thank-you post to last month's reviewers",
    )
    @app_commands.choices(share=_ON_OFF, recognition=_ON_OFF)
    async def setup(
        self,
        interaction: Interaction,
        tz: Range[str, 1, 64] | None = None,
        time: Range[str, 4, 5] | None = None,
        share: Choice[str] | None = None,
        recognition: Choice[str] | None = None,
    ) -> None:
        options = {
            "tz": tz,
            "time": time,
            "share": share.value if share else None,
            "recognition": recognition.value if recognition else None,
        }
        await self._sink.run_command(interaction, "setup", options)

    @app_commands.command(name="link", description="Join your Slack and Discord accounts")
    @app_commands.describe(code="The code /review link gave you on the other platform")
    async def link(self, interaction: Interaction, code: Range[str, 1, 16] | None = None) -> None:
        await self._sink.run_command(interaction, "link", {"code": code})

    @app_commands.command(name="unlink", description="Separate this account from a linked one")
    async def unlink(self, interaction: Interaction) -> None:
        await self._sink.run_command(interaction, "unlink", {})

    @app_commands.command(name="help", description="How reviewrelay works")
    async def help_(self, interaction: Interaction) -> None:
        await self._sink.run_command(interaction, "help", {})


def _text_command(verb: str, sink: CommandSink) -> app_commands.Command[Any, Any, None]:
    @app_commands.describe(text="Arguments, as in /review help")
    async def run(interaction: Interaction, text: Range[str, 1, 1000] | None = None) -> None:
        await sink.run_text_command(interaction, verb, text)

    return app_commands.Command(
        name=verb, description=_TEXT_VERBS.get(verb, "See /review help"), callback=run
    )
