-- Matching without scanning the candidates. A volunteer's ranking keys (active claims, claims in
-- the 30-day load window, last notified) are stored on the volunteer, kept exact by the triggers
-- below in the same statement as every change they depend on, and mirrored onto each of their
-- topic rows, so an ask walks one index per requested topic in ranking order and stops after a
-- few rows (SqliteTransaction.rank_candidates).

-- The topics of one person (the volunteer loaders' subquery): the primary key starts with topic.
CREATE INDEX volunteer_topics_person ON volunteer_topics(person_id, topic);

-- active_claims: requests the person holds now (status 'claimed'); recent_claims: their claims
-- made since load_window.since; oldest_recent_claim_at: the oldest of those, so a moved window
-- knows whose count changed.
ALTER TABLE volunteers ADD COLUMN active_claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volunteers ADD COLUMN recent_claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volunteers ADD COLUMN oldest_recent_claim_at TEXT;

-- The start of the load window the recent counts are relative to. Each ask moves it to its own
-- `now - 30 days` (the triggers at the end recount what that changes). The first value is only a
-- start: the first ask moves it.
CREATE TABLE load_window (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    since  TEXT NOT NULL
);
INSERT INTO load_window VALUES (1, strftime('%Y-%m-%dT%H:%M:%S.000000+00:00', 'now', '-30 days'));

-- The mirror: each topic row carries its volunteer's ranking keys and ignored streak.
ALTER TABLE volunteer_topics ADD COLUMN active_claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volunteer_topics ADD COLUMN recent_claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volunteer_topics ADD COLUMN last_notified_at TEXT;
ALTER TABLE volunteer_topics ADD COLUMN ignored_streak INTEGER NOT NULL DEFAULT 0;

-- Backfill, before the triggers exist.
UPDATE volunteers SET
    active_claims = (SELECT COUNT(*) FROM requests r
                     WHERE r.claimer_person = volunteers.person_id AND r.status = 'claimed'),
    (recent_claims, oldest_recent_claim_at) = (
        SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
        WHERE c.person_id = volunteers.person_id
          AND c.claimed_at >= (SELECT since FROM load_window));
UPDATE volunteer_topics SET (active_claims, recent_claims, last_notified_at, ignored_streak) = (
    SELECT v.active_claims, v.recent_claims, v.last_notified_at, v.ignored_streak
    FROM volunteers v WHERE v.person_id = volunteer_topics.person_id);

-- One topic's volunteers in matching's order (bot.matching.rank): the walk rank_candidates makes.
CREATE INDEX volunteer_topics_rank
    ON volunteer_topics(topic, active_claims, recent_claims, last_notified_at, person_id);
-- One topic's volunteers who ignored several notifications in a row: the ones to auto-pause.
CREATE INDEX volunteer_topics_ignored ON volunteer_topics(topic, ignored_streak);
-- The volunteers whose recent count changes when the window moves.
CREATE INDEX volunteers_window ON volunteers(oldest_recent_claim_at)
    WHERE oldest_recent_claim_at IS NOT NULL;

-- active_claims: a request held (status 'claimed') counts for its claimer.
CREATE TRIGGER requests_hold_insert AFTER INSERT ON requests WHEN NEW.status = 'claimed'
BEGIN
    UPDATE volunteers SET active_claims = active_claims + 1 WHERE person_id = NEW.claimer_person;
END;
CREATE TRIGGER requests_hold_update AFTER UPDATE OF status, claimer_person ON requests
WHEN OLD.status = 'claimed' OR NEW.status = 'claimed'
BEGIN
    UPDATE volunteers SET active_claims = active_claims - 1
    WHERE OLD.status = 'claimed' AND person_id = OLD.claimer_person;
    UPDATE volunteers SET active_claims = active_claims + 1
    WHERE NEW.status = 'claimed' AND person_id = NEW.claimer_person;
END;
CREATE TRIGGER requests_hold_delete AFTER DELETE ON requests WHEN OLD.status = 'claimed'
BEGIN
    UPDATE volunteers SET active_claims = active_claims - 1 WHERE person_id = OLD.claimer_person;
END;

-- recent_claims: claims made since the window's start (a new claim is normally inside it).
CREATE TRIGGER claims_recent_insert AFTER INSERT ON claims
WHEN NEW.claimed_at >= (SELECT since FROM load_window)
BEGIN
    UPDATE volunteers SET recent_claims = recent_claims + 1,
        oldest_recent_claim_at =
            MIN(COALESCE(oldest_recent_claim_at, NEW.claimed_at), NEW.claimed_at)
    WHERE person_id = NEW.person_id;
END;
CREATE TRIGGER claims_recent_update AFTER UPDATE OF person_id, claimed_at ON claims
BEGIN
    UPDATE volunteers SET (recent_claims, oldest_recent_claim_at) = (
        SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
        WHERE c.person_id = volunteers.person_id
          AND c.claimed_at >= (SELECT since FROM load_window))
    WHERE person_id IN (OLD.person_id, NEW.person_id);
END;
CREATE TRIGGER claims_recent_delete AFTER DELETE ON claims
BEGIN
    UPDATE volunteers SET (recent_claims, oldest_recent_claim_at) = (
        SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
        WHERE c.person_id = volunteers.person_id
          AND c.claimed_at >= (SELECT since FROM load_window))
    WHERE person_id = OLD.person_id;
END;

-- Someone who volunteers (or is merged into a new volunteer row) may hold claims already.
CREATE TRIGGER volunteers_count AFTER INSERT ON volunteers
BEGIN
    UPDATE volunteers SET
        active_claims = (SELECT COUNT(*) FROM requests r
                         WHERE r.claimer_person = NEW.person_id AND r.status = 'claimed'),
        (recent_claims, oldest_recent_claim_at) = (
            SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
            WHERE c.person_id = NEW.person_id
              AND c.claimed_at >= (SELECT since FROM load_window))
    WHERE person_id = NEW.person_id;
END;

-- The mirror on the topic rows follows the volunteer row (the ranking keys and the ignored streak
-- apart, so each change rewrites only the index it is in).
CREATE TRIGGER volunteers_mirror_rank
AFTER UPDATE OF active_claims, recent_claims, last_notified_at ON volunteers
WHEN OLD.active_claims IS NOT NEW.active_claims OR OLD.recent_claims IS NOT NEW.recent_claims
  OR OLD.last_notified_at IS NOT NEW.last_notified_at
BEGIN
    UPDATE volunteer_topics SET active_claims = NEW.active_claims,
        recent_claims = NEW.recent_claims, last_notified_at = NEW.last_notified_at
    WHERE person_id = NEW.person_id;
END;
CREATE TRIGGER volunteers_mirror_ignored AFTER UPDATE OF ignored_streak ON volunteers
WHEN OLD.ignored_streak IS NOT NEW.ignored_streak
BEGIN
    UPDATE volunteer_topics SET ignored_streak = NEW.ignored_streak WHERE person_id = NEW.person_id;
END;
CREATE TRIGGER volunteer_topics_mirror_insert AFTER INSERT ON volunteer_topics
BEGIN
    UPDATE volunteer_topics SET (active_claims, recent_claims, last_notified_at, ignored_streak) = (
        SELECT v.active_claims, v.recent_claims, v.last_notified_at, v.ignored_streak
        FROM volunteers v WHERE v.person_id = NEW.person_id)
    WHERE topic = NEW.topic AND person_id = NEW.person_id
      AND EXISTS (SELECT 1 FROM volunteers v WHERE v.person_id = NEW.person_id);
END;
CREATE TRIGGER volunteer_topics_mirror_move AFTER UPDATE OF topic, person_id ON volunteer_topics
BEGIN
    UPDATE volunteer_topics SET (active_claims, recent_claims, last_notified_at, ignored_streak) = (
        SELECT v.active_claims, v.recent_claims, v.last_notified_at, v.ignored_streak
        FROM volunteers v WHERE v.person_id = NEW.person_id)
    WHERE topic = NEW.topic AND person_id = NEW.person_id
      AND EXISTS (SELECT 1 FROM volunteers v WHERE v.person_id = NEW.person_id);
END;

-- Moving the load window forward recounts only the volunteers whose oldest counted claim fell out
-- of it (a few per ask); moving it back (a clock change, a longer window) recounts those with
-- claims in the stretch it now covers again.
CREATE TRIGGER load_window_forward AFTER UPDATE OF since ON load_window WHEN NEW.since > OLD.since
BEGIN
    UPDATE volunteers SET (recent_claims, oldest_recent_claim_at) = (
        SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
        WHERE c.person_id = volunteers.person_id AND c.claimed_at >= NEW.since)
    WHERE oldest_recent_claim_at < NEW.since;
END;
CREATE TRIGGER load_window_back AFTER UPDATE OF since ON load_window WHEN NEW.since < OLD.since
BEGIN
    UPDATE volunteers SET (recent_claims, oldest_recent_claim_at) = (
        SELECT COUNT(*), MIN(c.claimed_at) FROM claims c
        WHERE c.person_id = volunteers.person_id AND c.claimed_at >= NEW.since)
    WHERE person_id IN (
        SELECT person_id FROM claims WHERE claimed_at >= NEW.since AND claimed_at < OLD.since);
END;
