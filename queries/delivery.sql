-- DeliveryInsertBatch creates the deliveries of (event, hook) pairs; a pair
-- marked filtered only if the event passes the hook's filter (see
-- schema/017_hook_filters.up.sql), which is looked up for those pairs only.
-- A pair with an order key is a delivery to a hook ordered by subject (see
-- schema/019_subject_ordering.up.sql).
-- name: DeliveryInsertBatch :many
INSERT INTO /* TEMPLATE: schema */deliveries (event_id, hook_id, order_key, order_seq)
SELECT p.event_id, p.hook_id, nullif(p.order_key, ''), CASE WHEN p.order_key <> '' THEN p.order_seq END
FROM (SELECT unnest(@event_ids::uuid[]) AS event_id, unnest(@hook_ids::uuid[]) AS hook_id, unnest(@filtered::boolean[]) AS filtered,
             unnest(@order_keys::text[]) AS order_key, unnest(@order_seqs::bigint[]) AS order_seq) p
WHERE CASE WHEN p.filtered THEN coalesce((
    SELECT jsonb_path_match(
        jsonb_build_object('event', e.type, 'tenantId', e.tenant_id, 'data', e.data, 'context', e.context),
        h.filter, '{}', true)
    FROM /* TEMPLATE: schema */events e, /* TEMPLATE: schema */hooks h
    WHERE e.id = p.event_id AND h.id = p.hook_id), false)
    ELSE true END
ON CONFLICT (event_id, hook_id) DO NOTHING
RETURNING id, hook_id, order_key;

-- name: DeliveryGetByID :one
SELECT sqlc.embed(d), sqlc.embed(e), sqlc.embed(h)
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
JOIN /* TEMPLATE: schema */hooks h ON h.id = d.hook_id
WHERE d.id = @id;

-- DeliveryGetForSendMany loads everything the given deliveries' attempts
-- need in one round trip.
-- name: DeliveryGetForSendMany :many
SELECT sqlc.embed(d), sqlc.embed(e), sqlc.embed(h)
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
JOIN /* TEMPLATE: schema */hooks h ON h.id = d.hook_id
WHERE d.id = ANY(@ids::uuid[]);

-- DeliveryList pages by keyset, newest first by id (UUIDv7, so by creation
-- time): @after is the last id of the previous page.
-- name: DeliveryList :many
SELECT sqlc.embed(d), e.type AS event_type
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
WHERE (sqlc.narg('event_id')::uuid IS NULL OR d.event_id = sqlc.narg('event_id'))
  AND (sqlc.narg('status')::text IS NULL OR d.status = sqlc.narg('status'))
  AND (sqlc.narg('after')::uuid IS NULL OR d.id < sqlc.narg('after'))
ORDER BY d.id DESC
LIMIT @max;

-- DeliveryListByHook is DeliveryList for one hook, in the order of the index
-- on (hook_id, created_at) with id breaking ties (a fan-out transaction's
-- deliveries share created_at), so that a page costs the same however many
-- deliveries the hook or the table holds.
-- name: DeliveryListByHook :many
SELECT sqlc.embed(d), e.type AS event_type
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
WHERE d.hook_id = @hook_id
  AND (sqlc.narg('event_id')::uuid IS NULL OR d.event_id = sqlc.narg('event_id'))
  AND (sqlc.narg('status')::text IS NULL OR d.status = sqlc.narg('status'))
  AND (sqlc.narg('after')::uuid IS NULL OR (d.created_at, d.id) < (
      SELECT a.created_at, a.id FROM /* TEMPLATE: schema */deliveries a WHERE a.id = sqlc.narg('after')))
ORDER BY d.created_at DESC, d.id DESC
LIMIT @max;

-- DeliveryLastFailedMany returns each hook's latest failed delivery, for the
-- hooks given.
-- name: DeliveryLastFailedMany :many
SELECT sqlc.embed(d), e.type AS event_type
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
WHERE d.id IN (
    SELECT (SELECT f.id FROM /* TEMPLATE: schema */deliveries f
            WHERE f.hook_id = h.id AND f.status = 'failed'
            ORDER BY f.created_at DESC
            LIMIT 1)
    FROM unnest(@hook_ids::uuid[]) AS h(id)
);

