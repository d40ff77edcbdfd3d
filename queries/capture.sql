-- name: CaptureInsert :one
INSERT INTO /* TEMPLATE: schema */captures (table_name, entity, columns, tenant_column, function_name, preset)
VALUES (@table_name, @entity, @columns, @tenant_column, @function_name, @preset)
ON CONFLICT (table_name) DO UPDATE
SET entity = EXCLUDED.entity, columns = EXCLUDED.columns, tenant_column = EXCLUDED.tenant_column,
    preset = EXCLUDED.preset, created_at = now()
RETURNING *;

-- name: CaptureList :many
SELECT * FROM /* TEMPLATE: schema */captures ORDER BY table_name;

-- name: CaptureGet :one
SELECT * FROM /* TEMPLATE: schema */captures WHERE table_name = @table_name;

-- name: CaptureListByPreset :many
SELECT * FROM /* TEMPLATE: schema */captures WHERE preset = @preset ORDER BY table_name;

-- name: CaptureDelete :exec
DELETE FROM /* TEMPLATE: schema */captures WHERE table_name = @table_name;

-- CaptureTableColumns resolves a table name as Postgres would and lists its
-- columns; no row means no such table. Its qualified name, quoted where
-- needed, names it unambiguously: s."x.y" is not "s.x".y.
-- name: CaptureTableColumns :many
SELECT n.nspname::text AS schema_name, c.relname::text AS table_name,
       (quote_ident(n.nspname) || '.' || quote_ident(c.relname))::text AS qualified_name,
       a.attname::text AS column_name,
       format_type(a.atttypid, NULL)::text AS column_type,
       a.atttypid::bigint AS column_type_oid,
       a.attnotnull AS not_null,
       c.relrowsecurity AS row_security
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass(@table_name::text) AND c.relkind IN ('r', 'p')
ORDER BY a.attnum;

-- CaptureUniqueKeys lists the column sets of a table's unique indexes that
-- hold at every statement: valid, not deferred, not partial, on columns only.
-- name: CaptureUniqueKeys :many
SELECT array_agg(a.attname::text ORDER BY a.attname)::text[] AS columns
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = to_regclass(@table_name::text) AND i.indisunique AND i.indisvalid AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid;

-- CaptureRoleGet says whether the role exists and whether it bypasses
-- row-level security.
-- name: CaptureRoleGet :many
SELECT coalesce(rolbypassrls, false)::boolean AS bypass_rls FROM pg_catalog.pg_roles WHERE rolname = @role_name::text;

-- CaptureInstallerGet says whether the session's role is a superuser and
-- whether it is a member of the capture role.
-- name: CaptureInstallerGet :one
SELECT coalesce(r.rolsuper, false)::boolean AS superuser,
       (CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles c WHERE c.rolname = @role_name::text)
             THEN pg_catalog.pg_has_role(current_user, @role_name::text, 'USAGE') ELSE false END)::boolean AS member
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
