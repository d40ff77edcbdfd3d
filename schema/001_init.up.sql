-- hookrelay's tables. Every name is written /* TEMPLATE: schema */name; the
-- migrator replaces the marker with the configured schema, so the same file
-- serves any schema and is also sqlc's catalogue.

-- uuid7 returns a time-ordered UUID (RFC 9562 version 7), so primary keys grow
-- at the right edge of their index instead of splitting pages at random.
CREATE FUNCTION /* TEMPLATE: schema */uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

CREATE TABLE /* TEMPLATE: schema */hooks (
    id uuid PRIMARY KEY DEFAULT /* TEMPLATE: schema */uuid7(),
    name text NOT NULL,
    url text NOT NULL,
    events text[] NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}',
    tenant_id text,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    signing_key text NOT NULL,
    previous_signing_key text,
    previous_key_expires_at timestamptz,
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hooks_events_not_empty CHECK (cardinality(events) > 0),
    CONSTRAINT hooks_headers_object CHECK (jsonb_typeof(headers) = 'object')
);

CREATE TABLE /* TEMPLATE: schema */events (
    id uuid PRIMARY KEY DEFAULT /* TEMPLATE: schema */uuid7(),
    type text NOT NULL,
    data jsonb,
    context jsonb NOT NULL DEFAULT '{}',
    tenant_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    fanned_out_at timestamptz,
    CONSTRAINT events_context_object CHECK (jsonb_typeof(context) = 'object')
);

-- The fan-out claimer reads only unclaimed events: this index stays as small
-- as the backlog, however large the table grows.
CREATE INDEX events_unfanned_idx ON /* TEMPLATE: schema */events (id) WHERE fanned_out_at IS NULL;
CREATE INDEX events_created_at_idx ON /* TEMPLATE: schema */events (created_at);

CREATE TABLE /* TEMPLATE: schema */deliveries (
    id uuid PRIMARY KEY DEFAULT /* TEMPLATE: schema */uuid7(),
    event_id uuid NOT NULL REFERENCES /* TEMPLATE: schema */events (id) ON DELETE CASCADE,
    hook_id uuid NOT NULL REFERENCES /* TEMPLATE: schema */hooks (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    -- The latest attempt, which is never a row of delivery_attempts when it
    -- succeeded: a success costs no extra row.
    last_status_code integer,
    last_error text,
    last_duration_ms integer,
    last_response_body text,
    last_attempt_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    -- Invariant: one delivery per (event, hook), whatever crashes in between.
    CONSTRAINT deliveries_event_hook_key UNIQUE (event_id, hook_id),
    CONSTRAINT deliveries_status_valid CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled'))
) WITH (fillfactor = 85); -- room for HOT updates: no index covers what an attempt changes

CREATE INDEX deliveries_hook_created_idx ON /* TEMPLATE: schema */deliveries (hook_id, created_at);

-- Failed attempts; a successful one is recorded on its delivery only.
CREATE TABLE /* TEMPLATE: schema */delivery_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES /* TEMPLATE: schema */deliveries (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    status_code integer,
    error text,
    duration_ms integer NOT NULL,
    response_body text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX delivery_attempts_delivery_idx ON /* TEMPLATE: schema */delivery_attempts (delivery_id);

-- publish writes one event in the caller's transaction and returns its id.
-- Validation matches the Go API's (outbox.ValidateEventType and friends).
CREATE FUNCTION /* TEMPLATE: schema */publish(
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
    RETURN event_id::text;
END;
$$;

CREATE TABLE /* TEMPLATE: schema */hookrelay_migration (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
