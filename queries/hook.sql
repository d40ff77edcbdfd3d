-- name: HookInsert :one
INSERT INTO /* TEMPLATE: schema */hooks (name, url, events, headers, tenant_id, enabled, signing_key, rate_count, rate_period_s, rate_burst, filter, ordering)
VALUES (@name, @url, @events, @headers, @tenant_id, @enabled, @signing_key, sqlc.narg('rate_count'), sqlc.narg('rate_period_s'), @rate_burst, sqlc.narg('filter')::jsonpath, @ordering)
RETURNING *;

-- name: HookGetByID :one
SELECT * FROM /* TEMPLATE: schema */hooks WHERE id = @id;

-- name: HookList :many
SELECT * FROM /* TEMPLATE: schema */hooks ORDER BY id;

-- name: HookCount :one
SELECT count(*) FROM /* TEMPLATE: schema */hooks;

-- name: HookListEnabled :many
SELECT id, events, tenant_id, (filter IS NOT NULL)::boolean AS filtered, (ordering = 'subject')::boolean AS ordered FROM /* TEMPLATE: schema */hooks WHERE enabled ORDER BY id;

-- name: HookUpdate :one
UPDATE /* TEMPLATE: schema */hooks
SET name = @name, url = @url, events = @events, headers = @headers, tenant_id = @tenant_id,
    rate_count = sqlc.narg('rate_count'), rate_period_s = sqlc.narg('rate_period_s'), rate_burst = @rate_burst,
    filter = sqlc.narg('filter')::jsonpath, ordering = @ordering, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: HookDelete :one
DELETE FROM /* TEMPLATE: schema */hooks WHERE id = @id RETURNING *;

-- HookDisable disables an enabled hook; a disabled one is left as it is.
-- name: HookDisable :one
UPDATE /* TEMPLATE: schema */hooks
SET enabled = false, disabled_reason = @disabled_reason, failing_since = NULL, updated_at = now()
WHERE id = @id AND enabled
RETURNING *;

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

-- name: RateInit :exec
INSERT INTO /* TEMPLATE: schema */hook_rates (hook_id) VALUES (@hook_id) ON CONFLICT DO NOTHING;

-- RateReserve reserves for a limited hook up to @n requests whose times fall
-- within @horizon_s seconds from now, by the generic cell rate algorithm
-- over its emission interval t and tolerance (the burst times t): request i
-- of those reserved is due at lead_s + i * t seconds from now (now at the
-- soonest), and the next reservation gets its first at next_s. t is the
-- period over the count, 1 % longer: requests leave a little late, never
-- early, and the margin keeps a late one from meeting the next one's
-- second. Now is when the statement holds the lock of the hook's state
-- (clock_timestamp() where the lock is taken: Postgres evaluates that row
-- again once a wait for another reservation ends), not when the statement
-- began; exec_s is the statement's time since, by which the caller maps
-- it to its own clock. No row: the hook is not limited, or has no state
-- yet.
-- name: RateReserve :one
WITH cur AS (
    SELECT r.hook_id, clock_timestamp() AS locked_at, r.tat, @n::integer AS n, @horizon_s::float8 AS horizon,
           1.01 * h.rate_period_s / h.rate_count AS t, 1.01 * h.rate_burst * h.rate_period_s / h.rate_count AS tolerance
    FROM /* TEMPLATE: schema */hook_rates r
    JOIN /* TEMPLATE: schema */hooks h ON h.id = r.hook_id
    WHERE r.hook_id = @hook_id AND h.rate_count IS NOT NULL
    FOR UPDATE OF r
), res AS (
    SELECT c.hook_id, c.locked_at, c.a, c.t, c.tolerance,
           least(c.n, greatest(0, ceil((date_part('epoch', c.locked_at - c.a) + c.horizon + c.tolerance) / c.t)))::integer AS k
    FROM (SELECT cur.*, greatest(cur.tat, cur.locked_at) AS a FROM cur) c
)
UPDATE /* TEMPLATE: schema */hook_rates r
SET tat = res.a + make_interval(secs => res.k * res.t)
FROM res
WHERE r.hook_id = res.hook_id
RETURNING res.k::integer AS reserved, res.t::float8 AS interval_s,
          (date_part('epoch', res.a - res.locked_at) - res.tolerance)::float8 AS lead_s,
          (date_part('epoch', r.tat - res.locked_at) - res.tolerance)::float8 AS next_s,
          date_part('epoch', clock_timestamp() - res.locked_at)::float8 AS exec_s;

-- HookFilterCheck checks a filter: it must parse as a SQL/JSON path and be a
-- predicate, which yields one boolean (or unknown) for the sample event.
-- name: HookFilterCheck :one
SELECT jsonb_path_match(@sample::jsonb, @filter::jsonpath, '{}', false)::boolean AS passes;

-- HookFilterMatch tells whether an event passes a filter, as the fan-out
-- decides it.
-- name: HookFilterMatch :one
SELECT coalesce(jsonb_path_match(
    jsonb_build_object('event', e.type, 'tenantId', e.tenant_id, 'data', e.data, 'context', e.context),
    @filter::jsonpath, '{}', true), false)::boolean AS passes
FROM /* TEMPLATE: schema */events e WHERE e.id = @event_id;
