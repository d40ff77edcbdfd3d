package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
	"github.com/hookrelay/hookrelay/outbox"
)

// logtoFixture has the shapes of a self-hosted Logto database that matter to
// the preset, written for these tests from Logto's table definitions: every
// table has tenant_id, filled by a BEFORE INSERT trigger from the current
// role; row-level security on every table, restricting a tenant's role to its
// rows; a NOINHERIT base role holding the table privileges and a login role
// per tenant inheriting it; users.updated_at set by a trigger; secrets in the
// users row. %[1]s is the base role, %[2]s the tenant role.
const logtoFixture = `
CREATE TABLE tenants (id varchar(21) PRIMARY KEY, db_user varchar(128) UNIQUE);
INSERT INTO tenants VALUES ('t1', '%[2]s'), ('t2', NULL);

CREATE FUNCTION set_tenant_id() RETURNS trigger AS $$ BEGIN
  IF new.tenant_id IS NOT NULL THEN RETURN new; END IF;
  SELECT tenants.id INTO new.tenant_id FROM tenants WHERE tenants.db_user = current_user;
  RETURN new;
END; $$ LANGUAGE plpgsql;

CREATE FUNCTION set_updated_at() RETURNS trigger AS $$ BEGIN
  new.updated_at = now(); RETURN new;
END; $$ LANGUAGE plpgsql;

CREATE TYPE users_password_encryption_method AS ENUM ('Argon2i', 'Argon2id', 'Bcrypt');
CREATE TYPE role_type AS ENUM ('User', 'MachineToMachine');

CREATE TABLE users (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id) ON UPDATE CASCADE ON DELETE CASCADE,
  id varchar(12) NOT NULL PRIMARY KEY,
  username varchar(128),
  primary_email varchar(128),
  primary_phone varchar(128),
  password_encrypted varchar(256),
  password_encryption_method users_password_encryption_method,
  name varchar(128),
  avatar varchar(2048),
  profile jsonb NOT NULL DEFAULT '{}',
  application_id varchar(21),
  identities jsonb NOT NULL DEFAULT '{}',
  custom_data jsonb NOT NULL DEFAULT '{}',
  logto_config jsonb NOT NULL DEFAULT '{}',
  mfa_verifications jsonb NOT NULL DEFAULT '[]',
  is_suspended boolean NOT NULL DEFAULT false,
  last_sign_in_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, id)
);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE PROCEDURE set_updated_at();

CREATE TYPE application_type AS ENUM ('Native', 'SPA', 'Traditional', 'MachineToMachine', 'Protected', 'SAML');
CREATE TABLE applications (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name varchar(256) NOT NULL, secret varchar(64) NOT NULL, description text,
  type application_type NOT NULL DEFAULT 'SPA', oidc_client_metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE logs (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id) ON UPDATE CASCADE ON DELETE CASCADE,
  id varchar(21) NOT NULL PRIMARY KEY,
  key varchar(128) NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs__key ON logs (tenant_id, key);
CREATE TYPE sentinel_action_result AS ENUM ('Success', 'Failed');
CREATE TYPE sentinel_decision AS ENUM ('Undecided', 'Allowed', 'Blocked', 'Challenge');
CREATE TABLE sentinel_activities (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id) ON UPDATE CASCADE ON DELETE CASCADE,
  id varchar(21) NOT NULL PRIMARY KEY,
  target_type varchar(32) NOT NULL,
  target_hash varchar(64) NOT NULL,
  action varchar(64) NOT NULL,
  action_result sentinel_action_result NOT NULL,
  payload jsonb NOT NULL,
  decision sentinel_decision NOT NULL,
  decision_expires_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE resources (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name text NOT NULL, indicator text NOT NULL
);
CREATE TABLE roles (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name varchar(128) NOT NULL, description varchar(128) NOT NULL,
  type role_type NOT NULL DEFAULT 'User', is_default boolean NOT NULL DEFAULT false
);
CREATE TABLE scopes (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  resource_id varchar(21) NOT NULL REFERENCES resources (id) ON UPDATE CASCADE ON DELETE CASCADE,
  name varchar(256) NOT NULL, description text, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE roles_scopes (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  role_id varchar(21) NOT NULL REFERENCES roles (id) ON UPDATE CASCADE ON DELETE CASCADE,
  scope_id varchar(21) NOT NULL REFERENCES scopes (id) ON UPDATE CASCADE ON DELETE CASCADE,
  UNIQUE (tenant_id, role_id, scope_id)
);
CREATE TABLE organizations (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name varchar(128) NOT NULL, description varchar(256), custom_data jsonb NOT NULL DEFAULT '{}',
  is_mfa_required boolean NOT NULL DEFAULT false, branding jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE organization_roles (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name varchar(128) NOT NULL, description varchar(256), type role_type NOT NULL DEFAULT 'User'
);
CREATE TABLE organization_scopes (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id), id varchar(21) PRIMARY KEY,
  name varchar(128) NOT NULL, description varchar(256)
);
CREATE TABLE organization_role_scope_relations (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id),
  organization_role_id varchar(21) NOT NULL REFERENCES organization_roles (id) ON UPDATE CASCADE ON DELETE CASCADE,
  organization_scope_id varchar(21) NOT NULL REFERENCES organization_scopes (id) ON UPDATE CASCADE ON DELETE CASCADE,
  PRIMARY KEY (tenant_id, organization_role_id, organization_scope_id)
);
CREATE TABLE organization_user_relations (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id),
  organization_id varchar(21) NOT NULL REFERENCES organizations (id) ON UPDATE CASCADE ON DELETE CASCADE,
  user_id varchar(21) NOT NULL REFERENCES users (id) ON UPDATE CASCADE ON DELETE CASCADE,
  PRIMARY KEY (tenant_id, organization_id, user_id)
);
CREATE TABLE organization_application_relations (
  tenant_id varchar(21) NOT NULL REFERENCES tenants (id),
  organization_id varchar(21) NOT NULL REFERENCES organizations (id) ON UPDATE CASCADE ON DELETE CASCADE,
  application_id varchar(21) NOT NULL REFERENCES applications (id) ON UPDATE CASCADE ON DELETE CASCADE,
  PRIMARY KEY (tenant_id, organization_id, application_id)
);

CREATE ROLE %[1]s NOINHERIT;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %[1]s;
REVOKE ALL PRIVILEGES ON TABLE tenants FROM %[1]s;
GRANT SELECT (id, db_user) ON TABLE tenants TO %[1]s;
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_tenant_id ON tenants TO %[1]s USING (db_user = current_user);
DO $$ DECLARE t text; BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tenants' LOOP
    EXECUTE format('CREATE TRIGGER set_tenant_id BEFORE INSERT ON %%I FOR EACH ROW EXECUTE PROCEDURE set_tenant_id()', t);
    EXECUTE format('ALTER TABLE %%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %%I ON %%I AS RESTRICTIVE USING (tenant_id = (SELECT id FROM tenants WHERE db_user = current_user))', t || '_tenant_id', t);
    EXECUTE format('CREATE POLICY %%I ON %%I USING (true)', t || '_modification', t);
  END LOOP;
END $$;
CREATE ROLE %[2]s WITH INHERIT LOGIN PASSWORD 'tenant-password' IN ROLE %[1]s;
`

