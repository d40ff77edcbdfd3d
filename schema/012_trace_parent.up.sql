-- The publisher's W3C trace context, when it published inside a trace:
-- fan-out and each delivery attempt continue that trace, and every request
-- carries a traceparent header. NULL, as for every event published outside a
-- trace, costs nothing.
ALTER TABLE /* TEMPLATE: schema */events ADD COLUMN trace_parent text,
    ADD CONSTRAINT events_trace_parent_w3c
        CHECK (trace_parent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$') NOT VALID;

-- publish, as in 003, and the caller's trace context from the setting
-- hookrelay.traceparent, for SQL publishers inside a trace:
--   SET LOCAL hookrelay.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
--   SELECT hookrelay.publish(...);
-- A value that is not a W3C traceparent is ignored: tracing never stops a
-- publish.
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb DEFAULT '{}',
    tenant_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    event_id uuid;
    trace_parent text := current_setting('hookrelay.traceparent', true);
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
    -- Ring the doorbell of a sleeping poller (see 003).
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('/* TEMPLATE: schema */outbox')) THEN
        PERFORM pg_notify('/* TEMPLATE: schema */outbox', '');
    END IF;
    RETURN event_id::text;
END;
$$;
-- CREATE OR REPLACE keeps the function's privileges; said again, so that
-- no reading of this file alone suggests PUBLIC may call it.
REVOKE ALL ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text) FROM PUBLIC;
