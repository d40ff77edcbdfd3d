package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
	"github.com/hookrelay/hookrelay/outbox"
)

// hostileCasts defines, in schema %[1]s, an enum e and casts from it to
// json, jsonb and (implicitly) text whose functions try to make role %[2]s a
// superuser and leave a mark in the session (pwn.ran_as) whoever they ran
// as. Whoever owns a type may define casts from it.
const hostileCasts = `
CREATE TYPE %[1]s.e AS ENUM ('t1', 't2', 'r1', 'x', 'y', 'Ann');
CREATE FUNCTION %[1]s.pwn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
  PERFORM set_config('pwn.ran_as', current_user, false);
  BEGIN
    EXECUTE 'ALTER ROLE %[2]s SUPERUSER';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END $$;
CREATE FUNCTION %[1]s.pwn_json(%[1]s.e) RETURNS json LANGUAGE plpgsql AS $$ BEGIN PERFORM %[1]s.pwn(); RETURN '"pwned"'; END $$;
CREATE FUNCTION %[1]s.pwn_jsonb(%[1]s.e) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN PERFORM %[1]s.pwn(); RETURN '"pwned"'; END $$;
CREATE FUNCTION %[1]s.pwn_text(%[1]s.e) RETURNS text LANGUAGE plpgsql AS $$ BEGIN PERFORM %[1]s.pwn(); RETURN 'pwned'; END $$;
CREATE CAST (%[1]s.e AS json) WITH FUNCTION %[1]s.pwn_json(%[1]s.e);
CREATE CAST (%[1]s.e AS jsonb) WITH FUNCTION %[1]s.pwn_jsonb(%[1]s.e);
CREATE CAST (%[1]s.e AS text) WITH FUNCTION %[1]s.pwn_text(%[1]s.e) AS IMPLICIT;
`

// rightsBundle has a database with two login roles besides its owner: an
// owner of application tables, who owns schema app, and a writer holding
// exactly the README's publish grants and a schema of its own.
type rightsBundle struct {
	*storeBundle
	owner, writer         string
	ownerConn, writerConn *pgx.Conn
}

func setupRights(t *testing.T) *rightsBundle {
	t.Helper()
	return setupRightsOn(t, setupStore(t))
}

func (b *rightsBundle) connect(t *testing.T, user, password string) *pgx.Conn {
	t.Helper()
	config := b.pool.Config().ConnConfig.Copy()
	config.User, config.Password = user, password
	conn, err := pgx.ConnectConfig(context.Background(), config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// requireNoEscalation fails unless no hostile cast ran in conn's session
// and role is no superuser.
func (b *rightsBundle) requireNoEscalation(t *testing.T, conn *pgx.Conn, role string) {
	t.Helper()
	ctx := context.Background()
	var ranAs *string
	require.NoError(t, conn.QueryRow(ctx, "SELECT nullif(current_setting('pwn.ran_as', true), '')").Scan(&ranAs))
	require.Nil(t, ranAs, "a cast the table's owner defined ran inside a capture function")
	var superuser bool
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role).Scan(&superuser))
	require.False(t, superuser)
}

// runAs runs sql on conn, as its role.
func runAs(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql)
	require.NoError(t, err, sql)
}

func requirePgError(t *testing.T, err error, code, contains string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want Postgres error %s, got %v", code, err)
	require.Equal(t, code, pgErr.Code, pgErr.Message)
	require.Contains(t, pgErr.Message, contains)
}

// captureFunction returns the trigger function of table's capture.
func captureFunction(t *testing.T, bundle *storeBundle, table string) string {
	t.Helper()
	var function string
	require.NoError(t, bundle.pool.QueryRow(context.Background(), "SELECT 'hookrelay.' || function_name FROM hookrelay.captures WHERE table_name = $1", table).Scan(&function))
	return function
}