// logtoBundle is a Logto-shaped database (logtoFixture) with the preset
// installed, and a connection as tenant t1's role.
type logtoBundle struct {
	*storeBundle
	tenant *pgx.Conn
	seen   int
}

// setupLogto creates the fixture, with tenant t1's role as the one Logto
// connects as, and resources and applications for tenants t1 and t2.
func setupLogto(t testing.TB) *logtoBundle {
	t.Helper()
	ctx := context.Background()
	bundle := setupStore(t)
	suffix := time.Now().UnixNano() % 1e12
	base, tenant := fmt.Sprintf("logto_tenant_db_%d", suffix), fmt.Sprintf("logto_tenant_db_%d_t1", suffix)
	_, err := bundle.pool.Exec(ctx, fmt.Sprintf(logtoFixture, base, tenant))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP OWNED BY %[1]s, %[2]s; DROP ROLE IF EXISTS %[2]s; DROP ROLE IF EXISTS %[1]s", base, tenant))
	})
	_, err = bundle.pool.Exec(ctx, `INSERT INTO resources VALUES ('t1', 'res1', 'API', 'https://api.example'), ('t2', 'res2', 'API', 'https://api2.example');
		INSERT INTO applications (tenant_id, id, name, secret, type) VALUES ('t1', 'app1', 'M2M one', 'app-secret-1', 'MachineToMachine'),
			('t1', 'app2', 'M2M two', 'app-secret-2', 'MachineToMachine'), ('t1', 'web', 'Web', 'app-secret-3', 'SPA'),
			('t2', 'web2', 'Web two', 'app-secret-4', 'SPA');`)
	require.NoError(t, err)
	config := bundle.pool.Config().ConnConfig.Copy()
	config.User, config.Password = tenant, "tenant-password"
	conn, err := pgx.ConnectConfig(ctx, config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return &logtoBundle{storeBundle: bundle, tenant: conn}
}

