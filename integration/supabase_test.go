package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
)

// supabaseFixture has the shapes of Supabase Auth's tables that matter to
// the preset, as its migrations leave them (written for these tests from
// supabase/auth's migrations/*.up.sql): auth owned by supabase_auth_admin,
// the role Supabase Auth connects as, with row-level security enabled and no
// policy. %[1]s is that role.
const supabaseFixture = `
CREATE SCHEMA auth AUTHORIZATION %[1]s;
SET ROLE %[1]s;
CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TABLE auth.users (
	instance_id uuid NULL,
	id uuid NOT NULL UNIQUE,
	aud varchar(255) NULL,
	"role" varchar(255) NULL,
	email varchar(255) NULL,
	encrypted_password varchar(255) NULL,
	email_confirmed_at timestamptz NULL,
	invited_at timestamptz NULL,
	confirmation_token varchar(255) NULL,
	confirmation_sent_at timestamptz NULL,
	recovery_token varchar(255) NULL,
	recovery_sent_at timestamptz NULL,
	email_change_token_new varchar(255) NULL,
	email_change varchar(255) NULL,
	email_change_sent_at timestamptz NULL,
	last_sign_in_at timestamptz NULL,
	raw_app_meta_data jsonb NULL,
	raw_user_meta_data jsonb NULL,
	is_super_admin bool NULL,
	created_at timestamptz NULL,
	updated_at timestamptz NULL,
	phone text NULL UNIQUE DEFAULT NULL,
	phone_confirmed_at timestamptz NULL DEFAULT NULL,
	phone_change text NULL DEFAULT '',
	phone_change_token varchar(255) NULL DEFAULT '',
	phone_change_sent_at timestamptz NULL DEFAULT NULL,
	confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
	email_change_token_current varchar(255) NULL DEFAULT '',
	email_change_confirm_status smallint DEFAULT 0 CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
	banned_until timestamptz NULL,
	reauthentication_token varchar(255) NULL DEFAULT '',
	reauthentication_sent_at timestamptz NULL DEFAULT NULL,
	is_sso_user boolean NOT NULL DEFAULT false,
	deleted_at timestamptz NULL,
	is_anonymous boolean NOT NULL DEFAULT false,
	CONSTRAINT users_pkey PRIMARY KEY (id)
);
CREATE TABLE auth.identities (
	provider_id text NOT NULL,
	user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
	identity_data jsonb NOT NULL,
	provider text NOT NULL,
	last_sign_in_at timestamptz NULL,
	created_at timestamptz NULL,
	updated_at timestamptz NULL,
	email text GENERATED ALWAYS AS (lower(identity_data->>'email')) STORED,
	id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider)
);
CREATE TABLE auth.sessions (
	id uuid NOT NULL PRIMARY KEY,
	user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
	created_at timestamptz NULL,
	updated_at timestamptz NULL,
	factor_id uuid NULL,
	aal auth.aal_level NULL,
	not_after timestamptz,
	refreshed_at timestamp without time zone,
	user_agent text,
	ip inet,
	tag text,
	oauth_client_id uuid,
	refresh_token_hmac_key text,
	refresh_token_counter bigint,
	scopes text CHECK (char_length(scopes) <= 4096)
);
CREATE TABLE auth.refresh_tokens (
	instance_id uuid NULL, id bigserial PRIMARY KEY, "token" varchar(255) NULL, user_id varchar(255) NULL,
	revoked bool NULL, created_at timestamptz NULL, updated_at timestamptz NULL, session_id uuid REFERENCES auth.sessions (id) ON DELETE CASCADE
);
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
RESET ROLE;
`

