-- Reciprocity: who was notified of what, thanks, quiet hours, ignored notifications, re-notifying.

CREATE TABLE notifications (
    request_id   INTEGER NOT NULL REFERENCES requests(id),
    person_id    INTEGER NOT NULL REFERENCES persons(id),
    notified_at  TEXT NOT NULL,
    PRIMARY KEY (request_id, person_id)
) WITHOUT ROWID;

CREATE TABLE thanks (
    request_id   INTEGER PRIMARY KEY REFERENCES requests(id),
    from_person  INTEGER NOT NULL REFERENCES persons(id),
    to_person    INTEGER NOT NULL REFERENCES persons(id),
    at           TEXT NOT NULL
);

ALTER TABLE volunteers ADD COLUMN quiet_start TEXT;     -- "22:00"
ALTER TABLE volunteers ADD COLUMN quiet_end TEXT;       -- "08:00"
ALTER TABLE volunteers ADD COLUMN quiet_tz TEXT;        -- "Europe/Berlin"
ALTER TABLE volunteers ADD COLUMN ignored_streak INTEGER NOT NULL DEFAULT 0;

ALTER TABLE requests ADD COLUMN renotified_at TEXT;
ALTER TABLE communities ADD COLUMN recognition INTEGER NOT NULL DEFAULT 1;

CREATE INDEX claims_done ON claims(status, ended_at);
