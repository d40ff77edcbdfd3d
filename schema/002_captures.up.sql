-- Change capture: triggers that publish events from an existing auth
-- database's tables. Each row records one installed capture.
CREATE TABLE /* TEMPLATE: schema */captures (
    table_name text PRIMARY KEY,
    entity text NOT NULL,
    columns text[] NOT NULL,
    tenant_column text,
    function_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT captures_columns_not_empty CHECK (cardinality(columns) > 0)
);
