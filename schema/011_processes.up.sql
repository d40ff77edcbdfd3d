-- Processes working hookrelay's jobs. Each holds, on a connection of its own,
-- a session-level advisory lock keyed by lock_key for as long as it lives:
-- Postgres releases it the moment that connection closes, so a lock that
-- can be taken tells that its process is gone, and a survivor gives back its
-- work at once (jobs.Relay's rescuer). gone_since is when a process first
-- found the lock free, so that any process can confirm the death a moment
-- later, itself restarted or not. A process stopped cleanly removes its row;
-- the rescuer removes those of the dead.
CREATE TABLE /* TEMPLATE: schema */processes (
    client_id text PRIMARY KEY,
    lock_key bigint NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    gone_since timestamptz
);
