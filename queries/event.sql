-- EventInsert writes an event and rings the outbox doorbell if a poller
-- sleeps, as the SQL function publish does (schema/003_publish.up.sql).
-- name: EventInsert :one
INSERT INTO /* TEMPLATE: schema */events (id, type, data, context, tenant_id, trace_parent, subject, subject_seq)
VALUES (@id, @type, @data, @context, @tenant_id, @trace_parent, sqlc.narg('subject')::text,
    CASE WHEN sqlc.narg('subject')::text IS NOT NULL THEN nextval('/* TEMPLATE: schema */events_subject_seq') END)
RETURNING id, CASE
    WHEN pg_try_advisory_xact_lock_shared(hashtext('/* TEMPLATE: schema */outbox')) THEN false
    WHEN NOT EXISTS (SELECT 1 FROM /* TEMPLATE: schema */outbox_sleepers) THEN false
    ELSE pg_notify('/* TEMPLATE: schema */outbox', '') IS NULL
END::boolean AS rang;

-- name: EventGetByID :one
SELECT * FROM /* TEMPLATE: schema */events WHERE id = @id;

-- EventList pages by keyset, newest first: @after is the last id of the
-- previous page. Each event comes with how many deliveries it fanned out to.
-- name: EventList :many
SELECT e.id, e.type, e.tenant_id, e.created_at, e.fanned_out_at,
       (SELECT count(*) FROM /* TEMPLATE: schema */deliveries d WHERE d.event_id = e.id)::bigint AS deliveries
FROM /* TEMPLATE: schema */events e
WHERE (sqlc.narg('type')::text IS NULL OR e.type = sqlc.narg('type'))
  AND (sqlc.narg('after')::uuid IS NULL OR e.id < sqlc.narg('after'))
ORDER BY e.id DESC
LIMIT @max;

-- name: EventUnfannedExists :one
SELECT EXISTS (SELECT 1 FROM /* TEMPLATE: schema */events WHERE fanned_out_at IS NULL);

-- EventClaimBatch locks up to @max unclaimed events, oldest first. SKIP LOCKED
-- lets concurrent fan-out jobs take disjoint batches.
-- name: EventClaimBatch :many
SELECT id, type, tenant_id, trace_parent, subject, subject_seq
FROM /* TEMPLATE: schema */events
WHERE fanned_out_at IS NULL
ORDER BY id
LIMIT @max
FOR UPDATE SKIP LOCKED;

-- name: EventMarkFannedOut :exec
UPDATE /* TEMPLATE: schema */events SET fanned_out_at = now() WHERE id = ANY(@ids::uuid[]);

-- EventPublishSQL calls the SQL function that writers in other languages use.
-- name: EventPublishSQL :one
SELECT /* TEMPLATE: schema */publish(@event_type::text, sqlc.narg('data')::jsonb, coalesce(sqlc.narg('context')::jsonb, '{}'), sqlc.narg('tenant_id')::text, sqlc.narg('subject')::text)::text;

-- EventOldestUnfannedCreatedAt is the creation time of the oldest event
-- waiting for fan-out, for the outbox lag metric.
-- name: EventOldestUnfannedCreatedAt :many
SELECT created_at FROM /* TEMPLATE: schema */events
WHERE fanned_out_at IS NULL
ORDER BY id
LIMIT 1;

-- EventDeleteFinishedBefore deletes up to @max events created before
-- @before that are fanned out and have no pending delivery; their deliveries
-- and attempts go with them (ON DELETE CASCADE). Ids are UUIDv7, whose first
-- 48 bits are the creation time in milliseconds: the primary key finds old
-- events without an index on created_at.
-- name: EventDeleteFinishedBefore :execrows
DELETE FROM /* TEMPLATE: schema */events
WHERE id IN (
    SELECT e.id FROM /* TEMPLATE: schema */events e
    WHERE e.id < (lpad(to_hex((extract(epoch FROM @before::timestamptz) * 1000)::bigint), 12, '0') || '00000000000000000000')::uuid
      AND e.fanned_out_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM /* TEMPLATE: schema */deliveries d
          WHERE d.event_id = e.id AND d.status = 'pending'
      )
    ORDER BY e.id
    LIMIT @max
);

-- name: EventTypeRegister :exec
INSERT INTO /* TEMPLATE: schema */event_types (name)
SELECT unnest(@names::text[])
ON CONFLICT (name) DO NOTHING;

-- name: EventTypeRegistered :one
SELECT EXISTS (SELECT 1 FROM /* TEMPLATE: schema */event_types WHERE name = @name);

-- name: EventTypeList :many
SELECT * FROM /* TEMPLATE: schema */event_types ORDER BY catalogue DESC, name;
