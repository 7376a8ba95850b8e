"""Cross-community behaviour: relaying to every community, share:off, local requests, linked
identities and names that say where a person is from."""

from __future__ import annotations

import re

import pytest

from bot import texts
from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher, Rules
from bot.model import Community, NoticeKind, Platform
from tests.conftest import RecordingSender
from tests.factories import command, member

SLACK = Community(platform=Platform.SLACK, community_id="T1", name="Acme", review_channel_id="C1")
DISCORD = Community(
    platform=Platform.DISCORD, community_id="G1", name="Writers' Guild", review_channel_id="D1"
)


def riley():
    return member("riley", platform=Platform.SLACK, community="T1")


def vera():
    return member("vera", platform=Platform.DISCORD, community="G1")


@pytest.fixture
def senders():
    return {
        Platform.SLACK: RecordingSender(Platform.SLACK),
        Platform.DISCORD: RecordingSender(Platform.DISCORD),
    }


@pytest.fixture
async def both(store, clock, senders):
    dispatcher = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=senders.keys())
    for community in (SLACK, DISCORD):
        await dispatcher.connect_community(community)
    worker = DeliveryWorker(store=store, clock=clock, senders=senders)
    return dispatcher, worker


def _posts(sender, kind=NoticeKind.RELAY_POST):
    return [n for n in sender.sent if n.kind is kind]


async def test_a_request_reaches_every_community_and_mentions_volunteers_there(
    both, senders, clock
):
    """Asked on Slack: posted in the Slack and the Discord channel; the Discord volunteer is
    mentioned in the Discord post."""
    dispatcher, worker = both
    await dispatcher.handle(command("volunteer python", vera(), at=clock.now()))
    await dispatcher.handle(command("https://example.com/d #python", riley(), at=clock.now()))
    await worker.drain()
    [slack_post] = _posts(senders[Platform.SLACK])
    [discord_post] = _posts(senders[Platform.DISCORD])
    assert (slack_post.channel_id, slack_post.mentions) == ("C1", ())
    assert (discord_post.channel_id, discord_post.mentions) == ("D1", ("vera",))


async def test_claim_on_discord_edits_both_copies_and_dms_the_slack_requester(both, senders, clock):
    """A claim from the Discord side edits the Slack and the Discord post and DMs on Slack."""
    dispatcher, worker = both
    await dispatcher.handle(command("https://example.com/d #python", riley(), at=clock.now()))
    await worker.drain()
    await dispatcher.handle(command("claim 1", vera(), at=clock.now()))
    await worker.drain()
    assert len(_posts(senders[Platform.SLACK], NoticeKind.POST_UPDATE)) == 1
    assert len(_posts(senders[Platform.DISCORD], NoticeKind.POST_UPDATE)) == 1
    [dm] = _posts(senders[Platform.SLACK], NoticeKind.DIRECT)
    assert dm.user_id == "riley"
    assert dm.text.startswith("vera · Discord: Writers' Guild claimed your request #1")


async def test_share_off_keeps_other_communities_requests_out(both, senders, clock):
    """A community with share=off receives only its own requests."""
    dispatcher, worker = both
    reply = await dispatcher.handle(command("setup share=off", vera(), admin=True, at=clock.now()))
    assert "Only requests asked in this community" in reply.text
    await dispatcher.handle(command("https://example.com/d", riley(), at=clock.now()))
    await worker.drain()
    assert _posts(senders[Platform.DISCORD]) == []
    assert len(_posts(senders[Platform.SLACK])) == 1


async def test_local_request_stays_home(both, senders, clock):
    """A request asked with a trailing `local` is posted only in its own community."""
    dispatcher, worker = both
    await dispatcher.handle(
        command("https://example.com/d #go quick look local", riley(), at=clock.now())
    )
    await worker.drain()
    assert _posts(senders[Platform.DISCORD]) == []
    [post] = _posts(senders[Platform.SLACK])
    assert post.request is not None
    assert (post.request.note, post.request.local) == ("quick look", True)


