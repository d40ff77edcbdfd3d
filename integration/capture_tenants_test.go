package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookrelay/hookrelay/capture"
)

// tenantsFixture is a multi-tenant schema as users write mappings for: every
// key is unique within its tenant only (a primary key of the tenant and the
// id), and row-level security restricts each tenant's login role to its own
// rows. %[1]s is the key's type, %[2]s the accounts' primary key, %[3]s and
// %[4]s the roles of tenants a and b.
const tenantsFixture = `
CREATE SCHEMA crm;
CREATE TABLE crm.role_tenants (role name PRIMARY KEY, org text NOT NULL);
INSERT INTO crm.role_tenants VALUES ('%[3]s', 'a'), ('%[4]s', 'b');
CREATE TABLE crm.accounts (org text NOT NULL, id %[1]s NOT NULL, name text, plan text, disabled boolean NOT NULL DEFAULT false,
	PRIMARY KEY %[2]s, UNIQUE (org, id));
CREATE TABLE crm.identities (org text NOT NULL, id int NOT NULL, account_id %[1]s NOT NULL, provider text, email text, last_used_at timestamptz,
	PRIMARY KEY (org, id), FOREIGN KEY (org, account_id) REFERENCES crm.accounts (org, id) ON DELETE CASCADE);
CREATE TABLE crm.roles (org text NOT NULL, id %[1]s NOT NULL, name text, PRIMARY KEY (org, id));
CREATE TABLE crm.account_roles (org text NOT NULL, account_id %[1]s NOT NULL, role_id %[1]s NOT NULL,
	PRIMARY KEY (org, account_id, role_id),
	FOREIGN KEY (org, account_id) REFERENCES crm.accounts (org, id) ON DELETE CASCADE,
	FOREIGN KEY (org, role_id) REFERENCES crm.roles (org, id) ON DELETE CASCADE);
CREATE TABLE crm.logins (org text NOT NULL, id serial, account_id %[1]s, outcome text, details jsonb, PRIMARY KEY (org, id));
CREATE ROLE %[3]s LOGIN PASSWORD 'tenant-password';
CREATE ROLE %[4]s LOGIN PASSWORD 'tenant-password';
GRANT USAGE ON SCHEMA crm TO %[3]s, %[4]s;
GRANT SELECT ON crm.role_tenants TO %[3]s, %[4]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON crm.accounts, crm.identities, crm.roles, crm.account_roles, crm.logins TO %[3]s, %[4]s;
GRANT USAGE ON SEQUENCE crm.logins_id_seq TO %[3]s, %[4]s;
DO $$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['accounts', 'identities', 'roles', 'account_roles', 'logins'] LOOP
    EXECUTE format('ALTER TABLE crm.%%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY own ON crm.%%I USING (org = (SELECT r.org FROM crm.role_tenants r WHERE r.role = current_user))', t);
  END LOOP;
END $$;
`

// tenantsMapping maps tenantsFixture, with every kind of lookup: an entity
// read back at commit with its included identities, a relation whose data
// is the parent's children, and rows joined by a column and by a path into
// a JSON column.
const tenantsMapping = `
name: crm
schema: crm
tenant: org
entities:
  - table: accounts
    entity: Account
    columns: [id, name, plan, disabled]
    suspended: {column: disabled, when: "true"}
    include:
      - {as: identities, table: identities, by: account_id, columns: [id, provider, email, last_used_at], quiet: [last_used_at]}
  - table: roles
    entity: Role
    columns: [id, name]
relations:
  - table: account_roles
    event: Account.Roles.Updated
    parent: {column: account_id, table: accounts, as: accountId}
    child: {column: role_id, table: roles}
rows:
  - table: logins
    event: PostSignIn
    when: [{source: outcome, equals: ok}]
    context: {userId: account_id, method: details.method}
    join:
      - {as: user, table: accounts, on: account_id}
      - {as: claimed, table: accounts, on: details.acct}
`

// tenantsBundle is tenantsFixture with tenantsMapping installed, and a
// connection as each tenant's role.
type tenantsBundle struct {
	*storeBundle
	a, b *pgx.Conn
	seen int
}

