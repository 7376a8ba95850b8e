"""The exception hierarchy: bugs and infrastructure failures.

User refusals are never exceptions: they are Replies.
"""

from __future__ import annotations


class ReviewRelayError(Exception):
    """Root of every error reviewrelay raises on purpose."""


class ConfigError(ReviewRelayError):
    """A setting is missing or malformed; the message names the variable."""


class AmbiguousUserError(ReviewRelayError):
    """A user id names different people in several communities: the operator must say which."""


class StoreError(ReviewRelayError):
    """The store could not be opened, migrated or written."""


class StoreFailureError(StoreError):
    """The database itself failed a unit of work: a full disk, a file it cannot read or write."""


class DeliveryError(ReviewRelayError):
    """A platform refused or failed a notice.

    `retryable` says whether sending again may work; `retry_after` is the platform's own hint in
    seconds (or the sender's own wait while it cannot call the platform at all), and a try that ends
    with one does not use up the notice's attempts; `unauthorized` marks a revoked or wrong token,
    after which the platform is not called; `platform_wide` says the wait applies to every call to
    that platform (a global rate limit or an IP ban), not just to this channel; `channel_lost` says
    the notice's channel is gone or closed to the bot (deleted, archived, bot removed, permission
    taken), so every notice to it would fail until someone fixes the channel (never set for a DM);
    `maybe_delivered` says the platform may have done it before the failure (the answer timed out or
    the connection dropped after the request went out): the worker asks the platform before sending
    it again.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        unauthorized: bool = False,
        platform_wide: bool = False,
        channel_lost: bool = False,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.unauthorized = unauthorized
        self.platform_wide = platform_wide
        self.channel_lost = channel_lost
        self.maybe_delivered = maybe_delivered
