-- uuid7 takes the sub-millisecond part of the clock as well (RFC 9562,
-- method 3: 12 bits of extra clock precision in place of random bits), so
-- that ids made one after another sort in the order they were made. Indexes
-- on ids then grow at their right edge and stay nearly full, instead of half
-- full from splits between ids of the same millisecond.
CREATE OR REPLACE FUNCTION /* TEMPLATE: schema */uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    overlay(uuid_send(gen_random_uuid())
      PLACING int8send(((us / 1000) << 16) | (7 << 12) | ((us % 1000) * 4096 / 1000))
      FROM 1 FOR 8),
    'hex')::uuid
  FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS us) AS now
$$;

-- Retention finds old events by id, which starts with their creation time.
DROP INDEX /* TEMPLATE: schema */events_created_at_idx;
