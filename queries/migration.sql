-- name: MigrationTableExists :one
SELECT (to_regclass(@table_name::text) IS NOT NULL)::boolean;

-- name: MigrationListVersions :many
SELECT version FROM /* TEMPLATE: schema */hookrelay_migration ORDER BY version;

-- name: MigrationInsert :exec
INSERT INTO /* TEMPLATE: schema */hookrelay_migration (version, name) VALUES (@version, @name);

-- MigrationLock serialises concurrent migrations until the transaction ends.
-- name: MigrationLock :exec
SELECT pg_advisory_xact_lock(hashtext('hookrelay_migrate'));

-- name: MigrationLatestVersion :one
SELECT coalesce(max(version), 0)::integer FROM /* TEMPLATE: schema */hookrelay_migration;

-- name: MigrationRoleExists :one
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = @role_name::text)::boolean;

-- MigrationServerVersion is the server's version number, such as 170002.
-- name: MigrationServerVersion :one
SELECT current_setting('server_version_num')::integer;
