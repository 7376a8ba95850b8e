"""ReviewClient: the discord.py client wired to the core, handlers kept to parse, dispatch, answer.

Intents are `guilds` (guild and channel cache, GUILD_CREATE) and `guild_reactions` (raw reaction
events); nothing privileged. `allowed_mentions` is none on the client itself, so no send, edit or
interaction answer can ping anyone unless it says so (only relay posts do, for their volunteers).
`max_ratelimit_timeout` makes discord.py raise instead of sleeping through a long 429, so the
outbox, not a hidden sleep, decides when to try again. The Done button answers with a form (a
modal) for an optional response; the form's submission, not the click, completes the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final

import discord
from discord import app_commands

from adapters.discord import inbound, reconcile, render, slash, sync
from bot import texts
from bot.errors import ConfigError, StoreError
from bot.model import ButtonAction, ButtonPressed, Community, InboundEvent, Platform
from bot.ports import Clock, Inbox
from bot.settings import Settings

log = logging.getLogger(__name__)

INTENTS: Final = discord.Intents(guilds=True, guild_reactions=True)
MAX_RATELIMIT_WAIT: Final = 30.0  # discord.py's smallest allowed max_ratelimit_timeout
DEFER_AFTER: Final = 2.0  # Discord drops an interaction not acknowledged within 3 s
_REACTION_EVENTS: Final = frozenset({"raw_reaction_add", "raw_reaction_remove"})
# Discord never sends a gateway event again: a reaction the store failed on (a full disk for a
# moment) is tried again after these waits, as Slack retries an event it got a 500 for.
REACTION_RETRIES: Final = (1.0, 10.0, 60.0)
_MISSING_ACCESS: Final = 403


class ReviewClient(discord.Client):
    """A discord.Client whose events feed an Inbox; `bind` it before logging in."""

    def __init__(
        self, *, settings: Settings, clock: Clock, guild_ready_timeout: float = 2.0
    ) -> None:
        super().__init__(
            intents=INTENTS,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            guild_ready_timeout=guild_ready_timeout,
        )
        self._settings = settings
        self._clock = clock
        self._inbox: Inbox | None = None
        guild_id = settings.discord_guild_id
        self.command_guild = discord.Object(id=int(guild_id)) if guild_id else None
        self.tree: app_commands.CommandTree[ReviewClient] = app_commands.CommandTree(self)
        self.tree.add_command(slash.ReviewGroup(self), guild=self.command_guild)
        self.tree.error(self._on_command_error)
        self.live = False
        self.reconciling: asyncio.Task[int] | None = None
        self.registered = asyncio.Event()  # set once on_ready has registered the guilds
        # The newest reaction event seen per (message, user, emoji): a retry that a newer change
        # of the same reaction overtook is dropped, or the older state would land last.
        self._newest_reaction: dict[tuple[str, str, str], str] = {}

    def bind(self, inbox: Inbox) -> None:
        self._inbox = inbox

    def _bound(self) -> Inbox:
        if self._inbox is None:
            msg = "ReviewClient used before bind(inbox)"
            raise RuntimeError(msg)
        return self._inbox

    async def setup_hook(self) -> None:
        """Runs inside `login`: register the persistent buttons, sync commands if they changed."""
        self.add_dynamic_items(render.ReviewButton)
        try:
            await sync.sync_if_changed(self, self.tree, self.command_guild)
        except discord.HTTPException as exc:
            if exc.status == _MISSING_ACCESS and self.command_guild is not None:
                msg = (
                    f"DISCORD_GUILD_ID: cannot manage commands in guild {self.command_guild.id} "
                    "(is the bot in it, invited with the applications.commands scope?)"
                )
                raise ConfigError(msg) from None
            # The commands Discord already has keep working; the next start tries again.
            log.exception("discord command sync failed")

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        super().dispatch(event, *args, **kwargs)
        if event in _REACTION_EVENTS and args and self.ws is not None:
            # discord.py parses a gateway frame and dispatches its raw event synchronously,
            # right after storing the frame's sequence number: the one moment it is known.
            position = inbound.GatewayPosition(self.ws.session_id or "", self.ws.sequence or 0)
            super().dispatch("review_reaction", args[0], position)

    # --- gateway lifecycle ----------------------------------------------------------------------

    async def on_ready(self) -> None:
        """A new session (not a RESUME): register every guild, then catch up on reactions."""
        self.live = True
        try:
            for guild in self.guilds:
                await self._connect(guild)
        except Exception:
            log.exception("discord: registering the guilds failed")
        self._start_reconcile()
        self.registered.set()

    async def on_resumed(self) -> None:
        self.live = True  # Discord replays what we missed; no reconcile needed

    async def on_disconnect(self) -> None:
        self.live = False

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._connect(guild)

    async def _connect(self, guild: discord.Guild) -> None:
        channel_id = self._settings.discord_review_channel_id or ""
        # DISCORD_REVIEW_CHANNEL_ID names one channel: it is the default only for its own guild.
        in_guild = channel_id.isdigit() and guild.get_channel_or_thread(int(channel_id))
        community = Community(
            platform=Platform.DISCORD,
            community_id=str(guild.id),
            name=guild.name,
            review_channel_id=channel_id if in_guild else None,
        )
        await self._bound().connect_community(community)

    def _start_reconcile(self) -> None:
        inbox = self._bound()
        if not isinstance(inbox, reconcile.OpenPosts):
            log.warning("discord: the inbox cannot list open posts; reactions missed are lost")
            return
        self.stop_reconcile()
        self.reconciling = asyncio.create_task(
            reconcile.reconcile(
                self,
                inbox,
                claim_emoji=self._settings.claim_emoji,
                done_emoji=self._settings.done_emoji,
                now=self._clock.now(),
            ),
            name="discord-reconcile",
        )
        self.reconciling.add_done_callback(_log_failure)

    def stop_reconcile(self) -> None:
        if self.reconciling is not None and not self.reconciling.done():
            self.reconciling.cancel()

    # --- inbound ----------------------------------------------------------------------------

    async def _on_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        # Options discord.py could not bind (a definition Discord has not synced yet): the
        # handler never ran, so answer here rather than leave "did not respond".
        log.error("discord command %s failed: %s", f"discord:{interaction.id}", error)
        await _apologise(interaction)

    async def on_review_reaction(
        self, payload: discord.RawReactionActionEvent, position: inbound.GatewayPosition
    ) -> None:
        me = self.user
        event = inbound.parse_raw_reaction(
            payload,
            bot_user_id=me.id if me else 0,
            received_at=self._clock.now(),
            position=position,
        )
        if event is None:
            return
        key = (event.message_id, event.member.user_id, event.emoji)
        self._newest_reaction[key] = event.event_key
        for wait in (*REACTION_RETRIES, None):
            try:
                await self._bound().handle(event)
            except StoreError as exc:
                if wait is None:
                    log.exception("discord reaction %s lost: the store failed", event.event_key)
                    break
                log.warning(
                    "discord reaction %s: %s; trying again in %.0fs", event.event_key, exc, wait
                )
                await asyncio.sleep(wait)
                if self._newest_reaction.get(key) != event.event_key:
                    log.info("discord reaction %s overtaken by a newer one", event.event_key)
                    break
            except Exception:
                log.exception("discord reaction %s failed", event.event_key)
                break
            else:
                break
        if self._newest_reaction.get(key) == event.event_key:
            del self._newest_reaction[key]  # nothing newer to compare with: keep the map small

    async def on_review_button(
        self, interaction: discord.Interaction[Any], action: ButtonAction, request_id: int
    ) -> None:
        now = self._clock.now()
        event = inbound.parse_button(interaction, action, request_id, received_at=now)
        if event is not None and action is ButtonAction.DONE:
            await self._open_done_form(interaction, event)
            return
        await self._answer(interaction, event)

    async def _open_done_form(
        self, interaction: discord.Interaction[Any], event: ButtonPressed
    ) -> None:
        """Answer Done with its form (a modal, response type 9); the submission completes it.

        The form is stopped before it is sent, which keeps it out of discord.py's modal store:
        `on_interaction` handles the submission by its custom id instead, so a form still open
        across a restart works, and one the user closes leaves nothing behind.
        """
        form = render.DoneForm(event.request_id, event.message_id or "0")
        form.stop()
        try:
            await interaction.response.send_modal(form)
        except discord.HTTPException as exc:
            log.warning(
                "discord: the Done form for request #%d did not open (HTTP %s): completing it "
                "without a response",
                event.request_id,
                exc.status,
            )
            await self._answer(interaction, event)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Submissions of the Done form; every other interaction has its own handler."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        event = inbound.parse_done_form(interaction, received_at=self._clock.now())
        if event is not None:
            await self._answer(interaction, event)

    async def run_command(
        self, interaction: discord.Interaction[Any], verb: str, options: Mapping[str, object]
    ) -> None:
        if verb == "setup" and interaction.guild_id and not inbound.can_post_here(interaction):
            # Relay posts could never be sent here: say so instead of setting a dead channel.
            await interaction.response.send_message(texts.SETUP_BOT_CANNOT_POST, ephemeral=True)
            return
        now = self._clock.now()
        await self._answer(
            interaction, inbound.parse_command(interaction, verb, options, received_at=now)
        )

    async def run_text_command(
        self, interaction: discord.Interaction[Any], verb: str, text: str | None
    ) -> None:
        now = self._clock.now()
        event = inbound.parse_text_command(interaction, verb, text, received_at=now)
        await self._answer(interaction, event)

    async def _answer(
        self, interaction: discord.Interaction[Any], event: InboundEvent | None
    ) -> None:
        """Hand the event to the core and answer ephemerally within Discord's 3 seconds."""
        key = event.event_key if event else f"discord:{interaction.id}"
        try:
            if event is None:
                await interaction.response.send_message(texts.GUILD_ONLY, ephemeral=True)
                return
            handling = asyncio.ensure_future(self._bound().handle(event))
            try:
                reply = await asyncio.wait_for(asyncio.shield(handling), DEFER_AFTER)
            except TimeoutError:
                # The store is slow: acknowledge now and answer when the core is done.
                await interaction.response.defer(ephemeral=True, thinking=True)
                reply = await handling
                await interaction.followup.send(render.render_reply(reply), ephemeral=True)
                return
            await interaction.response.send_message(render.render_reply(reply), ephemeral=True)
        except Exception:
            log.exception("discord interaction %s failed", key)
            await _apologise(interaction)


async def _apologise(interaction: discord.Interaction[Any]) -> None:
    with contextlib.suppress(discord.HTTPException):
        if interaction.response.is_done():
            await interaction.followup.send(texts.APOLOGY, ephemeral=True)
        else:
            await interaction.response.send_message(texts.APOLOGY, ephemeral=True)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord %s failed", task.get_name(), exc_info=task.exception())