async def test_list_shows_what_was_posted_in_the_askers_community(both, clock):
    """`list` shows a community its own requests and the shared ones: not another community's
    `local` requests, and none from elsewhere once it stops sharing."""
    dispatcher, _ = both
    await dispatcher.handle(command("https://example.com/shared #go", riley(), at=clock.now()))
    await dispatcher.handle(command("https://example.com/home #go local", riley(), at=clock.now()))
    await dispatcher.handle(command("https://example.com/guild #go", vera(), at=clock.now()))

    def links(reply) -> list[str]:
        return re.findall(r"https://example\.com/\w+", reply.text)

    on_slack = await dispatcher.handle(command("list", riley(), at=clock.now()))
    on_discord = await dispatcher.handle(command("list #go", vera(), at=clock.now()))
    await dispatcher.handle(command("setup share=off", vera(), admin=True, at=clock.now()))
    not_sharing = await dispatcher.handle(command("list", vera(), at=clock.now()))
    elsewhere = member("sam", platform=Platform.SLACK, community="T9")  # never set up: shares
    new_place = await dispatcher.handle(command("list", elsewhere, at=clock.now()))

    assert links(on_slack) == [
        "https://example.com/shared",
        "https://example.com/home",
        "https://example.com/guild",
    ]
    assert links(on_discord) == ["https://example.com/shared", "https://example.com/guild"]
    assert links(not_sharing) == ["https://example.com/guild"]
    assert links(new_place) == ["https://example.com/shared", "https://example.com/guild"]


async def _link(dispatcher, clock) -> None:
    given = await dispatcher.handle(command("link", riley(), at=clock.now()))
    code = re.search(r"link code is ([A-Z0-9]{8})", given.text).group(1)
    linked = await dispatcher.handle(
        command(
            f"link {code}",
            member("riley-d", platform=Platform.DISCORD, community="G1"),
            at=clock.now(),
        )
    )
    assert linked.text.startswith("Linked")


async def test_linked_person_is_not_notified_of_their_own_request(both, senders, clock):
    """After linking, volunteering on Discord and asking on Slack notifies nobody: it is one
    person."""
    dispatcher, _ = both
    await _link(dispatcher, clock)
    await dispatcher.handle(
        command(
            "volunteer python",
            member("riley-d", platform=Platform.DISCORD, community="G1"),
            at=clock.now(),
        )
    )
    reply = await dispatcher.handle(
        command("https://example.com/d #python", riley(), at=clock.now())
    )
    assert reply.text == "Request #1 is open; 0 volunteers notified."
    mine = await dispatcher.handle(
        command(
            "mine", member("riley-d", platform=Platform.DISCORD, community="G1"), at=clock.now()
        )
    )
    assert "#1 · https://example.com/d" in mine.text


async def test_accounts_sharing_an_active_request_are_not_linked_until_it_ends(both, clock):
    """Riley asked on Slack and holds the request on Discord: linking would make one person
    review their own request, so it is refused (the code stays usable) until the claim ends."""
    dispatcher, _ = both
    riley_d = member("riley-d", platform=Platform.DISCORD, community="G1")
    await dispatcher.handle(command("https://example.com/d", riley(), at=clock.now()))
    await dispatcher.handle(command("claim 1", riley_d, at=clock.now()))
    given = await dispatcher.handle(command("link", riley(), at=clock.now()))
    code = re.search(r"link code is ([A-Z0-9]{8})", given.text).group(1)

    refused = await dispatcher.handle(command(f"link {code}", riley_d, at=clock.now()))
    await dispatcher.handle(command("release 1", riley_d, at=clock.now()))
    linked = await dispatcher.handle(command(f"link {code}", riley_d, at=clock.now()))

    assert refused.text == texts.LINK_SHARED_REQUEST.format(id=1)
    assert linked.text == texts.LINKED


