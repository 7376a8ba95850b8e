-- Only claimed requests have a claimer: open ones no longer each add a NULL entry to this index
-- (one b-tree insert and one page written fewer per /review ask). The only reader, the account
-- merge's `WHERE claimer_person = ?`, implies NOT NULL and still uses it.
DROP INDEX requests_claimer;
CREATE INDEX requests_claimer ON requests(claimer_person) WHERE claimer_person IS NOT NULL;
