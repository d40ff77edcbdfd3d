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

-- HookStatsMany counts each hook's requests and successes of the last 24
-- hours, as Logto's console shows them: attempts are rows (failures, and
-- successes a replay kept), a delivery's latest success is on the delivery.
-- Retries end within the default schedule's 28 hours, so deliveries of the
-- last two days cover every attempt of the window.
-- name: HookStatsMany :many
WITH attempts AS (
    SELECT d.hook_id, count(*) AS n,
           count(*) FILTER (WHERE a.error IS NULL AND a.status_code BETWEEN 200 AND 299) AS ok
    FROM /* TEMPLATE: schema */delivery_attempts a
    JOIN /* TEMPLATE: schema */deliveries d ON d.id = a.delivery_id
    WHERE d.hook_id = ANY(@hook_ids::uuid[])
      AND d.created_at > now() - interval '2 days'
      AND a.created_at > now() - interval '24 hours'
    GROUP BY d.hook_id
), succeeded AS (
    SELECT hook_id, count(*) AS n
    FROM /* TEMPLATE: schema */deliveries
    WHERE hook_id = ANY(@hook_ids::uuid[])
      AND created_at > now() - interval '2 days'
      AND status = 'succeeded'
      AND last_attempt_at > now() - interval '24 hours'
    GROUP BY hook_id
)
SELECT h.id::text AS hook_id,
       (coalesce(a.n, 0) + coalesce(s.n, 0))::bigint AS requests,
       (coalesce(a.ok, 0) + coalesce(s.n, 0))::bigint AS successes
FROM unnest(@hook_ids::uuid[]) AS h(id)
LEFT JOIN attempts a ON a.hook_id = h.id
LEFT JOIN succeeded s ON s.hook_id = h.id;