// TestCaptureLendsNoRights: a capture function runs with rights of its own,
// yet neither a publisher nor the captured table's owner can make it run
// code of theirs: not by attaching it to a table of their own, not by a cast
// from a type they own.
func TestCaptureLendsNoRights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRights(t)
	runAs(t, b.ownerConn, "CREATE TABLE app.accounts (id text PRIMARY KEY, tenant text, name text, plan text, password_hash text)")
	_, err := capture.New(b.store).Install(ctx, &capture.Capture{Table: "app.accounts", Entity: "Account", Columns: []string{"id", "name", "plan"}, TenantColumn: "tenant"})
	require.NoError(t, err)
	function := captureFunction(t, b.storeBundle, "app.accounts")

	var owner string
	var publicExecute bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT pg_get_userbyid(proowner), has_function_privilege('public', p.oid, 'EXECUTE')
		FROM pg_proc p WHERE p.oid = $1::regprocedure`, function+"()").Scan(&owner, &publicExecute))
	require.Equal(t, capture.New(b.store).Role(), owner, "the function runs as the capture role, not as its installer")
	require.False(t, publicExecute)
	var login, super, createRole bool
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT rolcanlogin, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1", owner).Scan(&login, &super, &createRole))
	require.False(t, login || super || createRole)

	t.Run("PublisherCannotAttachIt", func(t *testing.T) {
		runAs(t, b.writerConn, fmt.Sprintf(hostileCasts, "writer_s", b.writer))
		runAs(t, b.writerConn, "CREATE TABLE writer_s.t (id text PRIMARY KEY, tenant writer_s.e, name writer_s.e, plan writer_s.e)")
		_, err := b.writerConn.Exec(ctx, fmt.Sprintf("CREATE TRIGGER pwn AFTER INSERT ON writer_s.t FOR EACH ROW EXECUTE FUNCTION %s()", function))
		requirePgError(t, err, "42501", "permission denied for function")

		// Granted EXECUTE by mistake, the function still serves its own
		// table only.
		_, err = b.pool.Exec(ctx, fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s() TO %s", function, b.writer))
		require.NoError(t, err)
		runAs(t, b.writerConn, fmt.Sprintf("CREATE TRIGGER pwn AFTER INSERT ON writer_s.t FOR EACH ROW EXECUTE FUNCTION %s()", function))
		_, err = b.writerConn.Exec(ctx, "INSERT INTO writer_s.t VALUES ('1', 'x', 'x', 'x')")
		requirePgError(t, err, "42501", "serves table app.accounts, not writer_s.t")
		b.requireNoEscalation(t, b.writerConn, b.writer)
	})

	t.Run("TableOwnerCannotRunACastInIt", func(t *testing.T) {
		runAs(t, b.ownerConn, fmt.Sprintf(hostileCasts, "app", b.owner))
		runAs(t, b.ownerConn, `ALTER TABLE app.accounts ALTER COLUMN plan TYPE app.e USING plan::app.e,
			ALTER COLUMN tenant TYPE app.e USING tenant::app.e, ALTER COLUMN name TYPE app.e USING name::app.e`)
		runAs(t, b.ownerConn, "INSERT INTO app.accounts (id, tenant, name, plan, password_hash) VALUES ('a1', 't1', 'Ann', 'x', 'argon2')")
		runAs(t, b.ownerConn, "UPDATE app.accounts SET plan = 'y' WHERE id = 'a1'")
		runAs(t, b.ownerConn, "DELETE FROM app.accounts WHERE id = 'a1'")
		b.requireNoEscalation(t, b.ownerConn, b.owner)

		events := capturedEvents(t, b.storeBundle)
		require.Equal(t, []string{"Account.Created", "Account.Data.Updated", "Account.Deleted"}, []string{events[0].Type, events[1].Type, events[2].Type})
		require.Equal(t, map[string]any{"id": "a1", "name": "Ann", "plan": "x"}, events[0].Data, "an enum's value is published as its label")
		require.Equal(t, "y", events[1].object()["plan"])
		require.Equal(t, "t1", *events[0].Tenant)
	})
}

// TestLogtoPresetLendsNoRights: the same for the Logto preset's entity and
// relation functions, the owner of Logto's tables being a role that is no
// superuser.
func TestLogtoPresetLendsNoRights(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logto := setupLogto(t)
	b := setupRightsOn(t, logto.storeBundle)
	_, err := installLogto(t, logto.store)
	require.NoError(t, err)
	for _, table := range []string{"public.users", "public.roles_scopes", "public.organization_user_relations", "public.logs"} {
		function := captureFunction(t, logto.storeBundle, table)
		_, err := b.writerConn.Exec(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS writer_s.t (id text); CREATE TRIGGER pwn AFTER INSERT ON writer_s.t FOR EACH ROW EXECUTE FUNCTION %s()", function))
		requirePgError(t, err, "42501", "permission denied for function")
	}

	// Logto's scopes and the relation to roles belong to a role that is no
	// superuser, which gives their columns types of its own.
	logto.admin(t, fmt.Sprintf(`ALTER TABLE scopes OWNER TO %[1]s; ALTER TABLE roles_scopes OWNER TO %[1]s;
		ALTER TABLE scopes DROP CONSTRAINT scopes_tenant_id_fkey;`, b.owner))
	runAs(t, b.ownerConn, fmt.Sprintf(hostileCasts, "app", b.owner))
	runAs(t, b.ownerConn, "ALTER TABLE scopes ALTER COLUMN name TYPE app.e USING 'x', ALTER COLUMN description TYPE app.e USING 'y'")
	logto.exec(t, `INSERT INTO roles (id, name, description) VALUES ('r1', 'admin', 'Admins');
		INSERT INTO scopes (id, resource_id, name, description) VALUES ('s1', 'res1', 'x', 'y'), ('s2', 'res1', 'x', 'y')`)
	events := logto.exec(t, "INSERT INTO roles_scopes (id, role_id, scope_id) VALUES ('rs1', 'r1', 's1')")
	require.Equal(t, []string{"Role.Scopes.Updated"}, eventTypes(events))
	require.Equal(t, []any{map[string]any{"id": "s1", "resourceId": "res1", "name": "x", "description": "y", "createdAt": events[0].Data.([]any)[0].(map[string]any)["createdAt"]}}, events[0].Data)
	b.requireNoEscalation(t, logto.tenant, b.owner)

	// A column that lookups compare, given a type with an implicit cast to
	// text: the function refuses to read on, and the cast never runs.
	runAs(t, b.ownerConn, `ALTER TABLE roles_scopes DROP CONSTRAINT roles_scopes_role_id_fkey;
		ALTER TABLE roles_scopes ALTER COLUMN role_id TYPE app.e USING role_id::text::app.e`)
	_, err = logto.tenant.Exec(ctx, "INSERT INTO roles_scopes (id, role_id, scope_id) VALUES ('rs2', 'r1', 's2')")
	requirePgError(t, err, "55000", "changed its type since it was installed")
	b.requireNoEscalation(t, logto.tenant, b.owner)
	require.Empty(t, logto.fresh(t))
}

// setupRightsOn is setupRights on an existing database.
func setupRightsOn(t *testing.T, bundle *storeBundle) *rightsBundle {
	t.Helper()
	ctx := context.Background()
	suffix := time.Now().UnixNano() % 1e12
	b := &rightsBundle{storeBundle: bundle, owner: fmt.Sprintf("appowner_%d", suffix), writer: fmt.Sprintf("writer_%d", suffix)}
	_, err := bundle.pool.Exec(ctx, fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN PASSWORD 'owner-password';
		CREATE ROLE %[2]s LOGIN PASSWORD 'writer-password';
		CREATE SCHEMA app AUTHORIZATION %[1]s;
		CREATE SCHEMA writer_s AUTHORIZATION %[2]s;
		GRANT USAGE ON SCHEMA hookrelay TO %[2]s;
		GRANT EXECUTE ON FUNCTION hookrelay.publish(text, jsonb, jsonb, text) TO %[2]s;`, b.owner, b.writer))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s, %[2]s CASCADE; DROP ROLE IF EXISTS %[1]s; DROP ROLE IF EXISTS %[2]s", b.owner, b.writer))
	})
	b.ownerConn = b.connect(t, b.owner, "owner-password")
	b.writerConn = b.connect(t, b.writer, "writer-password")
	return b
}

