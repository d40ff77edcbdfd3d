-- The outbox doorbell: see schema/003_publish.up.sql.

-- name: OutboxListen :exec
LISTEN "/* TEMPLATE: schema */outbox";

-- OutboxDoorbellTake takes the doorbell for the session, unless a sleeping
-- poller holds it or a publishing transaction holds it shared.
-- name: OutboxDoorbellTake :one
SELECT pg_try_advisory_lock(hashtext('/* TEMPLATE: schema */outbox'));

-- name: OutboxDoorbellRelease :exec
SELECT pg_advisory_unlock(hashtext('/* TEMPLATE: schema */outbox'));

-- OutboxDoorbellHeldBySleeper tells whether another session, a sleeping
-- poller, holds the doorbell (a one-bigint advisory lock shows its key's
-- halves as classid and objid).
-- name: OutboxDoorbellHeldBySleeper :one
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted
      AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      AND pid <> pg_backend_pid()
      AND classid::bigint = (hashtext('/* TEMPLATE: schema */outbox')::bigint >> 32) & 4294967295
      AND objid::bigint = hashtext('/* TEMPLATE: schema */outbox')::bigint & 4294967295
);
