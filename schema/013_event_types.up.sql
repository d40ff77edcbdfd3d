-- Event types: the catalogue's, and custom ones registered on purpose. A
-- custom type that is a near miss of a catalogue type (User.Craeted: the
-- same but for case, or for at most two letters added, removed, changed or
-- swapped) is almost always a typo: publish refuses it, with the catalogue's
-- spelling, unless it is registered here (hookrelay events register TYPE).
-- Custom types far from the catalogue need no registration.
CREATE TABLE /* TEMPLATE: schema */event_types (
    name text PRIMARY KEY,
    catalogue boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_types_name_valid CHECK (length(name) <= 100 AND name ~ '^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$')
);
INSERT INTO /* TEMPLATE: schema */event_types (name, catalogue)
SELECT unnest(ARRAY[
    'PostRegister', 'PostSignIn', 'PostSignInAdaptiveMfaTriggered', 'PostResetPassword',
    'User.Created', 'User.Deleted', 'User.Data.Updated', 'User.SuspensionStatus.Updated',
    'Role.Created', 'Role.Deleted', 'Role.Data.Updated', 'Role.Scopes.Updated',
    'Scope.Created', 'Scope.Deleted', 'Scope.Data.Updated',
    'Organization.Created', 'Organization.Deleted', 'Organization.Data.Updated', 'Organization.Membership.Updated',
    'OrganizationRole.Created', 'OrganizationRole.Deleted', 'OrganizationRole.Data.Updated', 'OrganizationRole.Scopes.Updated',
    'OrganizationScope.Created', 'OrganizationScope.Deleted', 'OrganizationScope.Data.Updated',
    'Identifier.Lockout', 'Message.RateLimited', 'Grant.LimitExceeded'
]), true;

-- event_type_near_miss is the catalogue type of which t is a near miss, or
-- NULL: t is not a known type, and differs from a catalogue type by case or
-- by an optimal string alignment distance of at most 2. Known types cost one
-- index lookup; others are compared with the few catalogue types that share
-- their first letter and nearly their length.
CREATE FUNCTION /* TEMPLATE: schema */event_type_near_miss(t text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c text;
    d int[];
    i int;
    j int;
    m int;
    n int := length(t);
    cost int;
BEGIN
    IF EXISTS (SELECT 1 FROM /* TEMPLATE: schema */event_types WHERE name = t) THEN
        RETURN NULL;
    END IF;
    FOR c IN SELECT name FROM /* TEMPLATE: schema */event_types
             WHERE catalogue AND (lower(name) = lower(t) OR (left(name, 1) = left(t, 1) AND abs(length(name) - n) <= 2))
    LOOP
        IF lower(c) = lower(t) THEN
            RETURN c;
        END IF;
        m := length(c);
        -- d holds the (m+1) x (n+1) matrix, row by row.
        d := array_fill(0, ARRAY[(m + 1) * (n + 1)]);
        FOR i IN 0..m LOOP d[i * (n + 1) + 1] := i; END LOOP;
        FOR j IN 0..n LOOP d[j + 1] := j; END LOOP;
        FOR i IN 1..m LOOP
            FOR j IN 1..n LOOP
                cost := CASE WHEN substr(c, i, 1) = substr(t, j, 1) THEN 0 ELSE 1 END;
                d[i * (n + 1) + j + 1] := least(d[(i - 1) * (n + 1) + j + 1] + 1, d[i * (n + 1) + j] + 1, d[(i - 1) * (n + 1) + j] + cost);
                IF i > 1 AND j > 1 AND substr(c, i, 1) = substr(t, j - 1, 1) AND substr(c, i - 1, 1) = substr(t, j, 1) THEN
                    d[i * (n + 1) + j + 1] := least(d[i * (n + 1) + j + 1], d[(i - 2) * (n + 1) + j - 1] + 1);
                END IF;
            END LOOP;
        END LOOP;
        IF d[(m + 1) * (n + 1)] <= 2 THEN
            RETURN c;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION /* TEMPLATE: schema */event_type_near_miss(text) FROM PUBLIC;

-- publish, as in 012, refusing unregistered near misses of the catalogue.
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
