package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
	"github.com/hookrelay/hookrelay/outbox"
)

const usersTable = `
CREATE SCHEMA auth;
CREATE TABLE auth.users (
    id text PRIMARY KEY,
    tenant_id text,
    username text NOT NULL,
    primary_email text,
    password_hash text NOT NULL,
    profile jsonb NOT NULL DEFAULT '{}',
    last_sign_in_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);`

// capturedEvent is a published event as stored.
type capturedEvent struct {
	Type    string
	Data    any
	Context map[string]any
	Tenant  *string
	// Subject orders the events of one entity for hooks ordered by
	// subject.
	Subject *string
}

// object is the event's data when it is a JSON object.
func (e capturedEvent) object() map[string]any {
	object, _ := e.Data.(map[string]any)
	return object
}

// capturedEvents returns the events in publication order, as far as it is
// known: events of one transaction share a timestamp, and their ids order
// within a millisecond at random.
func capturedEvents(t *testing.T, bundle *storeBundle) []capturedEvent {
	t.Helper()
	rows, err := bundle.pool.Query(context.Background(), "SELECT type, data, context, tenant_id, subject FROM hookrelay.events ORDER BY created_at, id")
	require.NoError(t, err)
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (capturedEvent, error) {
		var e capturedEvent
		err := row.Scan(&e.Type, &e.Data, &e.Context, &e.Tenant, &e.Subject)
		return e, err
	})
	require.NoError(t, err)
	return events
}

func TestCapture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := bundle.pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(usersTable)

	t.Run("RefusesBadInput", func(t *testing.T) {
		for _, tt := range []struct {
			install capture.Capture
			wantErr string
		}{
			{capture.Capture{Table: "auth.users", Entity: "User"}, "without a list no trigger"},
			{capture.Capture{Table: "auth.users", Entity: "User", Columns: []string{"id", "password_hash"}}, "looks like a secret"},
			{capture.Capture{Table: "auth.users", Entity: "User", Columns: []string{"id", "nope"}}, `no column "nope"`},
			{capture.Capture{Table: "auth.users", Entity: "User", Columns: []string{"id", "id"}}, "listed twice"},
			{capture.Capture{Table: "auth.nope", Entity: "User", Columns: []string{"id"}}, "does not exist"},
			{capture.Capture{Table: "auth.users", Entity: "user.x", Columns: []string{"id"}}, "invalid entity"},
			{capture.Capture{Table: "hookrelay.hooks", Entity: "Hook", Columns: []string{"id"}}, "hookrelay's own tables"},
			{capture.Capture{Table: "auth.users", Entity: "Usr", Columns: []string{"id"}}, "did you mean User.Created?"},
		} {
			_, err := capture.New(bundle.store).Install(ctx, &tt.install)
			var validationErr *outbox.ValidationError
			require.ErrorAs(t, err, &validationErr, tt.wantErr)
			require.ErrorContains(t, err, tt.wantErr)
		}
		captures, err := capture.New(bundle.store).List(ctx)
		require.NoError(t, err)
		require.Empty(t, captures)
	})

	installed, err := capture.New(bundle.store).Install(ctx, &capture.Capture{
		Table: "auth.users", Entity: "User", Columns: []string{"id", "username", "primary_email", "profile"}, TenantColumn: "tenant_id",
	})
	require.NoError(t, err)
	require.Equal(t, "auth.users", installed.Table)

	exec("INSERT INTO auth.users (id, tenant_id, username, primary_email, password_hash) VALUES ('u1', 't1', 'ann', 'ann@example.com', 'argon2-secret')")
	exec("UPDATE auth.users SET primary_email = 'ann@example.org' WHERE id = 'u1'")
	exec("UPDATE auth.users SET last_sign_in_at = now(), password_hash = 'argon2-new' WHERE id = 'u1'") // unlisted: no event
	exec("DELETE FROM auth.users WHERE id = 'u1'")

	events := capturedEvents(t, bundle)
	require.Len(t, events, 3)
	require.Equal(t, "User.Created", events[0].Type)
	require.Equal(t, map[string]any{"id": "u1", "username": "ann", "primaryEmail": "ann@example.com", "profile": map[string]any{}}, events[0].Data)
	require.Equal(t, "t1", *events[0].Tenant)
	require.Equal(t, "User.Data.Updated", events[1].Type)
	require.Equal(t, "ann@example.org", events[1].object()["primaryEmail"])
	require.Equal(t, "User.Deleted", events[2].Type)
	require.Equal(t, "u1", events[2].object()["id"])
	var leaked int
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.events WHERE data::text LIKE '%argon2%' OR context::text LIKE '%argon2%'").Scan(&leaked))
	require.Zero(t, leaked, "the password hash never leaves the table")

	t.Run("RollbackPublishesNothing", func(t *testing.T) {
		tx, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "INSERT INTO auth.users (id, username, password_hash) VALUES ('u2', 'bob', 'x')")
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		require.Len(t, capturedEvents(t, bundle), 3)
	})

	t.Run("BulkUpdatePublishesOneEventPerChangedRow", func(t *testing.T) {
		exec("ALTER TABLE auth.users DISABLE TRIGGER ALL")
		exec("INSERT INTO auth.users (id, username, password_hash) SELECT 'bulk' || i, 'user' || i, 'x' FROM generate_series(1, 600) i")
		exec("ALTER TABLE auth.users ENABLE TRIGGER ALL")
		exec("UPDATE auth.users SET username = username || '!' WHERE id LIKE 'bulk%' AND substring(id from 5)::int <= 500")
		events := capturedEvents(t, bundle)
		require.Len(t, events, 3+500)
		for _, e := range events[3:] {
			require.Equal(t, "User.Data.Updated", e.Type)
		}
	})

	t.Run("SurvivesNewColumns", func(t *testing.T) {
		exec("ALTER TABLE auth.users ADD COLUMN mfa_secret text DEFAULT 'TOTP-SEED', ADD COLUMN locale text")
		exec("INSERT INTO auth.users (id, username, password_hash, locale) VALUES ('u3', 'cy', 'x', 'en')")
		events := capturedEvents(t, bundle)
		last := events[len(events)-1]
		require.Equal(t, "User.Created", last.Type)
		require.Len(t, last.Data, 4, "only the listed columns")
		require.Nil(t, last.Tenant)
	})

	t.Run("RemoveLeavesTheTableUntouched", func(t *testing.T) {
		columns := func() []string {
			rows, err := bundle.pool.Query(ctx, "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users' ORDER BY ordinal_position")
			require.NoError(t, err)
			list, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			return list
		}
		before := columns()
		require.NoError(t, capture.New(bundle.store).Remove(ctx, "auth.users"))
		require.Equal(t, before, columns())
		count := len(capturedEvents(t, bundle))
		exec("INSERT INTO auth.users (id, username, password_hash) VALUES ('u4', 'di', 'x')")
		require.Len(t, capturedEvents(t, bundle), count, "no trigger remains")
		var triggers, functions int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'auth.users'::regclass AND NOT tgisinternal").Scan(&triggers))
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'hookrelay' AND proname LIKE 'capture_%'").Scan(&functions))
		require.Zero(t, triggers)
		require.Zero(t, functions)
		require.ErrorIs(t, capture.New(bundle.store).Remove(ctx, "auth.users"), capture.ErrNotFound)
	})
}