// admin runs sql as the database's owner.
func (b *logtoBundle) admin(t testing.TB, sql string, args ...any) {
	t.Helper()
	_, err := b.pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// exec runs sql as the tenant's role, as Logto does, and returns the events
// published since the last call.
func (b *logtoBundle) exec(t *testing.T, sql string) []capturedEvent {
	t.Helper()
	_, err := b.tenant.Exec(context.Background(), sql)
	require.NoError(t, err, sql)
	return b.fresh(t)
}

// fresh returns the events published since the last call.
func (b *logtoBundle) fresh(t *testing.T) []capturedEvent {
	t.Helper()
	events := capturedEvents(t, b.storeBundle)
	fresh := events[b.seen:]
	b.seen = len(events)
	return fresh
}

// eventTypes lists the types of events sorted: events of one transaction
// share a timestamp, and their order within it is unknown.
func eventTypes(events []capturedEvent) []string {
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.Type
	}
	slices.Sort(types)
	return types
}

// TestLogtoPreset installs the preset on a Logto-shaped database with the
// CLI and drives it the way Logto does: as the tenant's role, under
// row-level security, with no grant of hookrelay's.
func TestLogtoPreset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logto := setupLogto(t)
	bundle := logto.storeBundle
	admin := func(sql string, args ...any) {
		t.Helper()
		logto.admin(t, sql, args...)
	}
	exec := func(sql string) []capturedEvent {
		t.Helper()
		return logto.exec(t, sql)
	}
	conn := logto.tenant

	res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "install", "--preset", "logto")
	require.Equal(t, 0, res.code, res.stderr)
	var installed capture.PresetResult
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &installed))
	require.Empty(t, installed.Skipped)
	var tables []string
	for _, c := range installed.Installed {
		require.Equal(t, "logto", c.Preset)
		tables = append(tables, c.Table)
	}
	require.Equal(t, []string{
		"public.users", "public.roles", "public.scopes", "public.organizations", "public.organization_roles",
		"public.organization_scopes", "public.roles_scopes", "public.organization_role_scope_relations",
		"public.organization_user_relations", "public.organization_application_relations",
		"public.logs", "public.sentinel_activities",
	}, tables)
	list := runCLI(t, bundle.pool.Config().ConnString(), "capture", "list")
	require.Equal(t, 0, list.code, list.stderr)
	require.Equal(t, 12, strings.Count(list.stdout, `"preset": "logto"`), list.stdout)

	t.Run("Users", func(t *testing.T) {
		events := exec(`INSERT INTO users (id, username, primary_email, name, password_encrypted, password_encryption_method,
			mfa_verifications, logto_config, custom_data, created_at)
			VALUES ('u1', 'ann', 'ann@example.com', 'Ann', '$argon2id$secret-hash', 'Argon2id',
			'[{"type": "Totp", "key": "TOTP-SEED-SECRET"}]', '{"secret": "LOGTO-CONFIG-SECRET"}', '{"plan": "pro"}',
			'2026-03-04 05:06:07.123+00')`)
		require.Equal(t, []string{"User.Created"}, eventTypes(events))
		created := events[0]
		require.Equal(t, "t1", *created.Tenant, "the tenant set_tenant_id filled in")
		require.Equal(t, "User:u1", *created.Subject, "the user's events are ordered together")
		data := created.object()
		var keys []string
		for key := range data {
			keys = append(keys, key)
		}
		require.ElementsMatch(t, []string{
			"id", "username", "primaryEmail", "primaryPhone", "name", "avatar", "customData", "identities",
			"lastSignInAt", "createdAt", "updatedAt", "profile", "applicationId", "isSuspended",
		}, keys, "Logto's public user fields only")
		require.Equal(t, "ann@example.com", data["primaryEmail"])
		require.Equal(t, map[string]any{"plan": "pro"}, data["customData"])
		require.InDelta(t, 1772600767123, data["createdAt"], 0, "timestamps as Unix milliseconds, as Logto sends them")
		require.Equal(t, false, data["isSuspended"])
		require.Nil(t, data["lastSignInAt"])

		require.Equal(t, []string{"User.Data.Updated"}, eventTypes(exec("UPDATE users SET name = 'Ann B' WHERE id = 'u1'")))
		require.Empty(t, exec("UPDATE users SET last_sign_in_at = now() WHERE id = 'u1'"), "a sign-in is no data update")
		require.Empty(t, exec("UPDATE users SET updated_at = now() + interval '1 minute' WHERE id = 'u1'"))
		require.Empty(t, exec("UPDATE users SET password_encrypted = '$argon2id$new-secret-hash' WHERE id = 'u1'"), "nothing public changed")
		require.Empty(t, exec("UPDATE users SET name = name WHERE id = 'u1'"))
		suspended := exec("UPDATE users SET is_suspended = true WHERE id = 'u1'")
		require.Equal(t, []string{"User.SuspensionStatus.Updated"}, eventTypes(suspended))
		require.Equal(t, true, suspended[0].object()["isSuspended"])
		require.Equal(t, []string{"User.Data.Updated", "User.SuspensionStatus.Updated"},
			eventTypes(exec("UPDATE users SET is_suspended = false, username = 'annb' WHERE id = 'u1'")))

		// A column Logto adds later neither leaks nor breaks anything.
		admin("ALTER TABLE users ADD COLUMN passkey_secret text DEFAULT 'PASSKEY-SECRET'")
		require.Empty(t, exec("UPDATE users SET passkey_secret = 'PASSKEY-SECRET-2' WHERE id = 'u1'"))
		require.Equal(t, []string{"User.Created"}, eventTypes(exec("INSERT INTO users (id, username) VALUES ('u2', 'bob')")))

		deleted := exec("DELETE FROM users WHERE id = 'u2'")
		require.Equal(t, []string{"User.Deleted"}, eventTypes(deleted))
		require.Equal(t, "bob", deleted[0].object()["username"])
		require.Equal(t, "User:u2", *deleted[0].Subject)
	})

	t.Run("Entities", func(t *testing.T) {
		events := exec(`INSERT INTO roles (id, name, description) VALUES ('r1', 'admin', 'Administrators');
			INSERT INTO scopes (id, resource_id, name, description) VALUES ('s1', 'res1', 'read:users', 'Read'), ('s2', 'res1', 'write:users', NULL), ('s3', 'res1', 'delete:users', NULL);
			INSERT INTO organizations (id, name, custom_data) VALUES ('o1', 'Acme', '{"tier": 1}');
			INSERT INTO organization_roles (id, name) VALUES ('or1', 'member');
			INSERT INTO organization_scopes (id, name) VALUES ('os1', 'invite'), ('os2', 'kick');`)
		require.Equal(t, []string{
			"Organization.Created", "OrganizationRole.Created", "OrganizationScope.Created", "OrganizationScope.Created",
			"Role.Created", "Scope.Created", "Scope.Created", "Scope.Created",
		}, eventTypes(events))
		role := withData(events, "id", "r1")
		require.Equal(t, map[string]any{"id": "r1", "name": "admin", "description": "Administrators", "type": "User", "isDefault": false}, role.Data)
		require.Equal(t, "t1", *role.Tenant)
		require.Equal(t, map[string]any{"tier": float64(1)}, withData(events, "id", "o1").object()["customData"])
		require.Equal(t, map[string]any{"id": "os1", "name": "invite", "description": nil}, withData(events, "id", "os1").Data)

		require.Equal(t, []string{"Role.Data.Updated"}, eventTypes(exec("UPDATE roles SET description = 'Admins' WHERE id = 'r1'")))
		require.Equal(t, []string{"Organization.Data.Updated"}, eventTypes(exec(`UPDATE organizations SET branding = '{"logoUrl": "x"}' WHERE id = 'o1'`)))
		require.Equal(t, []string{"OrganizationRole.Data.Updated"}, eventTypes(exec("UPDATE organization_roles SET description = 'Members' WHERE id = 'or1'")))
		require.Equal(t, []string{"OrganizationScope.Data.Updated"}, eventTypes(exec("UPDATE organization_scopes SET description = 'Invite' WHERE id = 'os1'")))
		require.Equal(t, []string{"Scope.Data.Updated"}, eventTypes(exec("UPDATE scopes SET description = 'Write' WHERE id = 's2'")))
	})

	t.Run("RelationsPublishOneEventPerParentPerStatement", func(t *testing.T) {
		events := exec("INSERT INTO roles_scopes (id, role_id, scope_id) VALUES ('rs1', 'r1', 's1'), ('rs2', 'r1', 's2'), ('rs3', 'r1', 's3')")
		require.Equal(t, []string{"Role.Scopes.Updated"}, eventTypes(events))
		require.Equal(t, "r1", events[0].Context["roleId"])
		require.Equal(t, "t1", *events[0].Tenant)
		require.Equal(t, "Role:r1", *events[0].Subject, "a relation's events are its parent's")
		scopes := events[0].Data.([]any)
		require.Len(t, scopes, 3, "the role's scopes after the change")
		require.Equal(t, "s1", scopes[0].(map[string]any)["id"])
		require.Equal(t, "res1", scopes[0].(map[string]any)["resourceId"])
		events = exec("DELETE FROM roles_scopes WHERE scope_id IN ('s1', 's3')")
		require.Equal(t, []string{"Role.Scopes.Updated"}, eventTypes(events))
		require.Len(t, events[0].Data, 1)

		events = exec("INSERT INTO organization_role_scope_relations (organization_role_id, organization_scope_id) VALUES ('or1', 'os1'), ('or1', 'os2')")
		require.Equal(t, []string{"OrganizationRole.Scopes.Updated"}, eventTypes(events))
		require.Equal(t, "or1", events[0].Context["organizationRoleId"])
		require.Len(t, events[0].Data, 2)

		exec("INSERT INTO users (id, username) SELECT 'm' || i, 'member' || i FROM generate_series(1, 50) i")
		events = exec("INSERT INTO organization_user_relations (organization_id, user_id) SELECT 'o1', 'm' || i FROM generate_series(1, 50) i")
		require.Equal(t, []string{"Organization.Membership.Updated"}, eventTypes(events), "50 members, one event")
		membership := events[0]
		require.Nil(t, membership.Data)
		require.Equal(t, "o1", membership.Context["organizationId"])
		require.Len(t, membership.Context["addedUserIds"], 50)
		require.NotContains(t, membership.Context, "removedUserIds", "empty lists are left out, as Logto does")
		require.NotContains(t, membership.Context, "truncated")

		events = exec("UPDATE organization_user_relations SET user_id = 'u1' WHERE user_id = 'm50'")
		require.Equal(t, []any{"u1"}, events[0].Context["addedUserIds"])
		require.Equal(t, []any{"m50"}, events[0].Context["removedUserIds"])
		require.Empty(t, exec("UPDATE organization_user_relations SET user_id = user_id"), "nothing changed")

		events = exec("INSERT INTO organization_application_relations (organization_id, application_id) VALUES ('o1', 'app1'), ('o1', 'app2')")
		require.Equal(t, []string{"Organization.Membership.Updated"}, eventTypes(events))
		require.Equal(t, []any{"app1", "app2"}, events[0].Context["addedApplicationIds"])
		require.NotContains(t, events[0].Context, "addedUserIds")

		exec("INSERT INTO users (id, username) SELECT 'bulk' || i, 'bulk' || i FROM generate_series(1, 6000) i")
		events = exec("INSERT INTO organization_user_relations (organization_id, user_id) SELECT 'o1', 'bulk' || i FROM generate_series(1, 6000) i")
		require.Equal(t, []string{"Organization.Membership.Updated"}, eventTypes(events))
		require.Len(t, events[0].Context["addedUserIds"], outbox.MembershipIDsMax)
		require.Equal(t, true, events[0].Context["truncated"])
	})

	t.Run("ParentDeletedWithItsRelationsPublishesItsDeletionOnly", func(t *testing.T) {
		require.Equal(t, []string{"Role.Deleted"}, eventTypes(exec("DELETE FROM roles WHERE id = 'r1'")))
		require.Equal(t, []string{"OrganizationRole.Deleted"}, eventTypes(exec("DELETE FROM organization_roles WHERE id = 'or1'")))
		// A user leaving with its memberships is a membership change.
		require.Equal(t, []string{"Organization.Membership.Updated", "User.Deleted"}, eventTypes(exec("DELETE FROM users WHERE id = 'm1'")))
	})

	t.Run("RollbackPublishesNothing", func(t *testing.T) {
		before := len(capturedEvents(t, bundle))
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "INSERT INTO users (id, username) VALUES ('u9', 'gone'); INSERT INTO organization_user_relations (organization_id, user_id) VALUES ('o1', 'u9')")
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		require.Len(t, capturedEvents(t, bundle), before)
	})

	t.Run("NoSecretInAnyEvent", func(t *testing.T) {
		var leaked int
		require.NoError(t, bundle.pool.QueryRow(ctx, `SELECT count(*) FROM hookrelay.events
			WHERE (coalesce(data::text, '') || context::text) ~ '(secret-hash|TOTP-SEED|LOGTO-CONFIG|PASSKEY|Argon2id|app-secret)'`).Scan(&leaked))
		require.Zero(t, leaked)
	})

	t.Run("RemoveDropsEveryTrigger", func(t *testing.T) {
		res := runCLI(t, bundle.pool.Config().ConnString(), "capture", "remove", "--preset", "logto")
		require.Equal(t, 0, res.code, res.stderr)
		var triggers int
		require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hookrelay_capture%'").Scan(&triggers))
		require.Zero(t, triggers)
		require.Empty(t, exec("INSERT INTO roles (id, name, description) VALUES ('r2', 'x', 'y')"))
		again := runCLI(t, bundle.pool.Config().ConnString(), "capture", "remove", "--preset", "logto")
		require.Equal(t, 1, again.code)
		require.Contains(t, again.stderr, "not installed")
	})
}

