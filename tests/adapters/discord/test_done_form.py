"""The Done button's form (issue #5) through real discord.py, the core and SQLite, on FakeDiscord.

Done answers with a modal (interaction response type 9); its submission is a DONE carrying the
response, answered ephemerally, and the response reaches the requester's DM and the post.
"""

from __future__ import annotations

from bot import texts
from bot.model import Status
from tests.adapters.discord.conftest import DiscordHarness
from tests.adapters.discord.test_client import LINK, ask, buttons_of, status_of

EPHEMERAL = 64
MODAL = 9
PARAGRAPH = 2
RESPONSE = "Left comments on section 2: https://docs.example/draft#c12"


async def claimed(bot: DiscordHarness) -> str:
    """bob volunteers, alice asks, bob claims by button; returns the relay post's id."""
    message_id = await ask(bot)
    await bot.click("bob", message_id, "review:claim:1")
    await bot.deliver()
    return message_id


async def open_form(bot: DiscordHarness, user: str, message_id: str) -> str:
    """`user` presses Done; returns the custom id of the form Discord showed them."""
    callback = await bot.click(user, message_id, "review:done:1")
    assert callback.type == MODAL
    assert callback.data is not None
    return str(callback.data["custom_id"])


async def request_state(bot: DiscordHarness) -> tuple[Status, str, str]:
    request = await bot.core.store.run(lambda tx: tx.request(1))
    assert request is not None
    claimer = request.claimer.display_name if request.claimer else ""
    return request.status, claimer, request.response


def embed_fields(bot: DiscordHarness, message_id: str) -> dict[str, str]:
    message = bot.fake.message(message_id)
    assert message is not None
    (embed,) = message["embeds"]
    return {f["name"]: f["value"] for f in embed["fields"]}


async def test_done_answers_with_a_form_and_changes_nothing_yet(bot: DiscordHarness) -> None:
    """Done responds with a modal: one optional paragraph of up to 1,000 characters."""
    message_id = await claimed(bot)
    edits = bot.fake.hits(f"PATCH /channels/{bot.reviews}/messages/{message_id}")

    callback = await bot.click("bob", message_id, "review:done:1")

    assert callback.type == MODAL
    assert callback.data is not None
    assert callback.data["custom_id"] == f"review-done:1:{message_id}"
    assert callback.data["title"] == "Request #1 done"
    (label,) = callback.data["components"]
    assert label["type"] == 18
    assert label["label"] == "Your response (optional)"
    field = label["component"]
    assert (field["type"], field["custom_id"], field["style"]) == (4, "response", PARAGRAPH)
    assert (field["required"], field["max_length"]) == (False, 1000)
    assert field["placeholder"] == "A note, or a link to your comments"
    assert await request_state(bot) == (Status.CLAIMED, "bob", "")
    await bot.deliver()
    assert bot.fake.hits(f"PATCH /channels/{bot.reviews}/messages/{message_id}") == edits


async def test_submitted_response_reaches_requester_and_post(bot: DiscordHarness) -> None:
    """The response typed in the form: done with it, thanked ephemerally, in the DM and the post."""
    message_id = await claimed(bot)
    form = await open_form(bot, "bob", message_id)

    callback = await bot.submit("bob", form, f"  {RESPONSE}\n")
    await bot.deliver()

    assert callback.type == 4
    assert callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert callback.data["content"] == texts.COMPLETED.format(id=1)
    assert await request_state(bot) == (Status.DONE, "bob", RESPONSE)
    assert bot.dms("alice")[-1] == texts.DM_DONE_RESPONSE.format(
        name="bob", id=1, link=LINK, response=RESPONSE
    )
    assert embed_fields(bot, message_id)["Response"] == RESPONSE
    assert status_of(bot, message_id) == "done by bob"
    assert buttons_of(bot, message_id) == []


async def test_blank_form_completes_without_a_response(bot: DiscordHarness) -> None:
    """Submitted empty, the request is done and the DM carries no response."""
    message_id = await claimed(bot)
    form = await open_form(bot, "bob", message_id)

    await bot.submit("bob", form, "")
    await bot.deliver()

    assert await request_state(bot) == (Status.DONE, "bob", "")
    assert bot.dms("alice")[-1] == texts.DM_DONE.format(name="bob", id=1, link=LINK)
    assert "Response" not in embed_fields(bot, message_id)


async def test_response_cannot_ping(bot: DiscordHarness) -> None:
    """Mentions in a response are shown broken in the embed, and no message may ping anyone."""
    message_id = await claimed(bot)
    form = await open_form(bot, "bob", message_id)

    await bot.submit("bob", form, "@everyone see <@&123>")
    await bot.deliver()

    assert "@everyone" not in embed_fields(bot, message_id)["Response"]
    for call in bot.fake.requests_matching("PATCH /channels/*/messages/*"):
        assert call.json["allowed_mentions"]["parse"] == []
    for call in bot.fake.requests_matching("POST /channels/*/messages"):
        assert call.json["allowed_mentions"]["parse"] == []


async def test_someone_without_the_claim_is_refused(bot: DiscordHarness) -> None:
    """carol presses Done on bob's claim and submits: she is told why; nothing changes."""
    message_id = await claimed(bot)
    dms = len(bot.dms("alice"))
    form = await open_form(bot, "carol", message_id)

    callback = await bot.submit("carol", form, "looks fine to me")
    await bot.deliver()

    assert callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert callback.data["content"] == texts.NOT_CLAIMER.format(id=1, name="bob")
    assert await request_state(bot) == (Status.CLAIMED, "bob", "")
    assert status_of(bot, message_id) == "claimed by bob"
    assert len(bot.dms("alice")) == dms


async def test_form_opened_before_a_restart_still_works(bot: DiscordHarness) -> None:
    """The submission is handled by its custom id alone: no form kept in memory is needed."""
    message_id = await claimed(bot)
    bot.fake.modals.clear()  # as if the bot had never opened it (a restart in between)

    callback = await bot.submit("bob", f"review-done:1:{message_id}", RESPONSE)
    await bot.deliver()

    assert callback.data is not None
    assert callback.data["content"] == texts.COMPLETED.format(id=1)
    assert await request_state(bot) == (Status.DONE, "bob", RESPONSE)


async def test_forms_are_not_kept_by_discord_py(bot: DiscordHarness) -> None:
    """Forms people open and then close leave nothing behind in discord.py's modal store."""
    message_id = await claimed(bot)

    for _ in range(3):
        await open_form(bot, "bob", message_id)

    assert bot.adapter.client._connection._view_store._modals == {}


async def test_other_modals_are_not_ours(bot: DiscordHarness) -> None:
    """A modal submission with a foreign custom id reaches no handler and is not answered."""
    handled = len(bot.inbox.handled)

    foreign = await bot.fake.send_modal_submit(
        bot.guild.id, bot.reviews, "bob", "someone-else:1", {"response": "x"}
    )
    await bot.slash("alice", "mine")  # dispatched after it, so the first has been seen by now

    assert len(bot.inbox.handled) == handled + 1
    assert foreign not in bot.fake.interaction_responses


async def test_done_by_command_still_takes_a_response(bot: DiscordHarness) -> None:
    """`/review done id:1 response:...` completes at once, without a form."""
    await claimed(bot)

    callback = await bot.slash("bob", "done", id=1, response=RESPONSE)
    await bot.deliver()

    assert callback.type == 4
    assert callback.data is not None
    assert callback.data["content"] == texts.COMPLETED.format(id=1)
    assert await request_state(bot) == (Status.DONE, "bob", RESPONSE)