func setupTenants(t *testing.T, keyType, primaryKey string) *tenantsBundle {
	t.Helper()
	ctx := context.Background()
	bundle := setupStore(t)
	suffix := time.Now().UnixNano() % 1e12
	roleA, roleB := fmt.Sprintf("org_a_%d", suffix), fmt.Sprintf("org_b_%d", suffix)
	_, err := bundle.pool.Exec(ctx, fmt.Sprintf(tenantsFixture, keyType, primaryKey, roleA, roleB))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = bundle.pool.Exec(context.Background(), fmt.Sprintf("DROP SCHEMA crm CASCADE; DROP ROLE %s; DROP ROLE %s", roleA, roleB))
	})
	preset, err := capture.ParsePreset([]byte(tenantsMapping))
	require.NoError(t, err)
	result, err := capture.New(bundle.store).InstallPreset(ctx, preset, nil)
	require.NoError(t, err)
	require.Empty(t, result.Skipped)
	connect := func(role string) *pgx.Conn {
		config := bundle.pool.Config().ConnConfig.Copy()
		config.User, config.Password = role, "tenant-password"
		conn, err := pgx.ConnectConfig(ctx, config)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}
	return &tenantsBundle{storeBundle: bundle, a: connect(roleA), b: connect(roleB)}
}

// tx runs statements in one transaction on conn, each of which must
// succeed, and returns the events published since the last call.
func (b *tenantsBundle) tx(t *testing.T, conn *pgx.Conn, statements ...string) []capturedEvent {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, sql := range statements {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	}))
	events := capturedEvents(t, b.storeBundle)
	fresh := events[b.seen:]
	b.seen = len(events)
	return fresh
}