// TestLogtoRelationsStayInTheirTenant: relation rows reference parents and
// children by id alone, and foreign keys pass row-level security; a
// tenant's row naming another tenant's scope or role publishes nothing of
// it. Relation bodies and entities are bounded, so that no Logto write can
// fail on hookrelay's event limit.
func TestLogtoRelationsStayInTheirTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logto := setupLogto(t)
	_, err := installLogto(t, logto.store)
	require.NoError(t, err)
	logto.admin(t, `INSERT INTO roles (tenant_id, id, name, description) VALUES ('t2', 'r_t2', 'theirs', 'Tenant 2');
		INSERT INTO scopes (tenant_id, id, resource_id, name, description) VALUES ('t2', 's_t2', 'res2', 'secret:scope', 'TENANT-2-ONLY')`)
	logto.fresh(t)

	logto.exec(t, `INSERT INTO roles (id, name, description) VALUES ('r1', 'admin', 'Admins');
		INSERT INTO scopes (id, resource_id, name) VALUES ('s1', 'res1', 'read')`)
	events := logto.exec(t, "INSERT INTO roles_scopes (id, role_id, scope_id) VALUES ('rs1', 'r1', 's1'), ('rs2', 'r1', 's_t2')")
	require.Equal(t, []string{"Role.Scopes.Updated"}, eventTypes(events))
	require.Equal(t, []any{map[string]any{"id": "s1", "resourceId": "res1", "name": "read", "description": nil,
		"createdAt": events[0].Data.([]any)[0].(map[string]any)["createdAt"]}}, events[0].Data, "tenant 2's scope is not listed")
	require.Empty(t, logto.exec(t, "INSERT INTO roles_scopes (id, role_id, scope_id) VALUES ('rs3', 'r_t2', 's1')"),
		"a relation row of tenant 1 naming tenant 2's role is no event of either")
	var leaked int
	require.NoError(t, logto.pool.QueryRow(ctx, `SELECT count(*) FROM hookrelay.events WHERE tenant_id = 't1' AND (coalesce(data::text, '') || context::text) ~ '(TENANT-2-ONLY|secret:scope|r_t2)'`).Scan(&leaked))
	require.Zero(t, leaked)

	t.Run("RelationBodiesAreBounded", func(t *testing.T) {
		logto.exec(t, "INSERT INTO scopes (id, resource_id, name) SELECT 'many' || lpad(i::text, 4, '0'), 'res1', 'scope ' || i FROM generate_series(1, 1500) i")
		events := logto.exec(t, "INSERT INTO roles_scopes (id, role_id, scope_id) SELECT 'rsm' || i, 'r1', 'many' || lpad(i::text, 4, '0') FROM generate_series(1, 1500) i")
		require.Len(t, events, 1)
		require.Len(t, events[0].Data, 1000)
		require.Equal(t, true, events[0].Context["truncated"])

		logto.exec(t, "DELETE FROM roles_scopes WHERE role_id = 'r1'")
		logto.exec(t, "INSERT INTO scopes (id, resource_id, name, description) SELECT 'big' || i, 'res1', 'big ' || i, repeat('d', 20000) FROM generate_series(1, 10) i")
		events = logto.exec(t, "INSERT INTO roles_scopes (id, role_id, scope_id) SELECT 'rsb' || i, 'r1', 'big' || i FROM generate_series(1, 10) i")
		require.Len(t, events, 1)
		require.Less(t, len(events[0].Data.([]any)), 10)
		require.Equal(t, true, events[0].Context["truncated"])
	})

	t.Run("EntitiesAreBounded", func(t *testing.T) {
		events := logto.exec(t, "INSERT INTO scopes (id, resource_id, name, description) VALUES ('huge', 'res1', 'huge', repeat('h', 300000))")
		require.Equal(t, []string{"Scope.Created"}, eventTypes(events))
		require.Equal(t, "huge", events[0].object()["name"])
		require.NotContains(t, events[0].object(), "description", "the value too large for an event is left out")
		require.Equal(t, true, events[0].Context["truncated"])
	})
}

