"""A person's data, handed over (export) or removed (forget), inside one store transaction.

Forgetting first ends what is still going on (their open requests are cancelled, claims they hold
go back to the queue, and the other side is told), then deletes their data and anonymises the rows
that other people's history needs.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from bot import effects
from bot.model import Platform
from bot.transitions import Action, Transition, decide
from storage.base import Transaction


async def export(tx: Transaction, person_id: int) -> str:
    """Everything stored about the person, as indented JSON."""
    data = await tx.export_person(person_id)
    return json.dumps(data, default=str, indent=1, ensure_ascii=False)


async def forget(
    tx: Transaction, person_id: int, now: datetime, platforms: Collection[Platform]
) -> int:
    """Remove the person; returns how many active requests or claims had to be ended."""
    ended = 0
    for request in await tx.requests_of(person_id):
        action = Action.CANCEL if request.requester.person_id == person_id else Action.RELEASE
        # Acting as the person (an admin's rights, should their claim need them): as nobody,
        # a release on an x2 request ended every reviewer's claim, not just theirs.
        decision = decide(request, action, actor_person_id=person_id, is_admin=True)
        if isinstance(decision, Transition):
            await effects.apply(
                tx, request, action, decision, actor=None, now=now, platforms=platforms
            )
            ended += 1
    await tx.forget_person(person_id)
    # A digest's text is rendered when it is queued: what was sent (kept until retention) and
    # the edits just queued above still carry their link and name. Render them again, blanked.
    for digest in await tx.digests_of_person(person_id):
        listed = await tx.requests_by_ids(digest.request_ids)
        text = effects.digest_text(listed, now, viewer=(digest.platform, digest.community_id))
        await tx.rewrite_digest(digest.id, text)
    return ended
