-- Thanks go to each reviewer of a request with several (x2, x3), once each: the key becomes
-- (request, reviewer) instead of the request alone.
CREATE TABLE thanks_each (
    request_id   INTEGER NOT NULL REFERENCES requests(id),
    from_person  INTEGER NOT NULL REFERENCES persons(id),
    to_person    INTEGER NOT NULL REFERENCES persons(id),
    at           TEXT NOT NULL,
    PRIMARY KEY (request_id, to_person)
) WITHOUT ROWID;
INSERT INTO thanks_each SELECT request_id, from_person, to_person, at FROM thanks;
DROP TABLE thanks;
ALTER TABLE thanks_each RENAME TO thanks;
CREATE INDEX thanks_from ON thanks(from_person);
CREATE INDEX thanks_to ON thanks(to_person);
