package capture

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParsePresetRefusesSecretsAndMalformedPaths: every column a mapping
// names whose values an event may carry or a lookup compares is checked for
// secret-looking names, and a JSON path holds no character that would read
// differently in the array literal it becomes.
func TestParsePresetRefusesSecretsAndMalformedPaths(t *testing.T) {
	for _, tt := range []struct{ name, mapping, wantErr string }{
		{"BackslashInPath", "rows:\n  - {table: logins, event: PostSignIn, context: {x: 'details.pass\\word'}}\n", "a step of a JSON path"},
		{"BraceInPath", "rows:\n  - {table: logins, event: PostSignIn, context: {x: 'details.a}b'}}\n", "a step of a JSON path"},
		{"CommaInPath", "rows:\n  - {table: logins, event: PostSignIn, context: {x: 'details.a,b'}}\n", "a step of a JSON path"},
		{"QuoteInPath", "rows:\n  - {table: logins, event: PostSignIn, context: {x: \"details.a'b\"}}\n", "a step of a JSON path"},
		{"SpaceInCondition", "rows:\n  - {table: logins, event: PostSignIn, when: [{source: 'details.a b', equals: x}]}\n", "a step of a JSON path"},
		{"EmptyStep", "rows:\n  - {table: logins, event: PostSignIn, context: {x: 'details..a'}}\n", "a step of a JSON path"},
		{"SecretInPath", "rows:\n  - {table: logins, event: PostSignIn, context: {x: details.password}}\n", "looks like a secret"},
		{"SecretJoinedOn", "rows:\n  - {table: logins, event: PostSignIn, join: [{as: u, table: accounts, on: token_id}]}\n", "looks like a secret"},
		{"SecretJoinedBy", "rows:\n  - {table: logins, event: PostSignIn, join: [{as: u, table: accounts, on: account_id, by: api_key}]}\n", "looks like a secret"},
		{"SecretRelationChild", "relations:\n  - {table: r, event: Account.Hashes.Updated, parent: {column: account_id, table: accounts, as: accountId}, child: {column: secret_hash}, members: Hashes}\n", "looks like a secret"},
		{"SecretRelationParent", "relations:\n  - {table: r, event: Account.Roles.Updated, parent: {column: password_id, table: accounts, as: accountId}, child: {column: role_id}, members: RoleIds}\n", "looks like a secret"},
		{"SecretIncludeBy", "entities:\n  - {table: accounts, entity: Account, columns: [id], include: [{as: x, table: c, by: token, columns: [id]}]}\n", "looks like a secret"},
		{"SecretKey", "entities:\n  - {table: accounts, entity: Account, key: api_key, columns: [id]}\n", "looks like a secret"},
		{"SecretTenant", "tenant: org_secret\nentities:\n  - {table: accounts, entity: Account, columns: [id]}\n", "looks like a secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePreset([]byte("name: crm\n" + tt.mapping))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}

	// Conditions compare with the mapping's constants and publish nothing:
	// Logto's logs pick their event by a column named key.
	_, err := ParsePreset([]byte("name: crm\nrows:\n  - {table: logs, eventBy: {column: key, values: {a: {event: PostSignIn}}}, when: [{source: payload.result, equals: Success}]}\n"))
	require.NoError(t, err)
	for _, name := range []string{"logto", "supabase"} {
		_, _, err := BuiltIn(name)
		require.NoError(t, err, name)
	}
}
