-- What a capture that publishes once per transaction has decided, per
-- entity and transaction: 'P' published, 'Q' no event (its own columns did
-- not change); or what it has to decide at commit: 'T' the transaction
-- changed the entity, 'C' and a child of it. Only the capture role may read or write it (capture install
-- grants it), so that no writer can silence an entity's events, as a session
-- setting would let it. Unlogged: what it holds matters only until its
-- transaction ends, and a crash ends every transaction; capture functions
-- delete the rows of ended transactions as they go.
CREATE UNLOGGED TABLE /* TEMPLATE: schema */capture_published (
    xid xid8 NOT NULL,
    capture text NOT NULL,
    entity text NOT NULL,
    state text NOT NULL,
    PRIMARY KEY (xid, capture, entity),
    CONSTRAINT capture_published_state_valid CHECK (state IN ('P', 'Q', 'T', 'C'))
);

-- PL/pgSQL reads a function's literals with the standard_conforming_strings
-- of the session that first calls it: pinned, a backslash in a literal means
-- the same in every session. publish's type check has one.
ALTER FUNCTION /* TEMPLATE: schema */publish(text, jsonb, jsonb, text) SET standard_conforming_strings = on;
