-- Capture functions run with their owner's rights (SECURITY DEFINER). Those
-- installed before this migration kept the default EXECUTE for PUBLIC, with
-- which any role could attach one to a table of its own: take it back.
-- capture install gives new ones to the capture role, which holds only what
-- publishing needs, and builds them so that no cast or operator a table's
-- owner defines runs with its rights; install existing captures again
-- (hookrelay capture install) to get those.
DO $$
DECLARE
    f text;
BEGIN
    FOR f IN SELECT function_name FROM /* TEMPLATE: schema */captures LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION /* TEMPLATE: schema */%I() FROM PUBLIC', f);
    END LOOP;
END $$;

-- Event types as publish checks them, for every writer: a role with INSERT
-- on events (PublishTx's) could otherwise store any text as a type.
ALTER TABLE /* TEMPLATE: schema */events ADD CONSTRAINT events_type_valid
    CHECK (length(type) <= 100 AND type ~ '^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$') NOT VALID;