-- DeliveryRecordAttempts records attempts, one per delivery: each on its
-- delivery, and as a row of delivery_attempts unless it became the
-- delivery's success; moves each delivery that is still pending to its
-- status; and keeps each hook's failing_since (the start of its current run
-- of failures: a success in the batch ends it). An attempt is recorded only
-- on a delivery that has the attempts it had when loaded (attempt - 1), so an
-- outcome that another run overtook changes nothing; a delivery canceled
-- while its request was in flight keeps its status and logs the attempt. It
-- returns the recorded deliveries with their status. Zero status codes and
-- empty strings stand for NULL.
-- name: DeliveryRecordAttempts :many
WITH input AS (
    SELECT unnest(@delivery_ids::uuid[]) AS delivery_id,
           unnest(@attempts::integer[]) AS attempt,
           nullif(unnest(@status_codes::integer[]), 0) AS status_code,
           nullif(unnest(@errors::text[]), '') AS error,
           unnest(@durations_ms::integer[]) AS duration_ms,
           nullif(unnest(@response_bodies::text[]), '') AS response_body,
           unnest(@statuses::text[]) AS status,
           unnest(@attempted_at::timestamptz[]) AS attempted_at,
           unnest(@next_attempt_at::timestamptz[]) AS next_attempt_at
), recorded AS (
    UPDATE /* TEMPLATE: schema */deliveries
    SET status = CASE WHEN deliveries.status = 'pending' THEN input.status ELSE deliveries.status END,
        attempts = input.attempt,
        last_status_code = input.status_code,
        last_error = input.error,
        last_duration_ms = input.duration_ms,
        last_response_body = input.response_body,
        last_attempt_at = input.attempted_at,
        updated_at = input.attempted_at,
        next_attempt_at = CASE WHEN deliveries.status = 'pending' AND input.status = 'pending' THEN input.next_attempt_at END,
        order_key = CASE WHEN deliveries.status = 'pending' AND input.status = 'pending' THEN deliveries.order_key END,
        finished_at = CASE
            WHEN deliveries.status <> 'pending' THEN deliveries.finished_at
            WHEN input.status <> 'pending' THEN input.attempted_at
        END
    FROM input
    WHERE deliveries.id = input.delivery_id
      AND deliveries.attempts = input.attempt - 1
    RETURNING deliveries.id, deliveries.hook_id, deliveries.status
), attempt AS (
    INSERT INTO /* TEMPLATE: schema */delivery_attempts (delivery_id, attempt, status_code, error, duration_ms, response_body, created_at)
    SELECT input.delivery_id, input.attempt, input.status_code, input.error, input.duration_ms, input.response_body, input.attempted_at
    FROM input JOIN recorded ON recorded.id = input.delivery_id
    WHERE NOT (input.status = 'succeeded' AND recorded.status = 'succeeded')
), hook_health AS (
    UPDATE /* TEMPLATE: schema */hooks
    SET failing_since = CASE WHEN per_hook.any_success THEN NULL ELSE per_hook.first_attempt_at END
    FROM (
        SELECT recorded.hook_id, bool_or(input.status = 'succeeded') AS any_success, min(input.attempted_at) AS first_attempt_at
        FROM input JOIN recorded ON recorded.id = input.delivery_id
        GROUP BY recorded.hook_id
    ) per_hook
    WHERE hooks.id = per_hook.hook_id AND (hooks.failing_since IS NOT NULL) = per_hook.any_success
)
SELECT id, status FROM recorded;

-- DeliveryCancelPendingOfHook ends every pending delivery of a hook as
-- canceled, in the transaction that disables or deletes it.
-- name: DeliveryHookHasPending :one
SELECT EXISTS (SELECT 1 FROM /* TEMPLATE: schema */deliveries WHERE hook_id = @hook_id AND status = 'pending')::boolean AS pending;

-- DeliveryCancelPendingOfHook cancels up to @max pending deliveries of a
-- hook, skipping those a run is recording: it never waits for a lock.
-- name: DeliveryCancelPendingOfHook :execrows
UPDATE /* TEMPLATE: schema */deliveries d
SET status = 'canceled', last_error = @reason, updated_at = now(), finished_at = now()
WHERE d.id IN (
    SELECT p.id FROM /* TEMPLATE: schema */deliveries p
    WHERE p.hook_id = @hook_id AND p.status = 'pending'
    LIMIT @max FOR UPDATE SKIP LOCKED
) AND d.status = 'pending';

-- DeliveryReset makes finished deliveries pending again for a replay, due at
-- once and at the start of the retry schedule; pending ones are left alone,
-- as a job for them exists already. A success lives on its delivery only, so
-- it is first kept as an attempt row: a replay never erases history.
-- name: DeliveryReset :many
WITH reset AS (
    SELECT id, attempts, last_status_code, last_duration_ms, last_response_body, last_attempt_at, status
    FROM /* TEMPLATE: schema */deliveries
    WHERE id = ANY(@ids::uuid[]) AND status <> 'pending'
    FOR UPDATE
), kept AS (
    INSERT INTO /* TEMPLATE: schema */delivery_attempts (delivery_id, attempt, status_code, duration_ms, response_body, created_at)
    SELECT id, attempts, last_status_code, coalesce(last_duration_ms, 0), last_response_body, last_attempt_at
    FROM reset
    WHERE status = 'succeeded' AND last_attempt_at IS NOT NULL
)
UPDATE /* TEMPLATE: schema */deliveries d
SET status = 'pending', updated_at = now(), finished_at = NULL, next_attempt_at = NULL, replayed_attempts = d.attempts,
    order_key = NULL -- a replay goes at once, in no order
FROM reset
WHERE d.id = reset.id
RETURNING d.id;

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


