package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
	"github.com/hookrelay/hookrelay/jobs"
	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/schema"
)

type storeBundle struct {
	pool  *pgxpool.Pool
	store *outbox.Store
}

func setupStore(t testing.TB) *storeBundle {
	t.Helper()
	pool := pg.NewPool(t)
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)
	return &storeBundle{pool: pool, store: store}
}

func countEvents(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM hookrelay.events").Scan(&n))
	return n
}

func TestPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RolledBackLeavesNoEvent", func(t *testing.T) {
		t.Parallel()
		bundle := setupStore(t)

		tx, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		_, err = bundle.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "SELECT hookrelay.publish('User.Deleted', NULL)")
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))

		require.Equal(t, 0, countEvents(t, bundle.pool))
	})

	t.Run("CommittedLeavesExactlyOne", func(t *testing.T) {
		t.Parallel()
		bundle := setupStore(t)

		tx, err := bundle.pool.Begin(ctx)
		require.NoError(t, err)
		id, err := bundle.store.PublishTx(ctx, tx, &outbox.Event{Type: "User.Created", Data: map[string]any{"id": "u1"}})
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))

		require.Equal(t, 1, countEvents(t, bundle.pool))
		event, err := bundle.store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "User.Created", event.Type)
		require.JSONEq(t, `{"id":"u1"}`, string(event.Data))
		require.Nil(t, event.FannedOutAt)
	})

	t.Run("SQLAndGoWriteIdenticalRows", func(t *testing.T) {
		t.Parallel()
		bundle := setupStore(t)

		data := map[string]any{"id": "u1", "primaryEmail": "a@example.com", "profile": map[string]any{"nickname": "a"}}
		eventContext := map[string]any{"userId": "u1", "ip": "203.0.113.9", "interactionEvent": "SignIn"}
		goID, err := bundle.store.Publish(ctx, &outbox.Event{Type: "PostSignIn", Data: data, Context: eventContext, TenantID: "t1"})
		require.NoError(t, err)

		dataJSON, _ := json.Marshal(data)
		contextJSON, _ := json.Marshal(eventContext)
		var sqlID string
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT hookrelay.publish('PostSignIn', $1, $2, 't1')", dataJSON, contextJSON).Scan(&sqlID))

		type row struct {
			Type, Data, Context, Tenant string
			FannedOut                   bool
		}
		read := func(id string) row {
			var r row
			require.NoError(t, bundle.pool.QueryRow(ctx,
				"SELECT type, data::text, context::text, tenant_id, fanned_out_at IS NOT NULL FROM hookrelay.events WHERE id = $1", id).
				Scan(&r.Type, &r.Data, &r.Context, &r.Tenant, &r.FannedOut))
			return r
		}
		require.NotEqual(t, goID, sqlID)
		require.Equal(t, read(goID), read(sqlID))
	})

	t.Run("SQLDefaults", func(t *testing.T) {
		t.Parallel()
		bundle := setupStore(t)

		var id string
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT hookrelay.publish('Invoice.Paid', NULL)").Scan(&id))
		event, err := bundle.store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Nil(t, event.Data)
		require.JSONEq(t, `{}`, string(event.Context))
		require.Empty(t, event.TenantID)
	})
}

func TestPublishValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)

	huge := strings.Repeat("x", outbox.MaxPayloadBytesDefault)
	for _, tt := range []struct {
		name    string
		event   outbox.Event
		wantErr string
	}{
		{"EmptyType", outbox.Event{Type: ""}, "invalid event type"},
		{"LowerCase", outbox.Event{Type: "user.created"}, "dotted PascalCase"},
		{"TrailingDot", outbox.Event{Type: "User."}, "dotted PascalCase"},
		{"Wildcard", outbox.Event{Type: "User.*"}, "dotted PascalCase"},
		{"Space", outbox.Event{Type: "User Created"}, "dotted PascalCase"},
		{"TooLong", outbox.Event{Type: "A" + strings.Repeat("b", outbox.EventTypeMaxLength)}, "at most 100"},
		{"Unencodable", outbox.Event{Type: "User.Created", Data: make(chan int)}, "invalid event data"},
		{"TooLarge", outbox.Event{Type: "User.Created", Data: huge}, "too large"},
		// 30 bytes of JSON that Postgres stores as 300,000 digits.
		{"TooLargeAsStored", outbox.Event{Type: "User.Created", Data: json.RawMessage(`[1e100000, 1e100000, 1e100000]`)}, "events_data_and_context_at_most_262144_bytes"},
		{"TenantTooLong", outbox.Event{Type: "User.Created", TenantID: strings.Repeat("t", 257)}, "invalid tenant id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.store.Publish(ctx, &tt.event)
			require.ErrorContains(t, err, tt.wantErr)
			var validationErr *outbox.ValidationError
			require.ErrorAs(t, err, &validationErr)
		})
	}

	for _, tt := range []struct {
		name, sql, wantErr string
	}{
		{"SQLBadType", "SELECT hookrelay.publish('user.created', '{}')", "dotted PascalCase"},
		{"SQLNullType", "SELECT hookrelay.publish(NULL, '{}')", "invalid event type NULL"},
		{"SQLContextNotObject", "SELECT hookrelay.publish('User.Created', '{}', '[1]')", "must be a JSON object"},
		{"SQLEmptyTenant", "SELECT hookrelay.publish('User.Created', '{}', '{}', '')", "invalid tenant id"},
		{"SQLTooLarge", "SELECT hookrelay.publish('User.Created', to_jsonb(repeat('x', 262144)))", "events_data_and_context_at_most_262144_bytes"},
		{"SQLTooLargeAsStored", `SELECT hookrelay.publish('User.Created', '[1e100000, 1e100000, 1e100000]')`, "events_data_and_context_at_most_262144_bytes"},
		{"SQLTenantTooLong", "SELECT hookrelay.publish('User.Created', '{}', '{}', repeat('t', 257))", "invalid tenant id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.pool.Exec(ctx, tt.sql)
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "want a Postgres error, got %v", err)
			require.Contains(t, pgErr.Message, tt.wantErr)
		})
	}

	t.Run("ConfiguredPayloadLimit", func(t *testing.T) {
		small, err := outbox.NewStore(bundle.pool, &outbox.Config{MaxPayloadBytes: 100})
		require.NoError(t, err)
		_, err = small.Publish(ctx, &outbox.Event{Type: "User.Created", Data: strings.Repeat("x", 100)})
		require.ErrorContains(t, err, "at most 100 bytes")
		_, err = small.Publish(ctx, &outbox.Event{Type: "User.Created", Data: "short"})
		require.NoError(t, err)

		// A publisher's session setting cannot raise the database's limit.
		err = pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL hookrelay.max_payload_bytes = '5000000'"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "SELECT hookrelay.publish('User.Created', to_jsonb(repeat('x', 300000)))")
			return err
		})
		require.ErrorContains(t, err, "events_data_and_context_at_most_262144_bytes")
		_, err = bundle.pool.Exec(ctx, "DELETE FROM hookrelay.events")
		require.NoError(t, err)
	})

	t.Run("PublishSQLMapsToValidationError", func(t *testing.T) {
		_, err := bundle.store.PublishSQL(ctx, "bad type", nil, nil, "", "")
		var validationErr *outbox.ValidationError
		require.ErrorAs(t, err, &validationErr)
	})

	require.Equal(t, 0, countEvents(t, bundle.pool), "no invalid event may be written")
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("TwiceIsANoOp", func(t *testing.T) {
		t.Parallel()
		bundle := setupStore(t) // migrated once by the template
		require.NoError(t, bundle.store.Migrate(ctx))
		require.NoError(t, bundle.store.Migrate(ctx))

		var versions int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.hookrelay_migration").Scan(&versions))
		files, err := fs.Glob(schema.FS, "*.up.sql")
		require.NoError(t, err)
		require.Equal(t, len(files), versions)
	})

	t.Run("CustomSchemaHoldsEverything", func(t *testing.T) {
		t.Parallel()
		pool, err := pgxpool.New(ctx, pg.NewEmptyDatabase(t))
		require.NoError(t, err)
		t.Cleanup(pool.Close)

		store, err := outbox.NewStore(pool, &outbox.Config{Schema: "auth_hooks"})
		require.NoError(t, err)
		require.NoError(t, store.Migrate(ctx))

		var tables []string
		rows, err := pool.Query(ctx, "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")
		require.NoError(t, err)
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, table := range tables {
			require.True(t, strings.HasPrefix(table, "auth_hooks."), "table %s is outside the schema", table)
		}
		require.Contains(t, tables, "auth_hooks.events")
		require.Contains(t, tables, "auth_hooks.river_job")

		id, err := store.Publish(ctx, &outbox.Event{Type: "User.Created"})
		require.NoError(t, err)
		var sqlID string
		require.NoError(t, pool.QueryRow(ctx, "SELECT auth_hooks.publish('User.Created', NULL)").Scan(&sqlID))
		require.NotEqual(t, id, sqlID)
	})

	t.Run("BadSchemaName", func(t *testing.T) {
		t.Parallel()
		_, err := outbox.NewStore(nil, &outbox.Config{Schema: "Bad-Name"})
		require.ErrorContains(t, err, "invalid schema")
	})
}

