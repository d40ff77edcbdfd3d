-- The outbox doorbell: see schema/003_publish.up.sql.

-- name: OutboxListen :exec
LISTEN "/* TEMPLATE: schema */outbox";

-- OutboxDoorbellTake takes the doorbell for the session, unless a sleeping
-- poller holds it or a publishing transaction holds it shared.
-- name: OutboxDoorbellTake :one
SELECT pg_try_advisory_lock(hashtext('/* TEMPLATE: schema */outbox'));

-- name: OutboxDoorbellRelease :exec
SELECT pg_advisory_unlock(hashtext('/* TEMPLATE: schema */outbox'));

-- OutboxSleeperRegister registers the session as a sleeping poller, before
-- it takes the doorbell (see schema/015_borrowed_locks.up.sql).
-- name: OutboxSleeperRegister :exec
INSERT INTO /* TEMPLATE: schema */outbox_sleepers (pid) VALUES (pg_backend_pid()) ON CONFLICT DO NOTHING;

-- name: OutboxSleeperUnregister :exec
DELETE FROM /* TEMPLATE: schema */outbox_sleepers WHERE pid = pg_backend_pid();

-- OutboxDoorbellHeldBySleeper tells whether a registered sleeper holds the
-- doorbell (a one-bigint advisory lock shows its key's halves as classid
-- and objid), and drops the registrations of backends that do not.
-- name: OutboxDoorbellHeldBySleeper :one
WITH holders AS (
    SELECT pid FROM pg_catalog.pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND mode = 'ExclusiveLock' AND granted
      AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      AND classid::bigint = (hashtext('/* TEMPLATE: schema */outbox')::bigint >> 32) & 4294967295
      AND objid::bigint = hashtext('/* TEMPLATE: schema */outbox')::bigint & 4294967295
), stale AS (
    DELETE FROM /* TEMPLATE: schema */outbox_sleepers s WHERE s.pid NOT IN (SELECT pid FROM holders)
)
SELECT EXISTS (SELECT 1 FROM /* TEMPLATE: schema */outbox_sleepers s JOIN holders h ON h.pid = s.pid)::boolean AS sleeper;
