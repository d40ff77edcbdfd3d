package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/outbox"
	"github.com/hookrelay/hookrelay/schema"
)

type storeBundle struct {
	pool  *pgxpool.Pool
	store *outbox.Store
}

func setupStore(t *testing.T) *storeBundle {
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
		{"SQLTooLarge", "SELECT hookrelay.publish('User.Created', to_jsonb(repeat('x', 262144)))", "too large"},
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

		err = pgx.BeginFunc(ctx, bundle.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL hookrelay.max_payload_bytes = '100'"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "SELECT hookrelay.publish('User.Created', to_jsonb(repeat('x', 100)))")
			return err
		})
		require.ErrorContains(t, err, "at most 100 bytes")
		_, err = bundle.pool.Exec(ctx, "DELETE FROM hookrelay.events")
		require.NoError(t, err)
	})

	t.Run("PublishSQLMapsToValidationError", func(t *testing.T) {
		_, err := bundle.store.PublishSQL(ctx, "bad type", nil, nil, "")
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