// TestWriterNeedsExecuteOnly: a role holding exactly the README's grants
// (USAGE on the schema, EXECUTE on publish) publishes, a role that only
// mutates a captured table under row-level security needs no grant of
// hookrelay's at all, and neither can insert, read or change events directly.
func TestWriterNeedsExecuteOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	suffix := time.Now().UnixNano() % 1e12
	writer, mutator := fmt.Sprintf("writer_%d", suffix), fmt.Sprintf("mutator_%d", suffix)
	_, err := bundle.pool.Exec(ctx, fmt.Sprintf(`
		CREATE ROLE %[1]s LOGIN PASSWORD 'secret';
		GRANT USAGE ON SCHEMA hookrelay TO %[1]s;
		GRANT EXECUTE ON FUNCTION hookrelay.publish(text, jsonb, jsonb, text) TO %[1]s;
		CREATE ROLE %[2]s LOGIN PASSWORD 'secret';
		CREATE SCHEMA app;
		CREATE TABLE app.users (id text PRIMARY KEY, tenant_id text NOT NULL, username text, password_hash text);
		ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;
		ALTER TABLE app.users FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_a ON app.users TO %[2]s USING (tenant_id = 'a') WITH CHECK (tenant_id = 'a');
		GRANT USAGE ON SCHEMA app TO %[2]s;
		GRANT SELECT, INSERT, UPDATE, DELETE ON app.users TO %[2]s;`, writer, mutator))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s, %[2]s; DROP ROLE IF EXISTS %[1]s; DROP ROLE IF EXISTS %[2]s", writer, mutator))
	})
	_, err = capture.New(bundle.store).Install(ctx, &capture.Capture{Table: "app.users", Entity: "User", Columns: []string{"id", "username"}, TenantColumn: "tenant_id"})
	require.NoError(t, err)
	connect := func(role string) *pgx.Conn {
		config := bundle.pool.Config().ConnConfig.Copy()
		config.User, config.Password = role, "secret"
		conn, err := pgx.ConnectConfig(ctx, config)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}
	writerConn, mutatorConn := connect(writer), connect(mutator)

	var id string
	require.NoError(t, writerConn.QueryRow(ctx, "SELECT hookrelay.publish('User.Created', '{\"id\": \"u1\"}')").Scan(&id))
	_, err = mutatorConn.Exec(ctx, "INSERT INTO app.users (id, tenant_id, username, password_hash) VALUES ('u2', 'a', 'ann', 'secret')")
	require.NoError(t, err)
	_, err = mutatorConn.Exec(ctx, "UPDATE app.users SET username = 'anna' WHERE id = 'u2'")
	require.NoError(t, err)
	_, err = mutatorConn.Exec(ctx, "SELECT hookrelay.publish('User.Created', '{}')")
	require.Error(t, err, "the mutator holds no EXECUTE on publish")

	for _, conn := range []*pgx.Conn{writerConn, mutatorConn} {
		for _, sql := range []string{
			"INSERT INTO hookrelay.events (type, data) VALUES ('Not A Type', to_jsonb(repeat('x', 1000)))",
			"SELECT count(*) FROM hookrelay.events",
			"UPDATE hookrelay.events SET fanned_out_at = now()",
			"DELETE FROM hookrelay.events",
			"SELECT count(*) FROM hookrelay.hooks",
		} {
			_, err := conn.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr, sql)
			require.Equal(t, "42501", pgErr.Code, "permission denied: %s", sql) // insufficient_privilege
		}
	}

	var types []string
	rows, err := bundle.pool.Query(ctx, "SELECT type FROM hookrelay.events ORDER BY created_at, id")
	require.NoError(t, err)
	for rows.Next() {
		var eventType string
		require.NoError(t, rows.Scan(&eventType))
		types = append(types, eventType)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"User.Created", "User.Created", "User.Data.Updated"}, types)
	event, err := bundle.store.GetEvent(ctx, id)
	require.NoError(t, err)
	require.JSONEq(t, `{"id": "u1"}`, string(event.Data))

	// publish with a subject is a function of its own, which the writer
	// calls once granted it, and which PUBLIC may not call.
	withSubject := "SELECT hookrelay.publish('User.Data.Updated', '{}', '{}', NULL, 'user:u1')"
	_, err = writerConn.Exec(ctx, withSubject)
	var denied *pgconn.PgError
	require.ErrorAs(t, err, &denied)
	require.Equal(t, "42501", denied.Code, "permission denied")
	_, err = bundle.pool.Exec(ctx, fmt.Sprintf("GRANT EXECUTE ON FUNCTION hookrelay.publish(text, jsonb, jsonb, text, text) TO %s", writer))
	require.NoError(t, err)
	require.NoError(t, writerConn.QueryRow(ctx, withSubject).Scan(&id))
	event, err = bundle.store.GetEvent(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "user:u1", event.Subject)
	_, err = writerConn.Exec(ctx, "SELECT hookrelay.publish('User.Data.Updated', '{}', '{}', NULL, $1)", strings.Repeat("s", 257))
	require.ErrorContains(t, err, "invalid subject")

	// A Go application's role inserts events itself; the table holds it to
	// publish's rules.
	_, err = bundle.pool.Exec(ctx, fmt.Sprintf("GRANT INSERT, SELECT ON hookrelay.events TO %s", writer))
	require.NoError(t, err)
	for _, eventType := range []string{"Not A Type", strings.Repeat("A", 2<<20)} {
		_, err := writerConn.Exec(ctx, "INSERT INTO hookrelay.events (type) VALUES ($1)", eventType)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Equal(t, "events_type_valid", pgErr.ConstraintName)
	}
}

