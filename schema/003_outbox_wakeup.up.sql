-- Waking idle pollers. A poller that has found no event for a while sleeps
-- on LISTEN instead of polling, with a row in outbox_sleepers; an event
-- committed while any poller sleeps sends one NOTIFY. Under load every poller
-- is awake and the table is empty, so publishing transactions never queue on
-- NOTIFY's commit lock.
CREATE TABLE /* TEMPLATE: schema */outbox_sleepers (
    poller_id text PRIMARY KEY,
    -- The poller renews this while it sleeps; past it, the row is stale (its
    -- process died asleep) and ignored.
    sleeping_until timestamptz NOT NULL
);

-- outbox_wake runs as its owner, so that publishers need no privilege on
-- outbox_sleepers, with a search_path that no caller can change.
CREATE FUNCTION /* TEMPLATE: schema */outbox_wake() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM /* TEMPLATE: schema */outbox_sleepers WHERE sleeping_until > now()) THEN
        PERFORM pg_notify('/* TEMPLATE: schema */outbox', '');
    END IF;
    RETURN NULL;
END;
$$;

-- Deferred to commit, so that the table is read as late as possible: a
-- poller falling asleep after that still finds the event when it looks once
-- more. Identical notifications of one transaction are sent once.
CREATE CONSTRAINT TRIGGER outbox_wake AFTER INSERT ON /* TEMPLATE: schema */events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION /* TEMPLATE: schema */outbox_wake();
