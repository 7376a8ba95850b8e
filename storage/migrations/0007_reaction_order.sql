-- Issue #10: reactions applied in the platform's order (F6), and channels the bot lost (F7).

-- The platform's stamp of the newest reaction event applied per (post, user, emoji), written in
-- the transaction of the event's effect: an event stamped earlier arrived late and changes nothing
-- (Slack promises neither order nor single delivery). `newest` is a decimal number as text
-- (Slack's event_ts, "1700000001.000200"), compared as a decimal by the store, never as text.
CREATE TABLE reaction_order (
    platform    TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    emoji       TEXT NOT NULL,
    newest      TEXT NOT NULL,
    PRIMARY KEY (platform, channel_id, message_id, user_id, emoji)
) WITHOUT ROWID;

-- Channels the platform said are gone or closed to the bot (deleted, archived, bot removed,
-- permissions taken). Pending notices to them are parked, not sent, until `/review setup` runs
-- there again; `notice_id` is the notice whose failure found out, requeued then.
CREATE TABLE degraded_channels (
    platform      TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    community_id  TEXT NOT NULL,
    reason        TEXT NOT NULL,
    since         TEXT NOT NULL,
    notice_id     INTEGER REFERENCES outbox(id),
    PRIMARY KEY (platform, channel_id)
) WITHOUT ROWID;