// TestNotMigratedSaysSo: every store call on a database that was never
// migrated returns ErrNotMigrated, which says what to run, instead of
// "relation does not exist".
func TestNotMigratedSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pg.NewEmptyDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store, err := outbox.NewStore(pool, nil)
	require.NoError(t, err)

	_, err = store.Publish(ctx, &outbox.Event{Type: "User.Created"})
	require.ErrorIs(t, err, outbox.ErrNotMigrated)
	_, err = store.PublishSQL(ctx, "User.Created", nil, nil, "", "")
	require.ErrorIs(t, err, outbox.ErrNotMigrated)
	_, err = store.ListHooks(ctx)
	require.ErrorIs(t, err, outbox.ErrNotMigrated)
	_, err = store.GetHook(ctx, "01a22327-d7f7-75b5-85d4-3a9d2dde60dd")
	require.ErrorIs(t, err, outbox.ErrNotMigrated)

	service, err := jobs.NewService(&jobs.Config{Store: store})
	require.NoError(t, err)
	require.ErrorIs(t, service.Start(ctx), outbox.ErrNotMigrated)
}

// TestNewerSchemaIsRefused: a schema that a later release migrated (a
// migration version this hookrelay does not know) makes migrate and serve
// refuse, saying which versions, and migrate applies nothing.
func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, "INSERT INTO hookrelay.hookrelay_migration (version, name) VALUES (999, 'from_the_future')")
	require.NoError(t, err)
	want := "schema hookrelay is at version 999, this hookrelay knows"

	require.ErrorIs(t, bundle.store.Migrate(ctx), outbox.ErrSchemaNewer)
	service, err := jobs.NewService(&jobs.Config{Store: bundle.store})
	require.NoError(t, err)
	err = service.Start(ctx)
	require.ErrorIs(t, err, outbox.ErrSchemaNewer)
	require.ErrorContains(t, err, want)

	url := bundle.pool.Config().ConnString()
	for _, args := range [][]string{{"migrate"}, {"serve"}} {
		res := runCLIWith(t, []string{"DATABASE_URL=" + url, "HOOKRELAY_ADMIN_TOKEN=" + adminToken}, "", args...)
		require.NotZero(t, res.code, args)
		require.Contains(t, res.stderr, want, args)
		require.Contains(t, res.stderr, "run the newer release, or migrate the schema down", args)
	}
}

// TestLaterReleaseStopsServe: while serve runs, a later release migrates
// the schema (a rolling upgrade). Serve stops working within seconds and
// exits saying why, rather than work what the later release writes; its
// connections carry its name meanwhile.
func TestLaterReleaseStopsServe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	var ours []int32 // the test's own connections
	require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database()").Scan(&ours))
	serve := startServe(t, bundle.pool.Config().ConnString())

	rows, err := bundle.pool.Query(ctx, `SELECT DISTINCT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> ALL($1) AND pid <> pg_backend_pid() ORDER BY 1`, ours)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"hookrelay process lock", "hookrelay serve"}, names, "every connection of serve is named")

	_, err = bundle.pool.Exec(ctx, "INSERT INTO hookrelay.hookrelay_migration (version, name) VALUES (999, 'from_the_future')")
	require.NoError(t, err)
	select {
	case <-serve.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve still runs 30 s after a later release migrated its schema")
	}
	require.NotZero(t, serve.cmd.ProcessState.ExitCode())
	log, err := os.ReadFile(serve.logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), "a newer release migrated the schema: this process stopped working its jobs")
	require.Contains(t, string(log), "schema hookrelay is at version 999, this hookrelay knows")
}
