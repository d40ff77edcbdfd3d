-- name: DeliveryInsertBatch :many
INSERT INTO /* TEMPLATE: schema */deliveries (event_id, hook_id)
SELECT unnest(@event_ids::uuid[]), unnest(@hook_ids::uuid[])
ON CONFLICT (event_id, hook_id) DO NOTHING
RETURNING id;

-- name: DeliveryGetByID :one
SELECT * FROM /* TEMPLATE: schema */deliveries WHERE id = @id;

-- DeliveryGetForSendMany loads everything the given deliveries' attempts
-- need in one round trip.
-- name: DeliveryGetForSendMany :many
SELECT sqlc.embed(d), sqlc.embed(e), sqlc.embed(h)
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
JOIN /* TEMPLATE: schema */hooks h ON h.id = d.hook_id
WHERE d.id = ANY(@ids::uuid[]);

-- name: DeliveryList :many
SELECT * FROM /* TEMPLATE: schema */deliveries
WHERE (sqlc.narg('hook_id')::uuid IS NULL OR hook_id = sqlc.narg('hook_id'))
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status'))
ORDER BY id DESC
LIMIT @max;

-- DeliveryRecordAttempts records attempts, one per delivery: each on its
-- delivery, and as a row of delivery_attempts if it failed; moves each
-- delivery to its status; and keeps each hook's failing_since (the start of
-- its current run of failures: a success in the batch ends it). Zero status
-- codes and empty strings stand for NULL.
-- name: DeliveryRecordAttempts :exec
WITH input AS (
    SELECT unnest(@delivery_ids::uuid[]) AS delivery_id,
           unnest(@hook_ids::uuid[]) AS hook_id,
           unnest(@attempts::integer[]) AS attempt,
           nullif(unnest(@status_codes::integer[]), 0) AS status_code,
           nullif(unnest(@errors::text[]), '') AS error,
           unnest(@durations_ms::integer[]) AS duration_ms,
           nullif(unnest(@response_bodies::text[]), '') AS response_body,
           unnest(@statuses::text[]) AS status,
           unnest(@attempted_at::timestamptz[]) AS attempted_at
), attempt AS (
    INSERT INTO /* TEMPLATE: schema */delivery_attempts (delivery_id, attempt, status_code, error, duration_ms, response_body, created_at)
    SELECT delivery_id, attempt, status_code, error, duration_ms, response_body, attempted_at
    FROM input
    WHERE status <> 'succeeded'
), hook_health AS (
    UPDATE /* TEMPLATE: schema */hooks
    SET failing_since = CASE WHEN per_hook.any_success THEN NULL ELSE per_hook.first_attempt_at END
    FROM (
        SELECT hook_id, bool_or(status = 'succeeded') AS any_success, min(attempted_at) AS first_attempt_at
        FROM input GROUP BY hook_id
    ) per_hook
    WHERE hooks.id = per_hook.hook_id AND (hooks.failing_since IS NOT NULL) = per_hook.any_success
)
UPDATE /* TEMPLATE: schema */deliveries
SET status = input.status,
    attempts = deliveries.attempts + 1,
    last_status_code = input.status_code,
    last_error = input.error,
    last_duration_ms = input.duration_ms,
    last_response_body = input.response_body,
    last_attempt_at = input.attempted_at,
    updated_at = input.attempted_at,
    finished_at = CASE WHEN input.status <> 'pending' THEN input.attempted_at END
FROM input
WHERE deliveries.id = input.delivery_id;

-- name: DeliveryCancel :exec
UPDATE /* TEMPLATE: schema */deliveries
SET status = 'canceled', last_error = @reason, updated_at = now(), finished_at = now()
WHERE id = @id AND status = 'pending';

-- DeliveryReset makes finished deliveries pending again for a replay; pending
-- ones are left alone, as a job for them exists already.
-- name: DeliveryReset :many
UPDATE /* TEMPLATE: schema */deliveries
SET status = 'pending', updated_at = now(), finished_at = NULL
WHERE id = ANY(@ids::uuid[]) AND status <> 'pending'
RETURNING id;

-- name: DeliveryListIDsForReplay :many
SELECT id FROM /* TEMPLATE: schema */deliveries
WHERE hook_id = @hook_id
  AND created_at >= @since
  AND created_at < @until
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status'))
ORDER BY id
LIMIT @max;

-- name: DeliveryAttemptList :many
SELECT * FROM /* TEMPLATE: schema */delivery_attempts WHERE delivery_id = @delivery_id ORDER BY id;

-- DeliveryInsertTest records a test-send: an event that is never fanned out,
-- and its one delivery to the hook under test.
-- name: DeliveryInsertTest :one
WITH event AS (
    INSERT INTO /* TEMPLATE: schema */events (type, data, context, fanned_out_at)
    VALUES (@type, @data, '{"test": true}', now())
    RETURNING id
)
INSERT INTO /* TEMPLATE: schema */deliveries (event_id, hook_id)
SELECT id, @hook_id FROM event
RETURNING id;

-- DeliveryCountByStatus counts deliveries by status, pending ones split by
-- whether an attempt failed already. It scans the table: for small
-- databases such as the demo's.
-- name: DeliveryCountByStatus :many
SELECT status, (status = 'pending' AND attempts > 0)::boolean AS retrying, count(*)::bigint AS count
FROM /* TEMPLATE: schema */deliveries
GROUP BY 1, 2;