// TestSupabasePreset installs the preset on Supabase Auth's schema with the
// CLI, as a superuser, and drives it as Supabase Auth does: as
// supabase_auth_admin, which owns auth and holds no grant of hookrelay's.
// setupSupabase creates supabaseFixture in a database of its own, and
// returns it with its supabase_auth_admin role, whose password is
// auth-password.
func setupSupabase(tb testing.TB) (*storeBundle, string) {
	tb.Helper()
	bundle := setupStore(tb)
	role := fmt.Sprintf("supabase_auth_admin_%d", time.Now().UnixNano()%1e12)
	_, err := bundle.pool.Exec(context.Background(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'auth-password' NOINHERIT CREATEROLE;", role)+fmt.Sprintf(supabaseFixture, role))
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP SCHEMA IF EXISTS auth CASCADE; DROP OWNED BY %[1]s; DROP ROLE IF EXISTS %[1]s", role))
	})
	return bundle, role
}

func TestSupabasePreset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle, role := setupSupabase(t)

	res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "install", "--preset", "supabase")
	require.Equal(t, 0, res.code, res.stderr)
	var installed capture.PresetResult
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &installed))
	require.Empty(t, installed.Skipped)
	var tables []string
	for _, c := range installed.Installed {
		tables = append(tables, c.Table)
	}
	require.Equal(t, []string{"auth.users", "auth.identities", "auth.sessions"}, tables)

	config := bundle.pool.Config().ConnConfig.Copy()
	config.User, config.Password = role, "auth-password"
	conn, err := pgx.ConnectConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	seen := 0
	// tx runs statements in one transaction as Supabase Auth, and returns
	// the events published.
	tx := func(statements ...string) []capturedEvent {
		t.Helper()
		require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, sql := range statements {
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("%s: %w", sql, err)
				}
			}
			return nil
		}))
		events := capturedEvents(t, bundle)
		fresh := events[seen:]
		seen = len(events)
		return fresh
	}
	const user = "0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11"

	t.Run("SignUpIsOneUserCreated", func(t *testing.T) {
		// What Supabase Auth's signup does in one transaction.
		events := tx(
			fmt.Sprintf(`INSERT INTO auth.users (instance_id, id, aud, email, encrypted_password, confirmation_token, confirmation_sent_at,
				raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
				VALUES ('00000000-0000-0000-0000-000000000000', '%s', 'authenticated', 'ann@example.com', '$2a$10$BCRYPT-SECRET-HASH',
				'CONFIRMATION-TOKEN-SECRET', now(), '{}', '{"name": "Ann"}', now(), now())`, user),
			fmt.Sprintf(`UPDATE auth.users SET role = 'authenticated' WHERE id = '%s'`, user),
			fmt.Sprintf(`INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
				VALUES ('%[1]s', '%[1]s', '{"sub": "%[1]s", "email": "ann@example.com", "email_verified": false}', 'email', now(), now())`, user),
			fmt.Sprintf(`UPDATE auth.users SET raw_app_meta_data = '{"provider": "email", "providers": ["email"]}' WHERE id = '%s'`, user),
		)
		require.Equal(t, []string{"User.Created"}, eventTypes(events))
		data := events[0].object()
		var keys []string
		for key := range data {
			keys = append(keys, key)
		}
		require.ElementsMatch(t, []string{
			"id", "aud", "role", "email", "phone", "email_confirmed_at", "phone_confirmed_at", "confirmed_at", "invited_at",
			"confirmation_sent_at", "recovery_sent_at", "new_email", "email_change_sent_at", "new_phone", "phone_change_sent_at",
			"reauthentication_sent_at", "last_sign_in_at", "app_metadata", "user_metadata", "is_anonymous", "created_at",
			"updated_at", "banned_until", "deleted_at", "identities",
		}, keys, "the user as Supabase Auth's admin API returns it")
		require.Equal(t, "authenticated", data["role"], "its state at commit")
		require.Equal(t, map[string]any{"provider": "email", "providers": []any{"email"}}, data["app_metadata"])
		require.Equal(t, map[string]any{"name": "Ann"}, data["user_metadata"])
		identities := data["identities"].([]any)
		require.Len(t, identities, 1)
		identity := identities[0].(map[string]any)
		require.Equal(t, user, identity["id"], "the provider's id, as the API names it")
		require.Equal(t, "email", identity["provider"])
		require.Contains(t, identity, "identity_id")
		require.Nil(t, events[0].Tenant)
		_, err := time.Parse(time.RFC3339, data["created_at"].(string))
		require.NoError(t, err, "timestamps as Supabase's API writes them")
	})

	t.Run("SignInIsPostSignInOnly", func(t *testing.T) {
		events := tx(
			fmt.Sprintf(`INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip, refresh_token_hmac_key)
				VALUES ('9d0a3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b', '%s', now(), now(), 'aal1', 'Mozilla/5.0', '203.0.113.7', 'HMAC-KEY-SECRET')`, user),
			fmt.Sprintf(`INSERT INTO auth.refresh_tokens (token, user_id, session_id) VALUES ('REFRESH-TOKEN-SECRET', '%s', '9d0a3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b')`, user),
			fmt.Sprintf(`UPDATE auth.users SET last_sign_in_at = now(), updated_at = now() WHERE id = '%s'`, user),
			fmt.Sprintf(`UPDATE auth.identities SET last_sign_in_at = now(), updated_at = now() WHERE user_id = '%s'`, user),
		)
		require.Equal(t, []string{"PostSignIn"}, eventTypes(events), "a sign-in changes nothing published of the user")
		c := events[0].Context
		require.Equal(t, user, c["userId"])
		require.Equal(t, "9d0a3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", c["sessionId"])
		require.Equal(t, "Mozilla/5.0", c["userAgent"])
		require.Equal(t, "203.0.113.7", c["userIp"])
		require.Equal(t, "ann@example.com", c["user"].(map[string]any)["email"])
		require.NotNil(t, c["user"].(map[string]any)["last_sign_in_at"], "the user as it is at commit, signed in")
	})

	t.Run("Updates", func(t *testing.T) {
		require.Equal(t, []string{"User.Data.Updated"}, eventTypes(tx(fmt.Sprintf(`UPDATE auth.users SET raw_user_meta_data = '{"name": "Ann B"}' WHERE id = '%s'`, user))))
		require.Empty(t, tx(fmt.Sprintf(`UPDATE auth.users SET recovery_token = 'RECOVERY-TOKEN-SECRET', recovery_sent_at = now(), updated_at = now() WHERE id = '%s'`, user)),
			"a token sent is no event")
		require.Empty(t, tx(fmt.Sprintf(`UPDATE auth.users SET encrypted_password = '$2a$10$NEW-BCRYPT-SECRET' WHERE id = '%s'`, user)))
		events := tx(fmt.Sprintf(`UPDATE auth.identities SET identity_data = identity_data || '{"name": "Ann"}' WHERE user_id = '%s'`, user))
		require.Equal(t, []string{"User.Data.Updated"}, eventTypes(events), "an identity's change is its user's")
		require.Equal(t, "Ann", events[0].object()["identities"].([]any)[0].(map[string]any)["identity_data"].(map[string]any)["name"])
	})

	t.Run("BanAndSoftDelete", func(t *testing.T) {
		banned := tx(fmt.Sprintf(`UPDATE auth.users SET banned_until = now() + interval '1 day' WHERE id = '%s'`, user))
		require.Equal(t, []string{"User.SuspensionStatus.Updated"}, eventTypes(banned))
		require.Empty(t, tx(fmt.Sprintf(`UPDATE auth.users SET banned_until = now() + interval '2 days' WHERE id = '%s'`, user)), "still banned")
		require.Equal(t, []string{"User.SuspensionStatus.Updated"}, eventTypes(tx(fmt.Sprintf(`UPDATE auth.users SET banned_until = NULL WHERE id = '%s'`, user))))
		// Supabase Auth's soft delete, as it runs it: the user, then its
		// identities, in one transaction; and the other way round.
		deleted := tx(fmt.Sprintf(`UPDATE auth.users SET deleted_at = now(), email = NULL, raw_user_meta_data = '{}' WHERE id = '%s'`, user),
			fmt.Sprintf(`UPDATE auth.identities SET provider_id = 'deleted-' || provider_id, identity_data = '{}' WHERE user_id = '%s'`, user))
		require.Equal(t, []string{"User.Deleted"}, eventTypes(deleted), "one event per user per transaction")
		require.NotNil(t, deleted[0].object()["deleted_at"])
		const other = "3c4d5e6f-0000-4000-8000-00000000000b"
		require.Equal(t, []string{"User.Created"}, eventTypes(tx(fmt.Sprintf(`INSERT INTO auth.users (id, email) VALUES ('%s', 'bo@example.com')`, other),
			fmt.Sprintf(`INSERT INTO auth.identities (provider_id, user_id, identity_data, provider) VALUES ('%[1]s', '%[1]s', '{"email": "bo@example.com"}', 'email')`, other))))
		deleted = tx(fmt.Sprintf(`UPDATE auth.identities SET provider_id = 'deleted-' || provider_id, identity_data = '{}' WHERE user_id = '%s'`, other),
			fmt.Sprintf(`UPDATE auth.users SET deleted_at = now(), email = NULL WHERE id = '%s'`, other))
		require.Equal(t, []string{"User.Deleted"}, eventTypes(deleted), "identities first")
	})

	t.Run("HardDeleteAndBulk", func(t *testing.T) {
		deleted := tx(fmt.Sprintf(`DELETE FROM auth.users WHERE id = '%s'`, user))
		require.Equal(t, []string{"User.Deleted"}, eventTypes(deleted))
		require.Equal(t, user, deleted[0].Context["entityId"])
		require.Equal(t, user, deleted[0].object()["id"])

		events := tx(`INSERT INTO auth.users (id, aud, email, created_at, updated_at)
			SELECT gen_random_uuid(), 'authenticated', 'bulk' || i || '@example.com', now(), now() FROM generate_series(1, 100) i`)
		require.Len(t, events, 100)
		require.Equal(t, "User.Created", events[0].Type)
		events = tx(`UPDATE auth.users SET raw_user_meta_data = '{"plan": "pro"}' WHERE email LIKE 'bulk%'`)
		require.Len(t, events, 100)
		require.Equal(t, "User.Data.Updated", events[99].Type)
		require.Empty(t, tx(`INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'gone@example.com')`,
			`DELETE FROM auth.users WHERE email = 'gone@example.com'`), "created and deleted in one transaction")
	})

	t.Run("RollbackPublishesNothing", func(t *testing.T) {
		before := len(capturedEvents(t, bundle))
		txn, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = txn.Exec(ctx, `INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'rolled@example.com')`)
		require.NoError(t, err)
		require.NoError(t, txn.Rollback(ctx))
		require.Len(t, capturedEvents(t, bundle), before)
	})

	t.Run("NoSecretInAnyEvent", func(t *testing.T) {
		var bodies string
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT coalesce(string_agg(coalesce(data::text, '') || context::text, ' '), '') FROM hookrelay.events`).Scan(&bodies))
		for _, secret := range []string{"BCRYPT", "TOKEN-SECRET", "HMAC-KEY", "encrypted_password", "_token", "hmac", "is_super_admin", "instance_id"} {
			require.NotContains(t, bodies, secret)
		}
		// Every column of the migrations' tables that holds a secret.
		rows, err := bundle.pool.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'auth'`)
		require.NoError(t, err)
		columns, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, column := range columns {
			if capture.LooksSecret(column) {
				require.NotContains(t, bodies, `"`+column+`"`)
			}
		}
	})

	t.Run("RemoveDropsEveryTrigger", func(t *testing.T) {
		res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "remove", "--preset", "supabase")
		require.Equal(t, 0, res.code, res.stderr)
		var triggers int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hookrelay_capture%'").Scan(&triggers))
		require.Zero(t, triggers)
		require.Empty(t, tx(`INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'after@example.com')`))
	})
}