// TestLogtoPresetOlderLogto: a table missing from an older Logto is skipped
// with a note, columns it lacks are left out, and a schema with no Logto
// table is an error that names what to give.
func TestLogtoPresetOlderLogto(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, `CREATE SCHEMA logto;
		CREATE TABLE logto.users (tenant_id text NOT NULL, id text PRIMARY KEY, username text, password_encrypted text,
			is_suspended boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now());
		CREATE TABLE logto.roles (tenant_id text NOT NULL, id text PRIMARY KEY, name text NOT NULL, description text NOT NULL);
		CREATE TABLE logto.scopes (tenant_id text NOT NULL, id text PRIMARY KEY, name text NOT NULL);
		CREATE TABLE logto.roles_scopes (tenant_id text NOT NULL, id text PRIMARY KEY, role_id text NOT NULL, scope_id text NOT NULL);
		CREATE TABLE logto.organizations (id text PRIMARY KEY, name text); -- no tenant_id: not Logto's`)
	require.NoError(t, err)

	result, err := capture.New(bundle.store).InstallPreset(ctx, logtoPreset(t), &capture.PresetOptions{TableSchema: "logto"})
	require.NoError(t, err)
	require.Len(t, result.Installed, 4)
	require.Equal(t, []string{"id", "username", "created_at", "is_suspended"}, result.Installed[0].Columns)
	skipped := map[string]string{}
	for _, s := range result.Skipped {
		skipped[s.Table] = s.Reason
	}
	require.Len(t, skipped, 8)
	require.Contains(t, skipped["logto.organizations"], "no column tenant_id")
	require.Contains(t, skipped["logto.organization_roles"], "older Logto")
	require.Contains(t, skipped["logto.organization_user_relations"], "older Logto")

	_, err = bundle.pool.Exec(ctx, `INSERT INTO logto.users (tenant_id, id, username, password_encrypted) VALUES ('t1', 'u1', 'ann', 'hash');
		INSERT INTO logto.roles VALUES ('t1', 'r1', 'admin', 'Admins'); INSERT INTO logto.scopes VALUES ('t1', 's1', 'read');
		INSERT INTO logto.roles_scopes VALUES ('t1', 'rs1', 'r1', 's1');`)
	require.NoError(t, err)
	events := capturedEvents(t, bundle)
	require.Len(t, events, 4)
	for _, e := range events {
		if e.Type == outbox.EventRoleScopesUpdated {
			require.Equal(t, []any{map[string]any{"id": "s1", "name": "read"}}, e.Data)
		}
	}

	_, err = capture.New(bundle.store).InstallPreset(ctx, logtoPreset(t), &capture.PresetOptions{TableSchema: "nowhere"})
	require.ErrorContains(t, err, "holds none of Logto's tables")
	_, _, err = capture.BuiltIn("auth0")
	require.ErrorContains(t, err, "the built-in presets are logto, supabase")
}

