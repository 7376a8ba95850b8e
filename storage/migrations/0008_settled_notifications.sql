-- A notification counts as ignored only if its request waited for the volunteer: when someone else
-- takes the last slot, or the requester cancels or closes it, the volunteers notified did not
-- ignore anything, and each gets that notification back from their ignored streak (auto-pause
-- after three in a row). `settled` makes this happen once per notification, whatever the request
-- does later (released, taken again). The streak never goes below zero; where a volunteer's
-- streak was reset by their own claim meanwhile, this errs toward not pausing them.
ALTER TABLE notifications ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;

-- Requests decided before this migration keep the streaks they left.
UPDATE notifications SET settled = 1
WHERE request_id IN (SELECT id FROM requests WHERE status != 'open');

CREATE TRIGGER requests_settle_notifications AFTER UPDATE OF status ON requests
WHEN OLD.status = 'open' AND NEW.status IN ('claimed', 'done', 'cancelled')
BEGIN
    UPDATE volunteers SET ignored_streak = ignored_streak - 1
    WHERE ignored_streak > 0 AND person_id IN (
        SELECT n.person_id FROM notifications n
        WHERE n.request_id = NEW.id AND n.settled = 0
          AND n.person_id NOT IN (SELECT c.person_id FROM claims c WHERE c.request_id = NEW.id));
    UPDATE notifications SET settled = 1 WHERE request_id = NEW.id AND settled = 0;
END;
