-- More than one reviewer per request (`x2`). The claims table becomes the record of who holds a
-- request: a request wants `reviewers` claims, and is 'claimed' once that many are active or done.
-- requests.claimer_* keep their old meaning for the status CHECK: set while the request is
-- 'claimed' (to whoever took its last slot) and kept when it is done.

ALTER TABLE requests ADD COLUMN reviewers INTEGER NOT NULL DEFAULT 1
    CHECK (reviewers BETWEEN 1 AND 3);

-- The identity each claim was made with, to name and message each claimer.
ALTER TABLE claims ADD COLUMN platform TEXT;
ALTER TABLE claims ADD COLUMN community_id TEXT;
ALTER TABLE claims ADD COLUMN user_id TEXT;

UPDATE claims SET (platform, community_id, user_id) = (
    SELECT r.claimer_platform, r.claimer_community, r.claimer_user FROM requests r
    WHERE r.id = claims.request_id AND r.claimer_person = claims.person_id)
WHERE status IN ('active', 'done');
-- Claims whose request no longer names them (released, cancelled): the person's first identity.
UPDATE claims SET (platform, community_id, user_id) = (
    SELECT m.platform, m.community_id, m.user_id FROM members m
    WHERE m.person_id = claims.person_id ORDER BY m.rowid LIMIT 1)
WHERE user_id IS NULL;

-- active_claims (the first ranking key of 0005) now counts active claims, not claimed requests:
-- an x2 request held by two people counts once for each of them.
DROP TRIGGER requests_hold_insert;
DROP TRIGGER requests_hold_update;
DROP TRIGGER requests_hold_delete;
DROP TRIGGER volunteers_count;

CREATE TRIGGER claims_hold_insert AFTER INSERT ON claims WHEN NEW.status = 'active'
BEGIN
    UPDATE volunteers SET active_claims = active_claims + 1 WHERE person_id = NEW.person_id;
END;
CREATE TRIGGER claims_hold_update AFTER UPDATE OF status, person_id ON claims
WHEN OLD.status = 'active' OR NEW.status = 'active'
BEGIN
    UPDATE volunteers SET active_claims = active_claims - 1
    WHERE OLD.status = 'active' AND person_id = OLD.person_id;
    UPDATE volunteers SET active_claims = active_claims + 1
    WHERE NEW.status = 'active' AND person_id = NEW.person_id;
END;
CREATE TRIGGER claims_hold_delete AFTER DELETE ON claims WHEN OLD.status = 'active'
BEGIN
    UPDATE volunteers SET active_claims = active_claims - 1 WHERE person_id = OLD.person_id;
END;

CREATE TRIGGER volunteers_count AFTER INSERT ON volunteers
BEGIN
    UPDATE volunteers SET
        active_claims = (SELECT COUNT(*) FROM claims c
                         WHERE c.person_id = NEW.person_id AND c.status = 'active'),
        (recent_claims, oldest_recent_claim_at) = (
            SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
            WHERE c.person_id = NEW.person_id
              AND c.claimed_at >= (SELECT since FROM load_window))
    WHERE person_id = NEW.person_id;
END;

-- Equal to the old count for one-reviewer data; recounted so the keys agree from here on.
UPDATE volunteers SET active_claims = (
    SELECT COUNT(*) FROM claims c WHERE c.person_id = volunteers.person_id AND c.status = 'active');
