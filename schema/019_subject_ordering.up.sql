-- Ordered delivery per subject. An event may carry a subject (an entity's
-- key: a user, an organization); it then takes a number from a sequence as
-- it is written, subject_seq, which orders the events of its subject: writes
-- to one subject are serialised by the writer's row locks, so a later write
-- takes a larger number, and so does a later event of one transaction. Event
-- ids cannot order them: they are drawn in each publisher's clock, to the
-- millisecond.
ALTER TABLE /* TEMPLATE: schema */events
    ADD COLUMN subject text CHECK (octet_length(subject) BETWEEN 1 AND 256),
    ADD COLUMN subject_seq bigint;
CREATE SEQUENCE /* TEMPLATE: schema */events_subject_seq AS bigint;

-- A run holds back a delivery while an event of its subject that comes
-- before it is not fanned out yet (two fan-outs may commit out of order).
CREATE INDEX events_unfanned_subject_idx ON /* TEMPLATE: schema */events (subject, subject_seq)
    WHERE fanned_out_at IS NULL AND subject IS NOT NULL;

-- ordering 'subject': a delivery is sent only once every earlier delivery of
-- its subject to the hook is final.
ALTER TABLE /* TEMPLATE: schema */hooks
    ADD COLUMN ordering text NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'subject'));

-- A delivery to a hook ordered by subject gets, at its fan-out, its
-- subject's key (the subject qualified by its tenant, whose length leads so
-- that no two pairs make one key) and its event's subject_seq; a run clears
-- the key once the delivery is final, so that the index holds the waiting
-- deliveries only (its key and sequence never change otherwise, and the
-- attempts of other deliveries stay HOT updates). waiting_job is the deliver
-- job that holds the delivery back: whoever finishes its predecessor wakes
-- that job.
ALTER TABLE /* TEMPLATE: schema */deliveries
    ADD COLUMN order_key text,
    ADD COLUMN order_seq bigint,
    ADD COLUMN waiting_job bigint;
CREATE INDEX deliveries_order_idx ON /* TEMPLATE: schema */deliveries (hook_id, order_key, order_seq)
    WHERE order_key IS NOT NULL;

-- publish with a subject. A function of its own, beside the four-argument
-- publish (whose signature writers' grants name): one more parameter with a
-- default would make calls with fewer arguments ambiguous. Writers allowed
-- to publish may publish with a subject.
CREATE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb,
    tenant_id text,
    subject text
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
    IF subject = '' OR octet_length(subject) > 256 THEN
        RAISE EXCEPTION 'invalid subject: it must be NULL or a string of 1 to 256 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF trace_parent !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
        trace_parent := NULL;
    END IF;

    INSERT INTO /* TEMPLATE: schema */events (type, data, context, tenant_id, trace_parent, subject, subject_seq)
    VALUES (event_type, data, context, tenant_id, trace_parent, subject,
        CASE WHEN subject IS NOT NULL THEN nextval('/* TEMPLATE: schema */events_subject_seq') END)
    RETURNING id INTO event_id;
    -- Ring the doorbell of a sleeping poller (see 003 and 015).
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('/* TEMPLATE: schema */outbox')) THEN
        IF EXISTS (SELECT 1 FROM /* TEMPLATE: schema */outbox_sleepers) THEN
            PERFORM pg_notify('/* TEMPLATE: schema */outbox', '');
        END IF;
    END IF;
    RETURN event_id::text;
END;
$$;
REVOKE ALL ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text, text) FROM PUBLIC;

-- The four-argument publish is the five-argument one without a subject; it
-- runs as its owner, so a writer granted only it still publishes.
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */publish(
    event_type text,
    data jsonb,
    context jsonb DEFAULT '{}',
    tenant_id text DEFAULT NULL
) RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT /* TEMPLATE: schema */publish(event_type, data, context, tenant_id, NULL::text)
$$;
REVOKE ALL ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text) FROM PUBLIC;

-- Whoever may call the four-argument publish may call the new one.
DO $grant$
DECLARE
    grantee regrole;
BEGIN
    FOR grantee IN
        SELECT DISTINCT a.grantee::regrole
        FROM pg_proc p, aclexplode(p.proacl) a
        WHERE p.oid = '/* TEMPLATE: schema */publish(text, jsonb, jsonb, text)'::regprocedure
          AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text, text) TO %s', grantee);
    END LOOP;
END;
$grant$;