// TestCaptureHostileNames: no column name can end the trigger function's
// body, even where Postgres does not check bodies, and tables whose names
// contain dots are captured apart.
func TestCaptureHostileNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	role := fmt.Sprintf("cv%d", time.Now().UnixNano()%1e12) // the column name stays within 63 bytes
	hostile := `$capture$;ALTER ROLE ` + role + ` SUPERUSER;SELECT $capture$`
	_, err := bundle.pool.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s;
		CREATE SCHEMA s; CREATE SCHEMA "s.x";
		CREATE TABLE s."x.y" (id text PRIMARY KEY, %s text);
		CREATE TABLE "s.x".y (id text PRIMARY KEY)`, role, pgx.Identifier{hostile}.Sanitize()))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = bundle.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })

	// A session that does not check function bodies, where the old tag let
	// the name run as DDL.
	config := bundle.pool.Config().Copy()
	config.ConnConfig.RuntimeParams["check_function_bodies"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)

	_, err = capture.New(store).Install(ctx, &capture.Capture{Table: `s."x.y"`, Entity: "Thing", Columns: []string{"id", hostile}})
	require.NoError(t, err)
	_, err = capture.New(store).Install(ctx, &capture.Capture{Table: `"s.x".y`, Entity: "Other", Columns: []string{"id"}})
	require.NoError(t, err)
	var superuser bool
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role).Scan(&superuser))
	require.False(t, superuser)

	captures, err := capture.New(store).List(ctx)
	require.NoError(t, err)
	require.Len(t, captures, 2, "two tables, two captures")
	require.ElementsMatch(t, []string{`s."x.y"`, `"s.x".y`}, []string{captures[0].Table, captures[1].Table})

	_, err = bundle.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO s."x.y" (id, %s) VALUES ('t1', 'v'); INSERT INTO "s.x".y (id) VALUES ('o1')`, pgx.Identifier{hostile}.Sanitize()))
	require.NoError(t, err)
	require.NoError(t, capture.New(store).Remove(ctx, `"s.x".y`))
	_, err = bundle.pool.Exec(ctx, `INSERT INTO s."x.y" (id) VALUES ('t2'); INSERT INTO "s.x".y (id) VALUES ('o2')`)
	require.NoError(t, err)
	events := capturedEvents(t, bundle)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	require.Equal(t, []string{"Thing.Created", "Other.Created", "Thing.Created"}, types, "removing one capture leaves the other")
	require.Len(t, events[0].Data, 2)
	require.Contains(t, events[0].Data, "id")
	for key, value := range events[0].object() {
		if key != "id" {
			require.Equal(t, "v", value, "the hostile column is published as data under its camelCase name")
		}
	}
}