-- DeliveryCancelMany ends the given pending deliveries as canceled.
-- name: DeliveryCancelMany :exec
UPDATE /* TEMPLATE: schema */deliveries
SET status = 'canceled', last_error = @reason, updated_at = now(), finished_at = now()
WHERE id = ANY(@ids::uuid[]) AND status = 'pending';

-- DeliveryListPendingBefore lists pending deliveries last changed before
-- @before, for the reconciler. It scans the table: it runs every few minutes.
-- name: DeliveryListPendingBefore :many
SELECT id, hook_id FROM /* TEMPLATE: schema */deliveries
WHERE status = 'pending' AND updated_at < @before
ORDER BY id
LIMIT @max;

-- DeliveryMakeDue makes a pending delivery due at once, for a replay of one
-- whose job was lost.
-- name: DeliveryMakeDue :exec
UPDATE /* TEMPLATE: schema */deliveries SET next_attempt_at = NULL WHERE id = @id AND status = 'pending';

-- DeliveryLease sets the given deliveries' next attempt to @until, each only
-- while it still has the attempts given: a request that a run stopped waiting
-- for records its outcome itself, and its delivery is not due again until
-- that request has surely ended.
-- name: DeliveryLease :exec
UPDATE /* TEMPLATE: schema */deliveries d
SET next_attempt_at = @until::timestamptz
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@attempts::integer[]) AS attempts) lease
WHERE d.id = lease.id AND d.attempts = lease.attempts AND d.status = 'pending';

-- DeliveryWaitOn notes that job @job_id holds back the given deliveries (of
-- hooks ordered by subject), for whoever finishes a delivery before them
-- to wake it; it writes only what changed.
-- name: DeliveryWaitOn :exec
UPDATE /* TEMPLATE: schema */deliveries SET waiting_job = @job_id
WHERE id = ANY(@ids::uuid[]) AND waiting_job IS DISTINCT FROM @job_id;

-- DeliveryHeldBack returns those of the given deliveries (of hooks ordered
-- by subject) that come after one of their subject that is not final yet: a
-- delivery to their hook still pending, or an event not yet fanned out (a
-- fan-out that claimed it may commit after the one that made them). Each
-- comes with the soonest it may go: now for an event not fanned out, else
-- the next attempt of the first of its subject still pending, which all the
-- others wait for (now when due).
-- name: DeliveryHeldBack :many
SELECT d.id, h.until::timestamptz AS until
FROM /* TEMPLATE: schema */deliveries d
JOIN /* TEMPLATE: schema */events e ON e.id = d.event_id
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM /* TEMPLATE: schema */events u
                     WHERE u.fanned_out_at IS NULL AND u.subject = e.subject AND u.subject_seq < e.subject_seq
                       AND u.tenant_id IS NOT DISTINCT FROM e.tenant_id) THEN now()
        ELSE (SELECT greatest(coalesce(p.next_attempt_at, now()), now()) FROM /* TEMPLATE: schema */deliveries p
              WHERE p.hook_id = d.hook_id AND p.order_key = d.order_key AND p.order_seq < d.order_seq AND p.status = 'pending'
              ORDER BY p.order_seq
              LIMIT 1)
    END AS until
) h
WHERE d.id = ANY(@ids::uuid[]) AND d.order_key IS NOT NULL AND h.until IS NOT NULL;

-- DeliveryWaitingAfter returns the jobs holding back the next pending
-- delivery of each (hook, order key) after the given order sequence numbers:
-- the successors of deliveries that just became final. It locks the
-- successors: a job noting that it holds one back (DeliveryWaitOn) either
-- committed before, and is returned, or waits for this transaction, and its
-- look then finds the predecessor final.
-- name: DeliveryWaitingAfter :many
SELECT DISTINCT n.waiting_job::bigint AS job_id
FROM (SELECT unnest(@hook_ids::uuid[]) AS hook_id, unnest(@order_keys::text[]) AS order_key, unnest(@order_seqs::bigint[]) AS order_seq) f
CROSS JOIN LATERAL (
    SELECT s.waiting_job FROM /* TEMPLATE: schema */deliveries s
    WHERE s.hook_id = f.hook_id AND s.order_key = f.order_key AND s.order_seq > f.order_seq AND s.status = 'pending'
    ORDER BY s.order_seq
    LIMIT 1
    FOR UPDATE
) n
WHERE n.waiting_job IS NOT NULL;

-- DeliveryJobWakeListen listens for wakes of deliver jobs (DeliveryJobWake).
-- name: DeliveryJobWakeListen :exec
LISTEN "/* TEMPLATE: schema */deliver_wake";

-- DeliveryJobWake tells every listening process, once the transaction
-- commits, that the deliver jobs job_ids (separated by spaces) may send
-- deliveries they hold back: a process running one of them runs it again.
-- name: DeliveryJobWake :exec
SELECT pg_notify('/* TEMPLATE: schema */deliver_wake', @job_ids::text);