// TestCaptureLookupsKeepToTheirTenant: with keys unique per tenant only, of
// every type a mapping may compare, each lookup (read-back, include,
// relation parent and children, joins) finds its row in its own tenant,
// and no value in a row can fail the writer's statement.
func TestCaptureLookupsKeepToTheirTenant(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, keyType, primaryKey string
		// keyA and keyB are the accounts' keys in tenants a and b, role the
		// roles' key, as SQL literals; keyJSON is keyB as the JSON of a
		// login's details, and keyData as the account's data holds it.
		keyA, keyB, role, keyJSON string
		keyData                   any
	}{
		{"Integer", "integer", "(org, id)", "2", "2", "7", "2", float64(2)},
		{"Bigint", "bigint", "(org, id)", "5000000000", "5000000000", "7", "5000000000", float64(5000000000)},
		{"UUID", "uuid", "(org, id)", "'0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11'", "'0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11'",
			"'6f1c2b3a-0000-4000-8000-000000000007'", `"0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11"`, "0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11"},
		{"Text", "text", "(org, id)", "'acc-2'", "'acc-2'", "'r7'", `"acc-2"`, "acc-2"},
		{"VarcharUniqueAlone", "varchar(20)", "(id)", "'acc-a'", "'acc-b'", "'r7'", `"acc-b"`, "acc-b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupTenants(t, tt.keyType, tt.primaryKey)

			created := b.tx(t, b.a, fmt.Sprintf("INSERT INTO crm.accounts (org, id, name) VALUES ('a', %s, 'Attacker')", tt.keyA))
			require.Equal(t, []string{"Account.Created"}, eventTypes(created))
			require.Empty(t, created[0].object()["identities"])

			// The case: tenant b's account and identity in one
			// transaction are tenant b's Account.Created, with the identity.
			created = b.tx(t, b.b, fmt.Sprintf("INSERT INTO crm.accounts (org, id, name) VALUES ('b', %s, 'Bob')", tt.keyB),
				fmt.Sprintf("INSERT INTO crm.identities VALUES ('b', 30, %s, 'okta', 'carol@b.example')", tt.keyB))
			require.Equal(t, []string{"Account.Created"}, eventTypes(created))
			require.Equal(t, "b", *created[0].Tenant)
			account := created[0].object()
			require.Equal(t, "Bob", account["name"])
			require.Equal(t, tt.keyData, account["id"])
			require.Equal(t, []any{map[string]any{"id": float64(30), "provider": "okta", "email": "carol@b.example", "lastUsedAt": nil}}, account["identities"])

			// Tenant a's account of the same key has none of b's identities.
			updated := b.tx(t, b.a, "UPDATE crm.accounts SET plan = 'pro'")
			require.Equal(t, []string{"Account.Data.Updated"}, eventTypes(updated))
			require.Equal(t, "Attacker", updated[0].object()["name"])
			require.Empty(t, updated[0].object()["identities"])

			// A relation: tenant a's role of the same key is not b's child.
			require.Equal(t, []string{"Role.Created"}, eventTypes(b.tx(t, b.a, fmt.Sprintf("INSERT INTO crm.roles VALUES ('a', %s, 'a-admin')", tt.role))))
			require.Equal(t, []string{"Role.Created"}, eventTypes(b.tx(t, b.b, fmt.Sprintf("INSERT INTO crm.roles VALUES ('b', %s, 'admin')", tt.role))))
			related := b.tx(t, b.b, fmt.Sprintf("INSERT INTO crm.account_roles VALUES ('b', %s, %s)", tt.keyB, tt.role))
			require.Equal(t, []string{"Account.Roles.Updated"}, eventTypes(related))
			require.Equal(t, "b", *related[0].Tenant)
			require.Equal(t, strings.Trim(tt.keyB, "'"), related[0].Context["accountId"])
			require.Len(t, related[0].Data, 1)
			require.Equal(t, "admin", related[0].Data.([]any)[0].(map[string]any)["name"])

			// Rows joined by a column, and by a JSON value that is the key,
			// is not a key of its type, or is too large for it.
			signIn := b.tx(t, b.b, fmt.Sprintf(`INSERT INTO crm.logins (org, account_id, outcome, details) VALUES ('b', %s, 'ok', '{"method": "sso", "acct": %s}')`, tt.keyB, tt.keyJSON))
			require.Equal(t, []string{"PostSignIn"}, eventTypes(signIn))
			require.Equal(t, "Bob", signIn[0].Context["user"].(map[string]any)["name"])
			require.Equal(t, "Bob", signIn[0].Context["claimed"].(map[string]any)["name"])
			for _, acct := range []string{`"not-a-number"`, `"99999999999999999999999"`, `"9999999999999999999"`, `"-"`, `"{0b7f6c1e-4a6b-4a59-9a1e-2d1f5c3b7a11"`, `12.5`, `null`} {
				signIn = b.tx(t, b.b, fmt.Sprintf(`INSERT INTO crm.logins (org, account_id, outcome, details) VALUES ('b', %s, 'ok', '{"acct": %s}')`, tt.keyB, acct))
				require.Equal(t, []string{"PostSignIn"}, eventTypes(signIn), acct)
				require.NotContains(t, signIn[0].Context, "claimed", acct)
			}
			require.Empty(t, b.tx(t, b.b, fmt.Sprintf(`INSERT INTO crm.logins (org, account_id, outcome) VALUES ('b', %s, 'denied')`, tt.keyB)))

			require.Equal(t, []string{"Account.SuspensionStatus.Updated"}, eventTypes(b.tx(t, b.b, "UPDATE crm.accounts SET disabled = true")))

			// Deleting b's account (its identities and relations cascade) is
			// b's Account.Deleted alone: never an update of a's.
			deleted := b.tx(t, b.b, "DELETE FROM crm.accounts")
			require.Equal(t, []string{"Account.Deleted"}, eventTypes(deleted))
			require.Equal(t, "b", *deleted[0].Tenant)
			require.Equal(t, tt.keyData, deleted[0].Context["entityId"])

			var leaked int
			require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM hookrelay.events
				WHERE (tenant_id = 'a' AND (coalesce(data::text, '') || context::text) ~ '(carol|Bob|"admin")')
				   OR (tenant_id = 'b' AND (coalesce(data::text, '') || context::text) ~ '(Attacker|a-admin)')`).Scan(&leaked))
			require.Zero(t, leaked)
		})
	}
}

// TestCapturePerTransactionIsOneDecision: an entity published once per
// transaction gets the one event its state before the transaction and at
// commit call for, whatever order its row and its children change in, in
// savepoints too, and no writer can silence it.
func TestCapturePerTransactionIsOneDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTenants(t, "text", "(org, id)")
	b.tx(t, b.b, "INSERT INTO crm.accounts (org, id, name, plan) VALUES ('b', 'x', 'Bob', 'free')",
		"INSERT INTO crm.identities VALUES ('b', 30, 'x', 'okta', 'bob@b.example')")

	require.Empty(t, b.tx(t, b.b, "UPDATE crm.accounts SET name = 'Robert'", "UPDATE crm.accounts SET name = 'Bob'"),
		"changed and changed back: nothing to tell")
	require.Empty(t, b.tx(t, b.b, "UPDATE crm.identities SET last_used_at = now()", "UPDATE crm.accounts SET plan = plan"),
		"a quiet change of a child and a change of nothing")

	for _, statements := range [][]string{
		{"UPDATE crm.identities SET email = 'bob1@b.example'", "UPDATE crm.accounts SET plan = plan"},
		{"UPDATE crm.accounts SET plan = plan", "UPDATE crm.identities SET email = 'bob2@b.example'"},
		{"SAVEPOINT s", "UPDATE crm.accounts SET name = 'Zed'", "ROLLBACK TO SAVEPOINT s", "UPDATE crm.identities SET email = 'bob3@b.example'"},
		{"UPDATE crm.identities SET email = 'bob4@b.example'"},
	} {
		events := b.tx(t, b.b, statements...)
		require.Equal(t, []string{"Account.Data.Updated"}, eventTypes(events), statements)
		email := events[0].object()["identities"].([]any)[0].(map[string]any)["email"]
		require.True(t, strings.HasPrefix(email.(string), "bob"), "the state at commit")
	}
	// A child's change, then a suspension (in a subtransaction too): the
	// entity's own trigger decides, knowing of the child, as it would
	// for the same changes of its own row.
	for _, statements := range [][]string{
		{"UPDATE crm.identities SET email = 'bob5@b.example'", "UPDATE crm.accounts SET disabled = true"},
		{"UPDATE crm.identities SET email = 'bob6@b.example'", "SAVEPOINT s", "UPDATE crm.accounts SET disabled = false", "RELEASE SAVEPOINT s"},
	} {
		events := b.tx(t, b.b, statements...)
		require.Equal(t, []string{"Account.Data.Updated", "Account.SuspensionStatus.Updated"}, eventTypes(events), statements)
		require.Equal(t, "Bob", events[0].object()["name"], "not the rolled-back name")
	}

	// The note of what was published was a session setting that any
	// writer could set; now no writer can read or write it.
	sum := sha256.Sum256([]byte("crm.accounts"))
	events := b.tx(t, b.b, fmt.Sprintf("SELECT set_config('hookrelay.published_%s', ' x ', true)", hex.EncodeToString(sum[:6])),
		"UPDATE crm.accounts SET plan = 'pro'")
	require.Equal(t, []string{"Account.Data.Updated"}, eventTypes(events))
	for _, sql := range []string{
		"SELECT * FROM hookrelay.capture_published",
		"INSERT INTO hookrelay.capture_published VALUES (pg_current_xact_id(), 'x', 'x', 'P')",
	} {
		_, err := b.b.Exec(ctx, sql)
		requirePgError(t, err, "42501", "permission denied")
	}

	// The notes of ended transactions are deleted as later ones are made
	// (once no older transaction of the cluster's runs: other tests').
	for i := range 40 {
		b.tx(t, b.b, fmt.Sprintf("UPDATE crm.accounts SET plan = 'p%d'", i))
	}
	notes := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b.tx(t, b.b, "UPDATE crm.accounts SET plan = plan || '.'")
		require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM hookrelay.capture_published").Scan(&notes))
		if notes <= 2 {
			break
		}
	}
	require.LessOrEqual(t, notes, 2)
}

// TestCaptureRefusesLookupsItCannotMake: a mapping whose lookups could find
// another tenant's row, or could not compare without a cast, is refused at
// install, naming what to change.
func TestCaptureRefusesLookupsItCannotMake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct{ name, schema, mapping, wantErr string }{
		{
			"IncludeWithoutTenant",
			`CREATE TABLE crm.accounts (org text NOT NULL, id int NOT NULL, PRIMARY KEY (org, id));
			 CREATE TABLE crm.identities (id int PRIMARY KEY, account_id int NOT NULL);`,
			"entities:\n  - {table: accounts, entity: Account, columns: [id], include: [{as: identities, table: identities, by: account_id, columns: [id]}]}\n",
			"crm.identities has no column org",
		},
		{
			"KeyNotUniqueWithinTenant",
			`CREATE TABLE crm.accounts (org text NOT NULL, id int NOT NULL, name text);`,
			"entities:\n  - {table: accounts, entity: Account, columns: [id, name], perTransaction: true}\n",
			"crm.accounts.id is not unique within a tenant",
		},
		{
			"KeyUniqueOnlyWithAnotherColumn",
			`CREATE TABLE crm.accounts (org text NOT NULL, region text NOT NULL, id int NOT NULL, PRIMARY KEY (org, region, id));`,
			"entities:\n  - {table: accounts, entity: Account, columns: [id], perTransaction: true}\n",
			"is not unique within a tenant",
		},
		{
			"NullableTenant",
			`CREATE TABLE crm.accounts (org text, id int NOT NULL UNIQUE);`,
			"entities:\n  - {table: accounts, entity: Account, columns: [id], perTransaction: true}\n",
			"crm.accounts.org may be NULL",
		},
		{
			"RelationParentOfAnotherType",
			`CREATE TABLE crm.accounts (org text NOT NULL, id uuid NOT NULL, PRIMARY KEY (org, id));
			 CREATE TABLE crm.account_roles (org text NOT NULL, account_id text NOT NULL, role_id text NOT NULL);`,
			"relations:\n  - {table: account_roles, event: Account.Roles.Updated, parent: {column: account_id, table: accounts, as: accountId}, child: {column: role_id}, members: RoleIds}\n",
			"crm.account_roles.account_id (text) is compared with crm.accounts.id (uuid)",
		},
		{
			"JoinByJSONColumn",
			`CREATE TABLE crm.accounts (org text NOT NULL, id jsonb NOT NULL, PRIMARY KEY (org, id));
			 CREATE TABLE crm.logins (org text NOT NULL, details jsonb);`,
			"rows:\n  - {table: logins, event: PostSignIn, join: [{as: user, table: accounts, on: details.acct}]}\n",
			"crm.accounts.id has type jsonb",
		},
		{
			"FlagOfAnotherType",
			`CREATE TABLE crm.accounts (org text NOT NULL, id int PRIMARY KEY, disabled text);`,
			"entities:\n  - {table: accounts, entity: Account, columns: [id, disabled], suspended: {column: disabled, when: \"true\"}}\n",
			"crm.accounts.disabled has type text: when true needs a boolean column",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := setupStore(t)
			_, err := bundle.pool.Exec(ctx, "CREATE SCHEMA crm;"+tt.schema)
			require.NoError(t, err)
			preset, err := capture.ParsePreset([]byte("name: crm\nschema: crm\ntenant: org\n" + tt.mapping))
			require.NoError(t, err)
			_, err = capture.New(bundle.store).InstallPreset(ctx, preset, nil)
			require.ErrorContains(t, err, tt.wantErr)
			var triggers int
			require.NoError(t, bundle.pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hookrelay_capture%'").Scan(&triggers))
			require.Zero(t, triggers, "nothing is installed")
		})
	}
}

// TestCaptureLiteralsWhateverTheSession: a function's literals read the
// same in a session with standard_conforming_strings off, where PL/pgSQL
// would otherwise read a backslash as an escape at the function's first
// call: a mapping's value ending in a backslash neither breaks the writer's
// insert nor ends its literal, and publish's type check holds.
func TestCaptureLiteralsWhateverTheSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, `CREATE SCHEMA crm; CREATE TABLE crm.logins (id serial PRIMARY KEY, outcome text, details jsonb)`)
	require.NoError(t, err)
	preset, err := capture.ParsePreset([]byte(`name: crm
schema: crm
rows:
  - table: logins
    eventBy:
      column: outcome
      values:
        'ok\': {event: PostSignIn, context: {how: 'a\'}}
        'x\'', (SELECT 1))--': {event: PostRegister}
    context: {method: details.method}
`))
	require.NoError(t, err)
	_, err = capture.New(bundle.store).InstallPreset(ctx, preset, nil)
	require.NoError(t, err)

	config := bundle.pool.Config().ConnConfig.Copy()
	config.RuntimeParams["standard_conforming_strings"] = "off"
	config.RuntimeParams["escape_string_warning"] = "off"
	for _, setting := range []string{"off", "on"} {
		config.RuntimeParams["standard_conforming_strings"] = setting
		conn, err := pgx.ConnectConfig(ctx, config)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		before := len(capturedEvents(t, bundle))
		for _, outcome := range []string{`ok\`, `x\', (SELECT 1))--`, `other`} {
			_, err = conn.Exec(ctx, `INSERT INTO crm.logins (outcome, details) VALUES ($1, '{"method": "sso"}')`, outcome)
			require.NoError(t, err, "standard_conforming_strings %s, outcome %q", setting, outcome)
		}
		events := capturedEvents(t, bundle)[before:]
		require.Equal(t, []string{"PostRegister", "PostSignIn"}, eventTypes(events), setting)
		for _, e := range events {
			if e.Type == "PostSignIn" {
				require.Equal(t, map[string]any{"method": "sso", "how": `a\`}, e.Context)
			}
		}

		_, err = conn.Exec(ctx, "SELECT hookrelay.publish('User-Created', '{}')")
		requirePgError(t, err, "22023", "invalid event type")
	}
}

// TestCaptureFlagsNeverFailTheWriter: flags are read from the published
// JSON without a cast that could fail, so a flag column given another type
// after install, holding values no boolean or time is, fails no write.
func TestCaptureFlagsNeverFailTheWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := setupStore(t)
	_, err := bundle.pool.Exec(ctx, `CREATE SCHEMA crm;
		CREATE TABLE crm.accounts (id int PRIMARY KEY, disabled boolean NOT NULL DEFAULT false, banned_until timestamptz)`)
	require.NoError(t, err)
	preset, err := capture.ParsePreset([]byte(`name: crm
schema: crm
entities:
  - table: accounts
    entity: Account
    columns: [id, disabled, banned_until]
    suspended: {column: banned_until, when: future}
    deleted: {column: disabled, when: "true"}
`))
	require.NoError(t, err)
	_, err = capture.New(bundle.store).InstallPreset(ctx, preset, nil)
	require.NoError(t, err)
	exec := func(sql string) {
		t.Helper()
		_, err := bundle.pool.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	exec("INSERT INTO crm.accounts (id) VALUES (1)")
	exec("UPDATE crm.accounts SET banned_until = 'infinity'")
	exec("UPDATE crm.accounts SET banned_until = now() - interval '1 hour'")
	exec("UPDATE crm.accounts SET disabled = true")
	require.Equal(t, []string{"Account.Created", "Account.Deleted", "Account.SuspensionStatus.Updated", "Account.SuspensionStatus.Updated"}, eventTypes(capturedEvents(t, bundle)))

	// A session that ran a PL/pgSQL trigger before a column's type changed
	// keeps plans of the old type (Postgres's own rule): write in a new one.
	exec("ALTER TABLE crm.accounts ALTER COLUMN disabled TYPE text, ALTER COLUMN banned_until TYPE text")
	conn, err := pgx.ConnectConfig(ctx, bundle.pool.Config().ConnConfig)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, value := range []string{"maybe", "2026-13-45T00:00:00", "", "{"} {
		for _, sql := range []string{
			"UPDATE crm.accounts SET disabled = $1, banned_until = $1",
			"INSERT INTO crm.accounts VALUES (2, $1, $1)",
			"DELETE FROM crm.accounts WHERE id = 2 AND disabled = $1",
		} {
			_, err := conn.Exec(ctx, sql, value)
			require.NoError(t, err, "%s with %q", sql, value)
		}
	}
}
