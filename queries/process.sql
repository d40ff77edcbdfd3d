-- ProcessLockTake takes a process's lock for the session, unless it is held,
-- and returns the session's backend pid.
-- name: ProcessLockTake :one
SELECT pg_try_advisory_lock(@lock_key::bigint) AS taken, pg_backend_pid()::integer AS pid;

-- ProcessRegister registers a process by its lock, unless another process
-- with its client ID holds its own.
-- name: ProcessRegister :one
INSERT INTO /* TEMPLATE: schema */processes AS p (client_id, lock_key, lock_pid) VALUES (@client_id, @lock_key, @lock_pid)
ON CONFLICT (client_id) DO UPDATE SET lock_key = EXCLUDED.lock_key, lock_pid = EXCLUDED.lock_pid, started_at = now(), gone_since = NULL
WHERE NOT /* TEMPLATE: schema */process_lock_held(p.lock_key, p.lock_pid)
RETURNING true::boolean AS registered;

-- ProcessLookGone looks at the lock of every registered process but @self:
-- one that its backend does not hold means its connection closed. It notes when each
-- process was first found so (and forgets it for one found holding its lock
-- again), writing only what changed, and returns the processes found gone
-- at a look @confirm_after_s or more earlier, and now still: they are
-- dead, since they were first found gone.
-- name: ProcessLookGone :many
WITH looked AS (
    SELECT r.client_id AS id, r.gone_since AS since, NOT /* TEMPLATE: schema */process_lock_held(r.lock_key, r.lock_pid) AS gone
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

-- ProcessDead tells whether a process is dead: a look @confirm_after_s or
-- more ago found it gone (ProcessLookGone) and its backend still does not
-- hold its lock, or it is no longer registered (forgotten after it died).
-- name: ProcessDead :one
SELECT (NOT EXISTS (
    SELECT 1 FROM /* TEMPLATE: schema */processes
    WHERE client_id = @client_id AND (
        gone_since IS NULL OR gone_since >= now() - make_interval(secs => @confirm_after_s::float8)
        OR /* TEMPLATE: schema */process_lock_held(lock_key, lock_pid))
))::boolean AS dead;

-- ProcessForgetDead removes the processes of @client_ids first found gone
-- @forget_after_s or more ago.
-- name: ProcessForgetDead :exec
DELETE FROM /* TEMPLATE: schema */processes
WHERE client_id = ANY(@client_ids::text[]) AND gone_since < now() - make_interval(secs => @forget_after_s::float8);

-- name: ProcessDelete :exec
DELETE FROM /* TEMPLATE: schema */processes WHERE client_id = ANY(@client_ids::text[]);
