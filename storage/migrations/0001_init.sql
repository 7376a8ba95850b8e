-- reviewrelay schema, version 1. Timestamps are UTC ISO-8601 text with microseconds, so they sort.

CREATE TABLE persons (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE members (
    platform      TEXT NOT NULL,
    community_id  TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    person_id     INTEGER NOT NULL REFERENCES persons(id),
    PRIMARY KEY (platform, community_id, user_id)
);
CREATE INDEX members_person ON members(person_id);

CREATE TABLE communities (
    platform           TEXT NOT NULL,
    community_id       TEXT NOT NULL,
    name               TEXT NOT NULL DEFAULT '',
    review_channel_id  TEXT,
    timezone           TEXT NOT NULL DEFAULT 'UTC',
    reminder_time      TEXT NOT NULL DEFAULT '09:00',
    PRIMARY KEY (platform, community_id)
);

CREATE TABLE requests (
    id                   INTEGER PRIMARY KEY,
    link                 TEXT NOT NULL,
    topics               TEXT NOT NULL,          -- space-separated, normalised
    note                 TEXT NOT NULL,
    requester_platform   TEXT NOT NULL,
    requester_community  TEXT NOT NULL,
    requester_user       TEXT NOT NULL,
    requester_person     INTEGER NOT NULL REFERENCES persons(id),
    origin_channel_id    TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('open','claimed','done','cancelled','expired')),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    claimer_platform     TEXT,
    claimer_community    TEXT,
    claimer_user         TEXT,
    claimer_person       INTEGER REFERENCES persons(id),
    claimed_at           TEXT,
    response             TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (requester_platform, requester_community, requester_user)
        REFERENCES members(platform, community_id, user_id),
    CHECK ((status = 'claimed') = (claimer_person IS NOT NULL AND claimed_at IS NOT NULL)
           OR status = 'done')
);
CREATE INDEX requests_status_created ON requests(status, created_at);
CREATE INDEX requests_requester ON requests(requester_person, created_at);
CREATE INDEX requests_claimer ON requests(claimer_person, status);

-- The history of holds on requests: the give side of the give/take record.
CREATE TABLE claims (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests(id),
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    status      TEXT NOT NULL CHECK (status IN ('active','released','done','cancelled')),
    claimed_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX claims_request ON claims(request_id, status);
CREATE INDEX claims_person ON claims(person_id, status);

CREATE TABLE volunteers (
    person_id         INTEGER PRIMARY KEY REFERENCES persons(id),
    platform          TEXT NOT NULL,   -- the identity to notify: where they volunteered
    community_id      TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    max_open_claims   INTEGER NOT NULL DEFAULT 3,
    paused_until      TEXT,
    last_notified_at  TEXT,
    FOREIGN KEY (platform, community_id, user_id) REFERENCES members(platform, community_id, user_id)
);

CREATE TABLE volunteer_topics (
    topic      TEXT NOT NULL,
    person_id  INTEGER NOT NULL REFERENCES volunteers(person_id) ON DELETE CASCADE,
    PRIMARY KEY (topic, person_id)
) WITHOUT ROWID;

CREATE TABLE relay_posts (
    request_id    INTEGER NOT NULL REFERENCES requests(id),
    platform      TEXT NOT NULL,
    community_id  TEXT NOT NULL,
    channel_id    TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    PRIMARY KEY (platform, channel_id, message_id)
);
CREATE INDEX relay_posts_request ON relay_posts(request_id);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    platform         TEXT NOT NULL,
    community_id     TEXT NOT NULL,
    channel_id       TEXT NOT NULL DEFAULT '',
    user_id          TEXT NOT NULL DEFAULT '',
    text             TEXT NOT NULL DEFAULT '',
    request_id       INTEGER REFERENCES requests(id),
    mentions         TEXT NOT NULL DEFAULT '',   -- space-separated user ids
    order_key        TEXT NOT NULL,              -- notices with one key are sent in id order
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    message_id       TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending ON outbox(status, order_key, id);
CREATE INDEX outbox_request ON outbox(request_id, kind);

-- Inbound event keys, recorded with their effect so a redelivered event is a no-op.
CREATE TABLE inbound_events (
    event_key    TEXT PRIMARY KEY,
    received_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE reminder_runs (
    platform      TEXT NOT NULL,
    community_id  TEXT NOT NULL,
    local_date    TEXT NOT NULL,
    ran_at        TEXT NOT NULL,
    PRIMARY KEY (platform, community_id, local_date)
) WITHOUT ROWID;
