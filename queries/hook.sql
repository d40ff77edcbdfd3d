-- name: HookInsert :one
INSERT INTO /* TEMPLATE: schema */hooks (name, url, events, headers, tenant_id, enabled, signing_key)
VALUES (@name, @url, @events, @headers, @tenant_id, @enabled, @signing_key)
RETURNING *;

-- name: HookGetByID :one
SELECT * FROM /* TEMPLATE: schema */hooks WHERE id = @id;

-- name: HookList :many
SELECT * FROM /* TEMPLATE: schema */hooks ORDER BY id;

-- name: HookCount :one
SELECT count(*) FROM /* TEMPLATE: schema */hooks;

-- name: HookListEnabled :many
SELECT id, events, tenant_id FROM /* TEMPLATE: schema */hooks WHERE enabled ORDER BY id;

-- name: HookUpdate :one
UPDATE /* TEMPLATE: schema */hooks
SET name = @name, url = @url, events = @events, headers = @headers, tenant_id = @tenant_id, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: HookDelete :execrows
DELETE FROM /* TEMPLATE: schema */hooks WHERE id = @id;

-- name: HookSetEnabled :one
UPDATE /* TEMPLATE: schema */hooks
SET enabled = @enabled, disabled_reason = sqlc.narg('disabled_reason'), failing_since = NULL, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: HookRotateKey :one
UPDATE /* TEMPLATE: schema */hooks
SET previous_signing_key = CASE WHEN @overlap_until::timestamptz > now() THEN signing_key END,
    previous_key_expires_at = CASE WHEN @overlap_until::timestamptz > now() THEN @overlap_until::timestamptz END,
    signing_key = @signing_key,
    key_rotated_at = now(),
    updated_at = now()
WHERE id = @id
RETURNING *;

-- HookStats counts a hook's requests and successes of the last 24 hours, as
-- Logto's console shows them: attempts are rows (failures, and successes a
-- replay kept), a delivery's latest success is on the delivery. Retries end
-- within the default schedule's 28 hours, so deliveries of the last two days
-- cover every attempt of the window.
-- name: HookStats :one
WITH rows AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE a.error IS NULL AND a.status_code BETWEEN 200 AND 299) AS ok
    FROM /* TEMPLATE: schema */delivery_attempts a
    JOIN /* TEMPLATE: schema */deliveries d ON d.id = a.delivery_id
    WHERE d.hook_id = @hook_id
      AND d.created_at > now() - interval '2 days'
      AND a.created_at > now() - interval '24 hours'
), succeeded AS (
    SELECT count(*) AS n
    FROM /* TEMPLATE: schema */deliveries
    WHERE hook_id = @hook_id
      AND created_at > now() - interval '2 days'
      AND status = 'succeeded'
      AND last_attempt_at > now() - interval '24 hours'
)
SELECT (rows.n + succeeded.n)::bigint AS requests, (rows.ok + succeeded.n)::bigint AS successes
FROM rows, succeeded;
