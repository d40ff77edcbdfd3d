-- ProcessLockTake takes a process's lock for the session, unless it is held.
-- name: ProcessLockTake :one
SELECT pg_try_advisory_lock(@lock_key::bigint);

-- name: ProcessRegister :exec
INSERT INTO /* TEMPLATE: schema */processes (client_id, lock_key) VALUES (@client_id, @lock_key)
ON CONFLICT (client_id) DO UPDATE SET lock_key = EXCLUDED.lock_key, started_at = now(), gone_since = NULL;

-- ProcessLookGone looks at the lock of every registered process but @self:
-- one that can be taken means its connection closed. It notes when each
-- process was first found so (and forgets it for one found holding its lock
-- again), writing only what changed, and returns the processes found gone
-- at a look @confirm_after_s or more earlier, and now still: they are
-- dead, since they were first found gone. Taking a lock shared, for the
-- statement's transaction, leaves it as it was.
-- name: ProcessLookGone :many
WITH looked AS (
    SELECT r.client_id AS id, r.gone_since AS since, pg_try_advisory_xact_lock_shared(r.lock_key) AS gone
    FROM /* TEMPLATE: schema */processes r
    WHERE r.client_id <> @self::text
), noted AS (
    UPDATE /* TEMPLATE: schema */processes p
    SET gone_since = CASE WHEN l.gone THEN now() END
    FROM looked l
    WHERE p.client_id = l.id AND (l.since IS NULL) = l.gone
)
SELECT l.id, l.since::timestamptz AS gone_since FROM looked l
WHERE l.gone AND l.since < now() - make_interval(secs => @confirm_after_s::float8)
ORDER BY l.id;

-- ProcessLockFree tells whether a process's lock can be taken.
-- name: ProcessLockFree :one
SELECT pg_try_advisory_xact_lock_shared(@lock_key::bigint);

-- ProcessForgetDead removes the processes of @client_ids first found gone
-- @forget_after_s or more ago.
-- name: ProcessForgetDead :exec
DELETE FROM /* TEMPLATE: schema */processes
WHERE client_id = ANY(@client_ids::text[]) AND gone_since < now() - make_interval(secs => @forget_after_s::float8);

-- name: ProcessDelete :exec
DELETE FROM /* TEMPLATE: schema */processes WHERE client_id = ANY(@client_ids::text[]);
