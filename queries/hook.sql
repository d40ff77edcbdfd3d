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
    updated_at = now()
WHERE id = @id
RETURNING *;
