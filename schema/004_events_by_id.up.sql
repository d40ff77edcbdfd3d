-- Retention finds old events by id: ids are UUIDv7, whose first 48 bits are
-- the creation time in milliseconds.
DROP INDEX /* TEMPLATE: schema */events_created_at_idx;
