-- A hook's filter: a SQL/JSON path predicate on the event, such as
-- $.data.organizationId == "org_1", evaluated by the fan-out statement
-- itself (queries/delivery.sql, DeliveryInsertBatch) on
-- {"event": type, "tenantId": …, "data": …, "context": …}. An event for which
-- it is false, unknown or an error (a type mismatch) makes no delivery to
-- the hook. Stored as jsonpath, so that the database parses it once, when
-- it is set.
ALTER TABLE /* TEMPLATE: schema */hooks
    ADD COLUMN filter jsonpath,
    ADD CONSTRAINT hooks_filter_at_most_1024_characters CHECK (length(filter::text) <= 1024);
