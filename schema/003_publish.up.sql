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
--
-- Publishers hold EXECUTE on publish and nothing else. publish runs as its
-- owner (SECURITY DEFINER, with a search_path no caller can change, every
-- name qualified), so writers need no privilege on the tables and cannot
-- insert, read or change events directly. EXECUTE is granted explicitly:
--   GRANT USAGE ON SCHEMA hookrelay TO writer;
--   GRANT EXECUTE ON FUNCTION hookrelay.publish(text, jsonb, jsonb, text) TO writer;
--
-- What is stored is bounded by the database, whoever writes it: data and
-- context as stored (rendered, so 1e100000 counts as the hundred thousand
-- digits a receiver would get), and tenant ids. An administrator may raise the limit by
-- replacing the constraint; a publisher cannot. NOT VALID: rows written
-- before are not checked again.
ALTER TABLE /* TEMPLATE: schema */events
    ADD CONSTRAINT events_data_and_context_at_most_262144_bytes
        CHECK (coalesce(octet_length(data::text), 0) + octet_length(context::text) <= 262144) NOT VALID,
    ADD CONSTRAINT events_tenant_id_at_most_256_bytes
        CHECK (octet_length(tenant_id) <= 256) NOT VALID;

CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb DEFAULT '{}',
    tenant_id text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    event_id uuid;
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
    -- The size of data and context as stored is bounded by the table's
    -- constraint events_data_and_context_at_most_262144_bytes.

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


REVOKE ALL ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text) FROM PUBLIC;