// TestCaptureRefusesSecretLookingColumns: the column-list guard refuses
// names that commonly hold secrets.
func TestCaptureRefusesSecretLookingColumns(t *testing.T) {
	for _, column := range []string{
		"password_hash", "api_key", "pwd", "pass_digest", "recovery_codes", "encrypted_pw", "session_cookie",
		"pin", "signing_key", "refreshToken", "userPassword", "totp_seed", "private_key", "client_secret",
	} {
		require.True(t, capture.LooksSecret(column), column)
	}
	for _, column := range []string{"id", "username", "primary_email", "name", "created_at", "tenant_id", "spin_count", "monkey", "session_id", "passenger"} {
		require.False(t, capture.LooksSecret(column), column)
	}
}

// TestCaptureInstallQuotesWhateverTheConnection: a column name ending in a
// backslash cannot end a literal of the install, even on a connection with
// standard_conforming_strings off.
func TestCaptureInstallQuotesWhateverTheConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, `CREATE SCHEMA s; CREATE TABLE s.t (id text PRIMARY KEY, "z\" text)`)
	require.NoError(t, err)
	config := bundle.pool.Config().Copy()
	config.ConnConfig.RuntimeParams["standard_conforming_strings"] = "off"
	config.ConnConfig.RuntimeParams["escape_string_warning"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)
	_, err = capture.New(store).Install(ctx, &capture.Capture{Table: "s.t", Entity: "Thing", Columns: []string{"id", `z\`}})
	require.NoError(t, err)
	_, err = bundle.pool.Exec(ctx, `INSERT INTO s.t VALUES ('1', 'v')`)
	require.NoError(t, err)
	events := capturedEvents(t, bundle)
	require.Len(t, events, 1)
	require.Equal(t, map[string]any{"id": "1", `z\`: "v"}, events[0].Data)
}
