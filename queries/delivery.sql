-- name: DeliveryInsertBatch :many
INSERT INTO /* TEMPLATE: schema */deliveries (event_id, hook_id)
SELECT unnest(@event_ids::uuid[]), unnest(@hook_ids::uuid[])
ON CONFLICT (event_id, hook_id) DO NOTHING
RETURNING id;

-- name: DeliveryGetByID :one
SELECT * FROM /* TEMPLATE: schema */deliveries WHERE id = @id;

-- DeliveryGetForSend loads everything one attempt needs in one round trip.
-- name: DeliveryGetForSend :one
SELECT sqlc.embed(d), sqlc.embed(e), sqlc.embed(h)
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
JOIN /* TEMPLATE: schema */hooks h ON h.id = d.hook_id
WHERE d.id = @id;

-- name: DeliveryList :many
SELECT * FROM /* TEMPLATE: schema */deliveries
WHERE (sqlc.narg('hook_id')::uuid IS NULL OR hook_id = sqlc.narg('hook_id'))
  AND (sqlc.narg('status')::text IS NULL OR status = sqlc.narg('status'))
ORDER BY id DESC
LIMIT @max;

-- DeliveryRecordAttempt records one attempt on its delivery, and as a row of
-- delivery_attempts if it failed, moves the delivery to @status and keeps the
-- hook's failing_since (the start of its current run of failures), in one
-- statement.
-- name: DeliveryRecordAttempt :exec
WITH attempt AS (
    INSERT INTO /* TEMPLATE: schema */delivery_attempts (delivery_id, attempt, status_code, error, duration_ms, response_body, created_at)
    SELECT @delivery_id, @attempt, sqlc.narg('status_code'), sqlc.narg('error'), @duration_ms::integer, sqlc.narg('response_body'), @attempted_at::timestamptz
    WHERE NOT @succeeded::boolean
), hook_health AS (
    UPDATE /* TEMPLATE: schema */hooks
    SET failing_since = CASE WHEN @succeeded::boolean THEN NULL ELSE @attempted_at::timestamptz END
    WHERE hooks.id = @hook_id AND (failing_since IS NOT NULL) = @succeeded::boolean
)
UPDATE /* TEMPLATE: schema */deliveries
SET status = @status,
    attempts = attempts + 1,
    last_status_code = sqlc.narg('status_code'),
    last_error = sqlc.narg('error'),
    last_duration_ms = @duration_ms::integer,
    last_response_body = sqlc.narg('response_body'),
    last_attempt_at = @attempted_at::timestamptz,
    updated_at = @attempted_at::timestamptz,
    finished_at = CASE WHEN @status::text <> 'pending' THEN @attempted_at::timestamptz END
WHERE deliveries.id = @delivery_id;

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