// logtoPreset is the built-in Logto preset.
func logtoPreset(t testing.TB) *capture.Preset {
	t.Helper()
	preset, _, err := capture.BuiltIn("logto")
	require.NoError(t, err)
	return preset
}

// installLogto installs the Logto preset on the store's database.
func installLogto(t testing.TB, store *outbox.Store) (*capture.PresetResult, error) {
	t.Helper()
	return capture.New(store).InstallPreset(context.Background(), logtoPreset(t), nil)
}

// withData returns the event whose data has value under key.
func withData(events []capturedEvent, key string, value any) capturedEvent {
	for _, e := range events {
		if e.object()[key] == value {
			return e
		}
	}
	return capturedEvent{}
}

// TestLogtoInteractionEvents: Logto's interaction events (PostSignIn,
// PostRegister, PostResetPassword) from the log row of a finished
// interaction, and Identifier.Lockout from a blocked sentinel activity, with
// Logto's bodies as far as the rows tell them, written as the tenant's role
// under row-level security.
func TestLogtoInteractionEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logto := setupLogto(t)
	_, err := installLogto(t, logto.store)
	require.NoError(t, err)
	logto.exec(t, `INSERT INTO users (id, username, primary_email, name, password_encrypted, password_encryption_method, logto_config)
		VALUES ('u1', 'ann', 'ann@example.com', 'Ann', '$argon2id$secret-hash', 'Argon2id', '{"secret": "LOGTO-CONFIG-SECRET"}')`)
	logto.admin(t, `INSERT INTO users (tenant_id, id, username) VALUES ('t2', 'u_t2', 'theirs')`)
	logto.fresh(t)

	submit := func(key, result, user string) []capturedEvent {
		t.Helper()
		return logto.exec(t, fmt.Sprintf(`INSERT INTO logs (id, key, payload) VALUES ('%[1]s', '%[2]s', jsonb_build_object(
			'key', '%[2]s', 'result', '%[3]s', 'userId', '%[4]s', 'ip', '203.0.113.7', 'userAgent', 'curl/8',
			'userAgentParsed', '{"ua": "curl/8"}'::jsonb, 'applicationId', 'web',
			'interaction', '{"verificationRecords": [{"type": "Password", "secret": "INTERACTION-SECRET"}]}'::jsonb))`,
			fmt.Sprintf("log%d", time.Now().UnixNano()%1e15), key, result, user))
	}

	t.Run("FinishedInteractionsPublishTheirEvents", func(t *testing.T) {
		for _, tt := range []struct{ key, event, interaction string }{
			{"Interaction.SignIn.Submit", "PostSignIn", "SignIn"},
			{"Interaction.Register.Submit", "PostRegister", "Register"},
			{"Interaction.ForgotPassword.Submit", "PostResetPassword", "ForgotPassword"},
		} {
			events := submit(tt.key, "Success", "u1")
			require.Len(t, events, 1, tt.key)
			e := events[0]
			require.Equal(t, tt.event, e.Type)
			require.Nil(t, e.Data)
			require.Equal(t, "t1", *e.Tenant)
			var keys []string
			for key := range e.Context {
				keys = append(keys, key)
			}
			require.ElementsMatch(t, []string{"interactionEvent", "userId", "userIp", "userAgent", "user", "application"}, keys)
			require.Equal(t, tt.interaction, e.Context["interactionEvent"])
			require.Equal(t, "u1", e.Context["userId"])
			require.Equal(t, "User:u1", *e.Subject, "an interaction's events are its user's")
			require.Equal(t, "203.0.113.7", e.Context["userIp"])
			require.Equal(t, "curl/8", e.Context["userAgent"])
			require.Equal(t, map[string]any{"id": "web", "type": "SPA", "name": "Web", "description": nil}, e.Context["application"])
			user := e.Context["user"].(map[string]any)
			require.Equal(t, "ann@example.com", user["primaryEmail"])
			require.Len(t, user, 14, "Logto's public user fields (this fixture has no cimd_client_id)")
		}
	})

	t.Run("FailedAndOtherLogsPublishNothing", func(t *testing.T) {
		require.Empty(t, submit("Interaction.SignIn.Submit", "Error", "u1"), "a failed sign-in")
		require.Empty(t, submit("Interaction.SignIn.Identifier.Submit", "Success", "u1"), "a step of an interaction")
		require.Empty(t, submit("ExchangeTokenBy.AuthorizationCode", "Success", "u1"))
	})

	t.Run("OnlyTheTenantsOwnRowsAreJoined", func(t *testing.T) {
		events := submit("Interaction.SignIn.Submit", "Success", "u_t2")
		require.Len(t, events, 1)
		require.NotContains(t, events[0].Context, "user", "tenant 2's user is not tenant 1's")
	})

	t.Run("LockoutPublishesWhatTheRowTells", func(t *testing.T) {
		activity := func(id, decision string) []capturedEvent {
			return logto.exec(t, fmt.Sprintf(`INSERT INTO sentinel_activities (id, target_type, target_hash, action, action_result, payload, decision, decision_expires_at)
				VALUES ('%s', 'User', 'f3c3b0d0-sha256-OF-THE-IDENTIFIER', 'Password', 'Failed', '{"event": "SignIn", "verificationId": "v1"}', '%s', '2026-03-04 05:16:07+00')`, id, decision))
		}
		require.Empty(t, activity("sa1", "Allowed"))
		events := activity("sa2", "Blocked")
		require.Equal(t, []string{"Identifier.Lockout"}, eventTypes(events))
		require.Equal(t, map[string]any{"action": "Password", "targetType": "User", "interactionEvent": "SignIn", "lockedUntil": float64(1772601367000)}, events[0].Context)
	})

	t.Run("RollbackPublishesNothing", func(t *testing.T) {
		tx, err := logto.tenant.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `INSERT INTO logs (id, key, payload) VALUES ('rolled', 'Interaction.SignIn.Submit', '{"result": "Success", "userId": "u1"}')`)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		require.Empty(t, logto.fresh(t))
	})

	t.Run("AdminTenantPublishesNothingUnlessAsked", func(t *testing.T) {
		logto.admin(t, `INSERT INTO tenants VALUES ('admin', NULL)`)
		adminRows := func(id string) {
			logto.admin(t, fmt.Sprintf(`INSERT INTO users (tenant_id, id, username) VALUES ('admin', '%[1]s', 'console-admin-%[1]s');
				INSERT INTO logs (tenant_id, id, key, payload) VALUES ('admin', 'log-%[1]s', 'Interaction.SignIn.Submit', '{"result": "Success", "userId": "%[1]s"}')`, id))
		}
		adminRows("a1")
		require.Empty(t, logto.fresh(t), "Logto's Admin Console users are left out")
		_, err := capture.New(logto.store).InstallPreset(ctx, logtoPreset(t), &capture.PresetOptions{AllTenants: true})
		require.NoError(t, err)
		adminRows("a2")
		require.Equal(t, []string{"PostSignIn", "User.Created"}, eventTypes(logto.fresh(t)))
	})

	t.Run("NoSecretInAnyEvent", func(t *testing.T) {
		var leaked int
		require.NoError(t, logto.pool.QueryRow(ctx, `SELECT count(*) FROM hookrelay.events
			WHERE (coalesce(data::text, '') || context::text) ~ '(secret-hash|LOGTO-CONFIG|Argon2id|app-secret|INTERACTION-SECRET|OF-THE-IDENTIFIER|verificationId|userAgentParsed)'`).Scan(&leaked))
		require.Zero(t, leaked)
	})
}
