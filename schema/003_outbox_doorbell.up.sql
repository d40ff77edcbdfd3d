-- Waking idle pollers. A poller that has found no event for a while sleeps
-- on LISTEN instead of polling, holding an exclusive session-level advisory
-- lock, the doorbell, on its listening connection. Every publish tries to take
-- the same lock shared, for its transaction: it fails only while a poller
-- sleeps, and then sends a NOTIFY, delivered at commit. Under load no poller
-- sleeps, so publishing never takes NOTIFY's commit lock, and the try costs no
-- table access. A poller takes the doorbell only when no publishing
-- transaction holds it shared, so every event committed before it sleeps is
-- visible to its last look; a poller that dies drops it with its connection.
-- Go's PublishTx does the same in its INSERT (queries/event.sql).
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb DEFAULT '{}',
    tenant_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    event_id uuid;
    -- The limit is the database setting hookrelay.max_payload_bytes when
    -- set (ALTER DATABASE … SET hookrelay.max_payload_bytes = '1048576'),
    -- else 256 KiB, the Go API's default.
    max_payload bigint := coalesce(nullif(current_setting('hookrelay.max_payload_bytes', true), '')::bigint, 262144);
BEGIN
    IF event_type IS NULL OR length(event_type) > 100
        OR event_type !~ '^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$' THEN
        RAISE EXCEPTION 'invalid event type %: event types are dotted PascalCase words of at most 100 characters, such as User.Created or PostSignIn', quote_nullable(event_type)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF context IS NULL THEN
        context := '{}';
    END IF;
    IF jsonb_typeof(context) <> 'object' THEN
        RAISE EXCEPTION 'invalid event context: it must be a JSON object, not %', jsonb_typeof(context)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF tenant_id = '' THEN
        RAISE EXCEPTION 'invalid tenant id: it must be NULL or a non-empty string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(octet_length(data::text), 0) + octet_length(context::text) > max_payload THEN
        RAISE EXCEPTION 'event payload too large: data and context together may be at most % bytes (setting hookrelay.max_payload_bytes)', max_payload
            USING ERRCODE = 'program_limit_exceeded';
    END IF;

    INSERT INTO /* TEMPLATE: schema */events (type, data, context, tenant_id)
    VALUES (event_type, data, context, tenant_id)
    RETURNING id INTO event_id;
    -- Ring the doorbell of a sleeping poller (see above).
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('/* TEMPLATE: schema */outbox')) THEN
        PERFORM pg_notify('/* TEMPLATE: schema */outbox', '');
    END IF;
    RETURN event_id::text;
END;
$$;

