package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Role is the role that the capture functions of the store's schema run as:
// NOLOGIN, a member of no role, holding only what publishing needs (USAGE on
// the schema, EXECUTE on publish, the notes of per-transaction entities in
// capture_published) and, for presets whose functions read
// other tables, SELECT on the columns they read, with BYPASSRLS (which lends
// nothing without such a grant). Install creates it; no role can log in as
// it.
func (c *Capturer) Role() string { return c.schema + "_capture" }

// prepareRole creates the capture role unless it exists and grants it what
// publishing needs, and what reading reads needs.
func (c *Capturer) prepareRole(ctx context.Context, tx pgx.Tx, reads []tableColumn) error {
	role := pgx.Identifier{c.Role()}.Sanitize()
	bypassRLS := false
	for _, read := range reads {
		bypassRLS = bypassRLS || read.table.rowSecurity
	}
	q := c.queries(tx)
	installer, err := q.CaptureInstallerGet(ctx, c.Role())
	if err != nil {
		return fmt.Errorf("look up the installing role: %w", err)
	}
	// Roles belong to the cluster, not the database: an install in another
	// database may create or alter the role at the same moment, so look
	// again after a conflict.
	for range 3 {
		existing, err := q.CaptureRoleGet(ctx, c.Role())
		if err != nil {
			return fmt.Errorf("look up role %s: %w", c.Role(), err)
		}
		var ddl string
		switch {
		case len(existing) == 0:
			// A superuser creates it able to bypass row-level security at
			// once, which lends nothing until a preset grants it SELECT on
			// columns, and spares altering a role other databases share.
			ddl = "CREATE ROLE " + role + " NOLOGIN NOINHERIT"
			if bypassRLS || installer.Superuser {
				ddl += " BYPASSRLS"
			}
		case bypassRLS && !existing[0]:
			ddl = "ALTER ROLE " + role + " BYPASSRLS"
		}
		if ddl == "" {
			break
		}
		err = pgx.BeginFunc(ctx, tx, func(savepoint pgx.Tx) error {
			_, err := savepoint.Exec(ctx, ddl)
			return err
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "23505" || pgErr.Code == "XX000") { // duplicate_object, unique_violation, tuple concurrently updated
			continue
		}
		if err != nil {
			return c.roleError(err, bypassRLS)
		}
		break
	}
	grants := []string{
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", pgx.Identifier{c.schema}.Sanitize(), role),
		fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s(text, jsonb, jsonb, text) TO %s", c.publishIdent(), role),
		fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s(text, jsonb, jsonb, text, text) TO %s", c.publishIdent(), role),
		// The notes of per-transaction entities, which no one else may touch.
		fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s", c.publishedIdent(), role),
	}
	columns := map[*captureTable][]string{}
	var tables []*captureTable
	for _, read := range reads {
		if columns[read.table] == nil {
			tables = append(tables, read.table)
		}
		if !slices.Contains(columns[read.table], read.column) {
			columns[read.table] = append(columns[read.table], read.column)
		}
	}
	for _, table := range tables {
		grants = append(grants,
			fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", pgx.Identifier{table.ident[0]}.Sanitize(), role),
			fmt.Sprintf("GRANT SELECT (%s) ON TABLE %s TO %s", identList(columns[table]), table.ident.Sanitize(), role))
	}
	if _, err := tx.Exec(ctx, strings.Join(grants, ";\n")); err != nil {
		return fmt.Errorf("grant role %s what capture functions need: %w", c.Role(), err)
	}
	return nil
}

// giveToRole takes EXECUTE on the capture function from PUBLIC (no one may
// attach it to a table of theirs) and makes the capture role its owner,
// whose rights it runs with. A superuser may give a function to any role;
// anyone else must be a member of the role, which must have CREATE on the
// schema while it takes the function.
func (c *Capturer) giveToRole(ctx context.Context, tx pgx.Tx, function string) error {
	role := pgx.Identifier{c.Role()}.Sanitize()
	schema := pgx.Identifier{c.schema}.Sanitize()
	ident := pgx.Identifier{c.schema, function}.Sanitize()
	installer, err := c.queries(tx).CaptureInstallerGet(ctx, c.Role())
	if err != nil {
		return fmt.Errorf("look up the installing role: %w", err)
	}
	ddl := fmt.Sprintf("REVOKE ALL ON FUNCTION %[1]s() FROM PUBLIC;\nALTER FUNCTION %[1]s() OWNER TO %[2]s", ident, role)
	if !installer.Superuser {
		ddl = fmt.Sprintf("GRANT CREATE ON SCHEMA %[1]s TO %[2]s;\n%[3]s;\nREVOKE CREATE ON SCHEMA %[1]s FROM %[2]s", schema, role, ddl)
		if !installer.Member {
			ddl = "GRANT " + role + " TO CURRENT_USER;\n" + ddl
		}
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return c.roleError(err, false)
	}
	return nil
}

// roleError says what to do when the installing role may not create or use
// the capture role.
func (c *Capturer) roleError(err error, bypassRLS bool) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return fmt.Errorf("prepare role %s: %w", c.Role(), err)
	}
	create := "CREATE ROLE " + c.Role() + " NOLOGIN NOINHERIT"
	if bypassRLS {
		create += " BYPASSRLS"
	}
	return fmt.Errorf("capture functions run as the role %[1]s, which this role may not create or use (%[2]s): install as a superuser, or have one run %[3]q and GRANT %[1]s TO the installing role, which must own schema %[4]s", //nolint:err113
		c.Role(), pgErr.Message, create, c.schema)
}
