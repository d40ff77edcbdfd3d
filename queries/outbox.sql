-- OutboxSleep says that a poller sleeps, listening, for the next @seconds.
-- name: OutboxSleep :exec
INSERT INTO /* TEMPLATE: schema */outbox_sleepers (poller_id, sleeping_until)
VALUES (@poller_id, now() + make_interval(secs => @seconds::float8))
ON CONFLICT (poller_id) DO UPDATE SET sleeping_until = EXCLUDED.sleeping_until;

-- OutboxWake says that a poller is awake (or stopped).
-- name: OutboxWake :exec
DELETE FROM /* TEMPLATE: schema */outbox_sleepers WHERE poller_id = @poller_id;

-- name: OutboxListen :exec
LISTEN "/* TEMPLATE: schema */outbox";