// TestCaptureMapping installs a mapping file a user wrote for a small
// in-house schema, and refuses mistakes in one.
func TestCaptureMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, `CREATE SCHEMA crm;
		CREATE TABLE crm.accounts (id bigint PRIMARY KEY, org text NOT NULL, display_name text, plan text, password_digest text,
			disabled boolean NOT NULL DEFAULT false, updated_at timestamptz);
		CREATE TABLE crm.logins (id bigint PRIMARY KEY, org text NOT NULL, account_id bigint REFERENCES crm.accounts, outcome text, details jsonb);`)
	require.NoError(t, err)
	mapping := `
name: crm
description: our CRM's accounts and logins
schema: crm
tenant: org
entities:
  - table: accounts
    entity: Account
    columns: [id, display_name as name, plan, disabled, updated_at]
    quiet: [updated_at]
    suspended: {column: disabled, when: "true"}
rows:
  - table: logins
    event: PostSignIn
    when:
      - {source: outcome, equals: ok}
    context:
      userId: account_id
      method: details.method
    join:
      - {as: user, table: accounts, on: account_id}
`
	file := t.TempDir() + "/crm.yaml"
	require.NoError(t, writeFile(file, mapping))
	res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "install", "--mapping", file)
	require.Equal(t, 0, res.code, res.stderr)

	_, err = bundle.pool.Exec(ctx, `INSERT INTO crm.accounts (id, org, display_name, plan, password_digest) VALUES (1, 'acme', 'Ann', 'pro', 'DIGEST-SECRET');
		UPDATE crm.accounts SET disabled = true WHERE id = 1;
		UPDATE crm.accounts SET updated_at = now() WHERE id = 1;
		INSERT INTO crm.logins VALUES (1, 'acme', 1, 'ok', '{"method": "sso"}'), (2, 'acme', 1, 'denied', '{"method": "password"}');`)
	require.NoError(t, err)
	events := capturedEvents(t, bundle)
	require.Equal(t, []string{"Account.Created", "Account.SuspensionStatus.Updated", "PostSignIn"}, []string{events[0].Type, events[1].Type, events[2].Type})
	require.Len(t, events, 3)
	require.Equal(t, map[string]any{"id": float64(1), "name": "Ann", "plan": "pro", "disabled": false, "updatedAt": nil}, events[0].Data)
	require.Equal(t, "acme", *events[0].Tenant)
	require.Equal(t, map[string]any{"userId": float64(1), "method": "sso",
		"user": map[string]any{"id": float64(1), "name": "Ann", "plan": "pro", "disabled": true, "updatedAt": events[2].Context["user"].(map[string]any)["updatedAt"]}}, events[2].Context)

	for _, tt := range []struct{ mapping, wantErr string }{
		{"name: x\nentities:\n  - {table: accounts, entity: Account, columns: [id, password_digest]}\n", "looks like a secret"},
		{"name: x\nentitiez: []\n", "field entitiez not found"},
		{"name: x\nrows:\n  - {table: logins, event: not.a.type}\n", "invalid event type"},
		{"name: X!\nrows:\n  - {table: logins, event: PostSignIn}\n", "give a lower-case name"},
		{"name: x\nentities:\n  - {table: accounts, entity: Account, columns: [id]}\n  - {table: accounts, entity: Other, columns: [id]}\n", "mapped twice"},
	} {
		bad := t.TempDir() + "/bad.yaml"
		require.NoError(t, writeFile(bad, "schema: crm\n"+tt.mapping))
		res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "install", "--mapping", bad)
		require.Equal(t, 1, res.code, tt.mapping)
		require.Contains(t, res.stderr, tt.wantErr)
	}

	list := runCLI(t, bundle.pool.Config().ConnString(), "capture", "presets")
	require.Equal(t, 0, list.code, list.stderr)
	require.Contains(t, list.stdout, `"name": "logto"`)
	require.Contains(t, list.stdout, `"name": "supabase"`)
	show := runCLI(t, bundle.pool.Config().ConnString(), "capture", "preset", "show", "supabase")
	require.Equal(t, 0, show.code, show.stderr)
	parsed, err := capture.ParsePreset([]byte(show.stdout))
	require.NoError(t, err, "what show prints is a mapping file")
	require.Equal(t, "supabase", parsed.Name)
	require.True(t, strings.HasPrefix(show.stdout, "# Supabase Auth"))
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
