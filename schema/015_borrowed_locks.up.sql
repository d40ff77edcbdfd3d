-- Locks a low-privileged role cannot borrow. Every role may take any advisory
-- lock, and pg_locks shows every held key to every role: a lock tells only
-- that some session holds it. hookrelay now checks who holds its locks.

-- A process's lock: each take draws a random key and records the backend pid
-- of the lock's connection beside it. A process lives while that backend
-- holds that key. A role that queues for the key gets it only once the
-- process's backend let go, and holds it under another pid: the process
-- counts as gone (and, if alive, takes a fresh key), so no role can keep a
-- dead process alive nor a living one from its lock. A row without a pid was
-- registered by a release before this one, whose key is its client ID's hash:
-- its lock is looked at as before.
ALTER TABLE /* TEMPLATE: schema */processes ADD COLUMN lock_pid integer;

-- process_lock_held tells whether a process's lock is held by its own
-- backend. Invoker's rights, reading only what every role may read: PUBLIC
-- keeps EXECUTE, which lends nothing.
CREATE FUNCTION /* TEMPLATE: schema */process_lock_held(lock_key bigint, lock_pid integer) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN lock_pid IS NULL THEN NOT pg_try_advisory_xact_lock_shared(lock_key) ELSE EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.mode = 'ExclusiveLock' AND l.granted
          AND l.pid = lock_pid
          AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
          AND l.classid::bigint = (lock_key >> 32) & 4294967295
          AND l.objid::bigint = lock_key & 4294967295)
    END
$$;

-- The outbox doorbell (see 003): a poller about to sleep first registers its
-- backend in outbox_sleepers, then takes the doorbell, and leaves the table
-- when it lets go. A publish that finds the doorbell held sends a NOTIFY only
-- if a sleeper is registered, which only hookrelay's roles can do: a role
-- that holds the doorbell itself no longer makes every publish notify (and
-- so serialise commits). Pollers that find the doorbell held by a session
-- not registered poll instead of sleeping, and drop registrations of
-- backends that no longer hold it (a poller that died asleep). Every role
-- may read the table, as PublishTx does: it holds backend pids, which
-- pg_locks shows every role anyway. Unlogged: no sleeper survives a crash.
CREATE UNLOGGED TABLE /* TEMPLATE: schema */outbox_sleepers (
    pid integer PRIMARY KEY
);
GRANT SELECT ON /* TEMPLATE: schema */outbox_sleepers TO PUBLIC;

-- publish, as in 013 (with 014's setting), ringing the doorbell of sleeping
-- pollers only.
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb DEFAULT '{}',
    tenant_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $$
DECLARE
    event_id uuid;
    trace_parent text := current_setting('hookrelay.traceparent', true);
    near text;
BEGIN
    IF event_type IS NULL OR length(event_type) > 100
        OR event_type !~ '^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$' THEN
        RAISE EXCEPTION 'invalid event type %: event types are dotted PascalCase words of at most 100 characters, such as User.Created or PostSignIn', quote_nullable(event_type)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    near := /* TEMPLATE: schema */event_type_near_miss(event_type);
    IF near IS NOT NULL THEN
        RAISE EXCEPTION 'invalid event type %: it is not in the catalogue: did you mean %? A custom type this close to the catalogue''s must be registered first: hookrelay events register %', event_type, near, event_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF context IS NULL THEN
        context := '{}';
    END IF;
    IF jsonb_typeof(context) <> 'object' THEN
        RAISE EXCEPTION 'invalid event context: it must be a JSON object, not %', jsonb_typeof(context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tenant_id = '' OR octet_length(tenant_id) > 256 THEN
        RAISE EXCEPTION 'invalid tenant id: it must be NULL or a string of 1 to 256 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF trace_parent !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
        trace_parent := NULL;
    END IF;

    INSERT INTO /* TEMPLATE: schema */events (type, data, context, tenant_id, trace_parent)
    VALUES (event_type, data, context, tenant_id, trace_parent)
    RETURNING id INTO event_id;
    -- Ring the doorbell of a sleeping poller (see 003 and above).
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('/* TEMPLATE: schema */outbox')) THEN
        IF EXISTS (SELECT 1 FROM /* TEMPLATE: schema */outbox_sleepers) THEN
            PERFORM pg_notify('/* TEMPLATE: schema */outbox', '');
        END IF;
    END IF;
    RETURN event_id::text;
END;
$$;
-- CREATE OR REPLACE keeps the function's privileges; said again, so that
-- no reading of this file alone suggests PUBLIC may call it.
REVOKE ALL ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text) FROM PUBLIC;
