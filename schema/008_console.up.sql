-- The console lists a hook's deliveries newest first, by keyset on id: the
-- index on (hook_id, id) serves that list and, as ids are UUIDv7 (their first
-- 48 bits are the creation time in milliseconds), every query by a hook's
-- time range, which the index on (hook_id, created_at) served.
CREATE INDEX deliveries_hook_id_idx ON /* TEMPLATE: schema */deliveries (hook_id, id);
DROP INDEX /* TEMPLATE: schema */deliveries_hook_created_idx;

-- uuid7_floor is the smallest UUIDv7 of the millisecond of t: ids created at
-- or after t are at least this.
CREATE FUNCTION /* TEMPLATE: schema */uuid7_floor(t timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '00000000000000000000')::uuid
$$;

-- When the signing key last changed, so that the console can tell which
-- attempts were signed with the keys the hook holds.
ALTER TABLE /* TEMPLATE: schema */hooks ADD COLUMN key_rotated_at timestamptz;
