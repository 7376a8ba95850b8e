-- When a volunteer's ignored streak began: the first notification after it was last zero. The
-- auto-pause waits until that one has gone unanswered for a day, so a burst of requests (four
-- asked in a minute) does not pause someone who has not had the time to look. Streaks stored
-- before this migration count from their last notification, erring toward not pausing.
ALTER TABLE volunteers ADD COLUMN ignored_since TEXT;
UPDATE volunteers SET ignored_since = last_notified_at WHERE ignored_streak > 0;
