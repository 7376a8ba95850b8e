"""Command definitions: every verb is a subcommand, and Discord's echo compares equal to ours."""

from __future__ import annotations

import copy
from typing import Any

import discord
from discord import app_commands

from adapters.discord import slash
from adapters.discord.sync import same_commands
from bot.commands import VERBS
from tests.fakes import discord_payloads as p


class NullSink:
    async def run_command(self, interaction: Any, verb: str, options: Any) -> None: ...
    async def run_text_command(self, interaction: Any, verb: str, text: str | None) -> None: ...


def our_payload() -> list[dict[str, Any]]:
    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    tree.add_command(slash.ReviewGroup(NullSink()))
    return [command.to_dict(tree) for command in tree.get_commands()]


def as_discord_returns(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What GET .../commands answers: ids, versions and defaults added, `required: false` gone."""
    echoed = [
        p.command_payload(c, command_id=p.snowflake(), application_id="1", guild_id=None)
        for c in copy.deepcopy(payload)
    ]

    def strip(options: list[dict[str, Any]]) -> None:
        for option in options:
            if option.get("required") is False:
                del option["required"]
            strip(option.get("options") or [])

    for command in echoed:
        strip(command["options"])
        command["default_member_permissions"] = None
    return echoed


def test_every_verb_is_a_subcommand() -> None:
    """Each verb of the command language is a `/review` subcommand (Discord allows 25)."""
    (review,) = our_payload()
    names = [option["name"] for option in review["options"]]
    assert sorted(names) == sorted(VERBS)
    assert len(names) <= slash.MAX_SUBCOMMANDS
    assert all(1 <= len(option["description"]) <= 100 for option in review["options"])


def test_review_is_guild_only() -> None:
    """`/review` is offered in servers only: every request belongs to a community."""
    (review,) = our_payload()
    assert review["contexts"] == [0]
    assert review["integration_types"] == [0]


def test_typed_options_carry_discord_side_limits() -> None:
    """Request ids are integers from 1; the link is required; notes are bounded."""
    (review,) = our_payload()
    sub = {o["name"]: {x["name"]: x for x in o["options"]} for o in review["options"]}
    assert sub["claim"]["id"]["type"] == p.OPTION_INTEGER
    assert sub["claim"]["id"]["min_value"] == 1
    assert sub["ask"]["link"]["required"] is True
    assert sub["ask"]["note"]["max_length"] == 500
    assert [c["value"] for c in sub["setup"]["share"]["choices"]] == ["on", "off"]


def test_discord_echo_of_our_commands_is_the_same() -> None:
    """Discord's answer (extra fields, defaults left out) counts as unchanged: no sync."""
    ours = our_payload()
    assert same_commands(ours, as_discord_returns(ours), global_scope=True)
    assert same_commands(ours, as_discord_returns(ours), global_scope=False)


def test_changed_definition_is_detected() -> None:
    """A changed description, a missing command or an extra option means: sync."""
    ours = our_payload()
    theirs = as_discord_returns(ours)
    theirs[0]["options"][0]["description"] = "old words"
    assert not same_commands(ours, theirs, global_scope=True)
    assert not same_commands(ours, [], global_scope=True)
    extra = as_discord_returns(ours)
    extra[0]["options"][0]["options"].append({"type": 3, "name": "more", "description": "x"})
    assert not same_commands(ours, extra, global_scope=True)
