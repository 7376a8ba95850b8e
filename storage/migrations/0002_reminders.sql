-- Reminders: claim nudges, the daily digest message (edited in place), reopening expired requests.

ALTER TABLE claims ADD COLUMN nudges INTEGER NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN nudged_at TEXT;

CREATE TABLE digests (
    id            INTEGER PRIMARY KEY,
    platform      TEXT NOT NULL,
    community_id  TEXT NOT NULL,
    local_date    TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    request_ids   TEXT NOT NULL,           -- space-separated, oldest first
    message_id    TEXT NOT NULL DEFAULT '', -- set when the digest is delivered
    created_at    TEXT NOT NULL,
    UNIQUE (platform, community_id, local_date)
);

CREATE INDEX digests_created ON digests(created_at);

ALTER TABLE outbox ADD COLUMN digest_id INTEGER REFERENCES digests(id);