async def test_accounts_that_both_review_one_request_are_not_linked_until_it_is_done(both, clock):
    """Vera reviewed one slot of an x2 request on Discord and holds the other on Slack: linked,
    her claim could no longer be ended by her, so linking waits until the request is done."""
    dispatcher, _ = both
    vera_s = member("vera-s", platform=Platform.SLACK, community="T1")
    await dispatcher.handle(command("https://example.com/d x2", riley(), at=clock.now()))
    await dispatcher.handle(command("claim 1", vera(), at=clock.now()))
    await dispatcher.handle(command("done 1", vera(), at=clock.now()))
    await dispatcher.handle(command("claim 1", vera_s, at=clock.now()))
    given = await dispatcher.handle(command("link", vera(), at=clock.now()))
    code = re.search(r"link code is ([A-Z0-9]{8})", given.text).group(1)

    refused = await dispatcher.handle(command(f"link {code}", vera_s, at=clock.now()))
    done = await dispatcher.handle(command("done 1", vera_s, at=clock.now()))
    linked = await dispatcher.handle(command(f"link {code}", vera_s, at=clock.now()))

    assert refused.text == texts.LINK_SHARED_REQUEST.format(id=1)
    assert done.text.startswith("Thank you")
    assert linked.text == texts.LINKED


async def test_link_codes_work_once_and_expire(both, clock):
    """A link code is single use and expires after 10 minutes."""
    dispatcher, _ = both
    given = await dispatcher.handle(command("link", riley(), at=clock.now()))
    code = re.search(r"link code is ([A-Z0-9]{8})", given.text).group(1)
    clock.advance(minutes=11)
    late = await dispatcher.handle(command(f"link {code}", vera(), at=clock.now()))
    assert late.text.startswith("That link code is unknown, used or expired")
    own = await dispatcher.handle(command("link", riley(), at=clock.now()))
    code = re.search(r"link code is ([A-Z0-9]{8})", own.text).group(1)
    same = await dispatcher.handle(command(f"link {code}", riley(), at=clock.now()))
    assert same.text == "That code belongs to this same person: nothing to link."
    first = await dispatcher.handle(command(f"link {code}", vera(), at=clock.now()))
    assert first.text.startswith("Linked")  # a refused attempt did not use the code up
    sam = member("sam", platform=Platform.DISCORD, community="G1")
    used = await dispatcher.handle(command(f"link {code}", sam, at=clock.now()))
    assert used.text.startswith("That link code is unknown, used or expired")


async def test_unlink_splits_the_identity_again(both, clock):
    """Unlink gives the account its own person again; unlinking twice is refused."""
    dispatcher, _ = both
    await _link(dispatcher, clock)
    discord_riley = member("riley-d", platform=Platform.DISCORD, community="G1")
    assert (
        await dispatcher.handle(command("unlink", discord_riley, at=clock.now()))
    ).text.startswith("Unlinked")
    again = await dispatcher.handle(command("unlink", discord_riley, at=clock.now()))
    assert again.text == "This account is not linked to another one."


async def test_names_say_where_someone_is_from(both, clock):
    """Seen from Discord, the Slack requester is named with platform and community."""
    dispatcher, _ = both
    await dispatcher.handle(command("https://example.com/d", riley(), at=clock.now()))
    listed = await dispatcher.handle(command("list", vera(), at=clock.now()))
    assert "by riley · Slack: Acme," in listed.text
    home = await dispatcher.handle(command("list", riley(), at=clock.now()))
    assert "by riley," in home.text


async def test_unlink_is_refused_while_the_account_holds_a_claim(both, clock):
    """An account that claimed a request as part of a linked person is not split off from the
    claim: unlink is refused until it ends, and the account can still finish it."""
    dispatcher, _ = both
    await dispatcher.handle(command("https://example.com/d #python", vera(), at=clock.now()))
    await _link(dispatcher, clock)
    discord_riley = member("riley-d", platform=Platform.DISCORD, community="G1")
    await dispatcher.handle(command("claim 1", discord_riley, at=clock.now()))
    refused = await dispatcher.handle(command("unlink", discord_riley, at=clock.now()))
    assert refused.text == (
        "This account asked for or holds request #1: unlink it once that is done or cancelled."
    )
    done = await dispatcher.handle(command("done 1", discord_riley, at=clock.now()))
    assert done.text == "Thank you! Request #1 is marked done."
    unlinked = await dispatcher.handle(command("unlink", discord_riley, at=clock.now()))
    assert unlinked.text.startswith("Unlinked")
