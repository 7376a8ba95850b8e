-- Linked identities (one person on Slack and Discord) and communities that keep to themselves.

CREATE TABLE link_codes (
    code        TEXT PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    expires_at  TEXT NOT NULL,
    used_at     TEXT
) WITHOUT ROWID;

ALTER TABLE communities ADD COLUMN share INTEGER NOT NULL DEFAULT 1;  -- receives others' requests
ALTER TABLE requests ADD COLUMN local INTEGER NOT NULL DEFAULT 0;    -- stays in its community
