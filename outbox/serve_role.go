package outbox

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// GrantServe gives role what serve needs and nothing more: it uses the
// schema's tables and sequences and may publish, but owns nothing and can
// neither change the schema nor create roles, so serve needs no superuser
// after migration. A role that does not exist is created to log in with
// password, which must then be given; an existing role keeps its password.
// Run it after Migrate, as the installer (a role that owns the schema and
// may create roles), and again after each upgrade: tables a migration adds
// are granted then. River's tables are granted with hookrelay's when they
// are in its schema; in the application's, the application grants them.
//
// On Postgres 17 and later the role may also maintain the tables (River
// reindexes its own); before 17 only their owner may, and River's daily
// reindex fails and is logged.
func (s *Store) GrantServe(ctx context.Context, role, password string) error {
	q := s.queries(s.pool)
	exists, err := q.MigrationRoleExists(ctx, role)
	if err != nil {
		return wrap(err, "look up role %s", role)
	}
	version, err := q.MigrationServerVersion(ctx)
	if err != nil {
		return wrap(err, "read the server's version")
	}
	name := pgx.Identifier{role}.Sanitize()
	var statements []string
	if !exists {
		if password == "" {
			return fmt.Errorf("role %s does not exist: give the password it should log in with (HOOKRELAY_SERVE_PASSWORD), or create it first", role) //nolint:err113
		}
		verifier, err := scramVerifier(password)
		if err != nil {
			return err
		}
		// The password travels as a SCRAM verifier, so that no statement
		// log holds it.
		statements = append(statements, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, verifier))
	}
	schema := pgx.Identifier{s.schema}.Sanitize()
	statements = append(statements,
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", schema, name),
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s", schema, name),
		fmt.Sprintf("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %s TO %s", schema, name))
	if version >= 170000 {
		statements = append(statements, fmt.Sprintf("GRANT MAINTAIN ON ALL TABLES IN SCHEMA %s TO %s", schema, name))
	}
	statements = append(statements, fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s.publish(text, jsonb, jsonb, text) TO %s", schema, name))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, strings.Join(statements, ";\n"))
		return err
	})
	return wrap(err, "grant serve's role %s", role)
}

// scramVerifier is what Postgres stores of a SCRAM-SHA-256 password (RFC
// 5803), as psql's \password sends it.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	if strings.Contains(password, "\x00") {
		return "", errors.New("the password holds a NUL byte") //nolint:err113
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("draw a salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive the password's key: %w", err)
	}
	mac := func(key []byte, text string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(text))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key"))), nil
}
