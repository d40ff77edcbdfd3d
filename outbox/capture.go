package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// ErrCaptureNotFound is returned when a table has no capture installed.
var ErrCaptureNotFound = errors.New("no capture is installed on that table")

// Capture publishes events from an existing table's changes: <Entity>.Created
// on insert, <Entity>.Data.Updated when a listed column changes and
// <Entity>.Deleted on delete, in the mutating transaction, with only the
// listed columns (in camelCase) as data.
type Capture struct {
	// Table is schema.table.
	Table  string `json:"table"`
	Entity string `json:"entity"`
	// Columns are the only columns published.
	Columns []string `json:"columns"`
	// TenantColumn, when set, gives each event's tenant.
	TenantColumn string `json:"tenantColumn,omitempty"`
	// Preset names the preset that installed the capture, if one did.
	Preset    string    `json:"preset,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

var entityRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,49}$`)

// InstallCapture installs (or replaces) the triggers of capture on its table.
// The table is left untouched otherwise: no column is added or changed.
//
// The trigger function runs as the capture role (see CaptureRole), whoever
// mutates the table, so the roles that mutate it need no privilege of
// hookrelay's.
func (s *Store) InstallCapture(ctx context.Context, capture *Capture) (*Capture, error) {
	if !entityRE.MatchString(capture.Entity) {
		return nil, invalid("entity", "%q: give one PascalCase word such as User or Organization", capture.Entity)
	}
	if len(capture.Columns) == 0 {
		return nil, invalid("columns", "list the columns to publish; without a list no trigger is installed, so that no secret column can leak")
	}
	var result *Capture
	err := s.captureTx(ctx, func(tx pgx.Tx) error {
		q := s.queries(tx)
		table, err := s.resolveTable(ctx, q, capture)
		if err != nil {
			return err
		}
		if err := s.prepareCaptureRole(ctx, tx, nil); err != nil {
			return err
		}
		result, err = s.installTriggers(ctx, tx, table, capture, s.captureDDL(table, capture))
		return err
	})
	return result, err
}

// captureTx runs fn in a transaction that installs or removes captures.
// The DDL it runs quotes literals as standard_conforming_strings = on reads
// them, whatever the connection's setting.
func (s *Store) captureTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL standard_conforming_strings = on"); err != nil {
			return fmt.Errorf("set standard_conforming_strings: %w", err)
		}
		return fn(tx)
	})
}

// installTriggers runs ddl, which defines the table's trigger function and
// triggers, after dropping any capture triggers the table had; gives the
// function to the capture role; and records the capture.
func (s *Store) installTriggers(ctx context.Context, tx pgx.Tx, table *captureTable, capture *Capture, ddl string) (*Capture, error) {
	// DDL with identifiers, which sqlc cannot parameterise; every name in it
	// was checked against the catalogue and is quoted.
	if _, err := tx.Exec(ctx, s.dropTriggersDDL(table)+ddl); err != nil {
		return nil, fmt.Errorf("install capture triggers on %s: %w", table.name, err)
	}
	function := s.captureFunction(table.name)
	if err := s.giveToCaptureRole(ctx, tx, function); err != nil {
		return nil, err
	}
	row, err := s.queries(tx).CaptureInsert(ctx, &dbsqlc.CaptureInsertParams{
		TableName:    table.name,
		Entity:       capture.Entity,
		Columns:      capture.Columns,
		TenantColumn: nullable(capture.TenantColumn),
		FunctionName: function,
		Preset:       nullable(capture.Preset),
	})
	if err != nil {
		return nil, fmt.Errorf("record capture of %s: %w", table.name, err)
	}
	return captureFromRow(row), nil
}

// CaptureRole is the role that capture functions of the store's schema run
// as: NOLOGIN, a member of no role, holding only what publishing needs
// (USAGE on the schema, EXECUTE on publish) and, for presets whose
// functions read other tables, SELECT on the columns they read, with
// BYPASSRLS (which lends nothing without such a grant). capture install
// creates it; no role can log in as it.
func (s *Store) CaptureRole() string { return s.schema + "_capture" }

// prepareCaptureRole creates the capture role unless it exists and grants it
// what publishing needs, and what reading reads needs.
func (s *Store) prepareCaptureRole(ctx context.Context, tx pgx.Tx, reads []tableColumn) error {
	role := pgx.Identifier{s.CaptureRole()}.Sanitize()
	bypassRLS := false
	for _, read := range reads {
		bypassRLS = bypassRLS || read.table.rowSecurity
	}
	installer, err := s.queries(tx).CaptureInstallerGet(ctx, s.CaptureRole())
	if err != nil {
		return fmt.Errorf("look up the installing role: %w", err)
	}
	// Roles belong to the cluster, not the database: an install in another
	// database may create or alter the role at the same moment, so look
	// again after a conflict.
	for range 3 {
		existing, err := s.queries(tx).CaptureRoleGet(ctx, s.CaptureRole())
		if err != nil {
			return fmt.Errorf("look up role %s: %w", s.CaptureRole(), err)
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
			return s.captureRoleError(err, bypassRLS)
		}
		break
	}
	grants := []string{
		fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", pgx.Identifier{s.schema}.Sanitize(), role),
		fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s(text, jsonb, jsonb, text) TO %s", s.publishIdent(), role),
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
		return fmt.Errorf("grant role %s what capture functions need: %w", s.CaptureRole(), err)
	}
	return nil
}

// giveToCaptureRole takes EXECUTE on the capture function from PUBLIC (no
// one may attach it to a table of theirs) and makes the capture role its
// owner, whose rights it runs with. A superuser may give a function to any
// role; anyone else must be a member of the role, which must have CREATE on
// the schema while it takes the function.
func (s *Store) giveToCaptureRole(ctx context.Context, tx pgx.Tx, function string) error {
	role := pgx.Identifier{s.CaptureRole()}.Sanitize()
	schema := pgx.Identifier{s.schema}.Sanitize()
	ident := pgx.Identifier{s.schema, function}.Sanitize()
	installer, err := s.queries(tx).CaptureInstallerGet(ctx, s.CaptureRole())
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
		return s.captureRoleError(err, false)
	}
	return nil
}

// captureRoleError says what to do when the installing role may not create
// or use the capture role.
func (s *Store) captureRoleError(err error, bypassRLS bool) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return fmt.Errorf("prepare role %s: %w", s.CaptureRole(), err)
	}
	create := "CREATE ROLE " + s.CaptureRole() + " NOLOGIN NOINHERIT"
	if bypassRLS {
		create += " BYPASSRLS"
	}
	return fmt.Errorf("capture functions run as the role %[1]s, which this role may not create or use (%[2]s): install as a superuser, or have one run %[3]q and GRANT %[1]s TO the installing role, which must own schema %[4]s", //nolint:err113
		s.CaptureRole(), pgErr.Message, create, s.schema)
}

func identList(names []string) string {
	quoted := make([]string, len(names))
	for i, name := range names {
		quoted[i] = pgx.Identifier{name}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}

// ListCaptures returns the installed captures.
func (s *Store) ListCaptures(ctx context.Context) ([]*Capture, error) {
	rows, err := s.queries(s.pool).CaptureList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list captures: %w", err)
	}
	captures := make([]*Capture, len(rows))
	for i, row := range rows {
		captures[i] = captureFromRow(row)
	}
	return captures, nil
}

// RemoveCapture drops the triggers of the capture on table and forgets it.
func (s *Store) RemoveCapture(ctx context.Context, table string) error {
	return s.captureTx(ctx, func(tx pgx.Tx) error {
		q := s.queries(tx)
		resolved, err := s.resolveTable(ctx, q, &Capture{Table: table})
		name := table
		if err == nil {
			name = resolved.name
		}
		row, err := q.CaptureGet(ctx, name)
		if err != nil {
			return lookupErr(err, ErrCaptureNotFound, table, "look up capture of %s", table)
		}
		return s.removeCapture(ctx, tx, row, resolved)
	})
}

// removeCapture drops the triggers and function of the capture row and
// forgets it; table is nil when the table is gone, and its triggers with it.
func (s *Store) removeCapture(ctx context.Context, tx pgx.Tx, row *dbsqlc.Capture, table *captureTable) error {
	ddl := fmt.Sprintf("DROP FUNCTION IF EXISTS %s();", pgx.Identifier{s.schema, row.FunctionName}.Sanitize())
	if table != nil {
		ddl = s.dropTriggersDDL(table) + ddl
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("drop capture triggers of %s: %w", row.TableName, err)
	}
	return wrap(s.queries(tx).CaptureDelete(ctx, row.TableName), "forget capture of %s", row.TableName)
}

type captureTable struct {
	name    string // schema.table, quoted where needed, as Postgres spells it
	ident   pgx.Identifier
	columns []string
	types   map[string]columnType
	// rowSecurity is whether the table has row-level security enabled.
	rowSecurity bool
}

// columnType is a column's type: its OID and its name as format_type spells
// it.
type columnType struct {
	oid  int64
	name string
}

// firstNormalObjectID is Postgres's FirstNormalObjectId: a type with a
// smaller OID is built in, and only a superuser can define a cast or an
// operator on it.
const firstNormalObjectID = 16384

func (t columnType) builtIn() bool { return t.oid < firstNormalObjectID }

// resolveTable finds the table and checks the capture's columns against it.
func (s *Store) resolveTable(ctx context.Context, q *dbsqlc.Queries, capture *Capture) (*captureTable, error) {
	rows, err := q.CaptureTableColumns(ctx, capture.Table)
	if err != nil {
		return nil, fmt.Errorf("look up table %s: %w", capture.Table, err)
	}
	if len(rows) == 0 {
		return nil, invalid("table", "%q does not exist (give schema.table)", capture.Table)
	}
	table := &captureTable{
		name:        rows[0].QualifiedName,
		ident:       pgx.Identifier{rows[0].SchemaName, rows[0].TableName},
		types:       make(map[string]columnType, len(rows)),
		rowSecurity: rows[0].RowSecurity,
	}
	for _, row := range rows {
		table.columns = append(table.columns, row.ColumnName)
		table.types[row.ColumnName] = columnType{oid: row.ColumnTypeOid, name: row.ColumnType}
	}
	if table.ident[0] == s.schema {
		return nil, invalid("table", "%s is one of hookrelay's own tables", table.name)
	}
	check := func(column string) error {
		if !slices.Contains(table.columns, column) {
			return invalid("column", "%s has no column %q", table.name, column)
		}
		if LooksSecret(column) {
			return invalid("column", "%q looks like a secret (password, hash, token, key, …) and is never published", column)
		}
		return nil
	}
	for i, column := range capture.Columns {
		if err := check(column); err != nil {
			return nil, err
		}
		if slices.Contains(capture.Columns[:i], column) {
			return nil, invalid("column", "%q is listed twice", column)
		}
	}
	if capture.TenantColumn != "" {
		if err := check(capture.TenantColumn); err != nil {
			return nil, err
		}
	}
	return table, nil
}

// secretWords are the words of column names that hold secrets, as the
// parts of a name between underscores and case changes.
var secretWords = []string{ //nolint:gochecknoglobals // a read-only list
	"password", "passwd", "pwd", "pass", "passphrase", "secret", "hash", "hashed", "digest", "salt",
	"token", "otp", "totp", "mfa", "private", "credential", "cookie", "pin", "key", "apikey",
	"recovery", "encrypted", "seed", "signature", "nonce", "cert", "certificate",
}

// secretFragmentRE matches secrets glued to other words (userpassword,
// refreshtoken), where no word boundary tells them apart.
var secretFragmentRE = regexp.MustCompile(`(?i)password|passwd|secret|hash|salt|token|otp|totp|mfa|private|credential|apikey|encrypted`)

var wordBoundaryRE = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// LooksSecret reports whether a column's name looks like it holds a secret
// (password, hash, token, key, PIN, cookie, recovery codes, …). Captures
// refuse such columns: a guard against mistakes in a column list, not a
// guarantee, since a name says nothing certain about what a column holds.
func LooksSecret(column string) bool {
	if secretFragmentRE.MatchString(column) {
		return true
	}
	words := strings.FieldsFunc(strings.ToLower(wordBoundaryRE.ReplaceAllString(column, "${1}_${2}")), func(r rune) bool {
		return r == '_' || r == '-' || r == '.' || r == ' '
	})
	for _, word := range words {
		word = strings.TrimRight(word, "0123456789")
		if slices.Contains(secretWords, strings.TrimSuffix(word, "s")) || slices.Contains(secretWords, word) {
			return true
		}
	}
	return false
}

// triggerName names a capture trigger; a row-level capture has one trigger
// (suffix ""), a statement-level one a trigger per operation.
func (s *Store) triggerName(suffix string) string {
	return pgx.Identifier{"hookrelay_capture_" + s.schema + suffix}.Sanitize()
}

// dropTriggersDDL drops every capture trigger the table may have, row- or
// statement-level.
func (s *Store) dropTriggersDDL(table *captureTable) string {
	var ddl strings.Builder
	for _, suffix := range []string{"", "_insert", "_update", "_delete"} {
		fmt.Fprintf(&ddl, "DROP TRIGGER IF EXISTS %s ON %s;\n", s.triggerName(suffix), table.ident.Sanitize())
	}
	return ddl.String()
}

// captureFunction names the table's trigger function by a hash of its name,
// which stays within Postgres's 63 characters whatever the table is called.
func (s *Store) captureFunction(table string) string {
	sum := sha256.Sum256([]byte(table))
	return "capture_" + hex.EncodeToString(sum[:8])
}

// captureDDL is the trigger function and trigger of a capture. Data is built
// from the listed columns by name, so columns added to the table later are
// never published and do not break the trigger.
func (s *Store) captureDDL(table *captureTable, capture *Capture) string {
	keys := make([]string, len(capture.Columns))
	for i, column := range capture.Columns {
		keys[i] = camelCase(column)
	}
	return s.rowTriggerDDL(table, &rowTrigger{
		entity:       capture.Entity,
		build:        func(row string) string { return jsonObject(table, row, capture.Columns, keys, plainJSON) },
		tenantColumn: capture.TenantColumn,
	})
}

// Capture functions run with the capture role's rights (SECURITY DEFINER),
// whoever mutates the table, so nothing in them may run code that a table's
// owner or a publisher can define:
//   - a column's value becomes JSON by jsonValue, text by textValue, never
//     by a cast;
//   - a function serves its own table only (tableCheck), and PUBLIC has no
//     EXECUTE on it, so no one can attach it to a table of theirs;
//   - columns that other tables are compared by keep the types they had at
//     install (typeCheck), so that no comparison can reach a cast the
//     table's owner defined later;
//   - the search_path is pg_catalog, then pg_temp, which Postgres never
//     searches for functions or operators.

// jsonValue is the SQL of value, a column of type t, as JSON, made without
// any cast or operator that a table's owner could define: a value of a
// built-in type is converted by typed (Postgres's own conversion of such a
// type, a format such as toJSON with %s for the value), and only while the
// column still has that type, checked at every call (pg_typeof: a column
// may be given another type later); any other value, an enum's or a
// domain's, is published as its text, made by the type's output function,
// which only a superuser can write.
func jsonValue(value string, t columnType, typed string) string {
	text := fmt.Sprintf("to_jsonb(%s)", textValue(value))
	if !t.builtIn() {
		return fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", value, text)
	}
	return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN pg_typeof(%[1]s)::oid = %[2]d THEN %[3]s ELSE %[4]s END",
		value, t.oid, fmt.Sprintf(typed, value), text)
}

// textValue is the SQL of value as text, by its type's output function: no
// cast. NULL becomes the empty string.
func textValue(value string) string {
	return fmt.Sprintf("format('%%s', %s)", value)
}

// plainJSON is Postgres's own JSON of a built-in value, for jsonObject.
func plainJSON(columnType) string { return "to_jsonb(%s)" }

// jsonObject is the SQL of the JSON object of row's columns under keys,
// values converted by jsonValue with typed for built-in types; typed may
// depend on the type.
func jsonObject(table *captureTable, row string, columns, keys []string, typed func(columnType) string) string {
	parts := make([]string, len(columns))
	for i, column := range columns {
		t := table.types[column]
		parts[i] = quoteLiteral(keys[i]) + ", " + jsonValue(row+"."+pgx.Identifier{column}.Sanitize(), t, typed(t))
	}
	return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
}

// tableCheck is the statement with which a capture function refuses to run
// for any table but the one it was installed on.
func tableCheck(table *captureTable) string {
	return fmt.Sprintf(`IF TG_TABLE_SCHEMA <> %[1]s OR TG_TABLE_NAME <> %[2]s THEN
        RAISE EXCEPTION 'this hookrelay capture function serves table %%, not %%.%%', %[3]s, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;`, quoteLiteral(table.ident[0]), quoteLiteral(table.ident[1]), quoteLiteral(table.name))
}

// tableColumn is a column of a table that a capture function reads.
type tableColumn struct {
	table  *captureTable
	column string
}

// typeCheck is the statements with which a capture function, before it
// reads other tables, locks them against a change of type and refuses to go
// on if one of columns no longer has the type it had at install: a column
// compared in a query may reach any cast its new type has. Reading a table
// locks it until the transaction ends.
func typeCheck(columns []tableColumn) string {
	var locks, expected []string
	for _, c := range columns {
		lock := fmt.Sprintf("PERFORM FROM %s WHERE false;", c.table.ident.Sanitize())
		if !slices.Contains(locks, lock) {
			locks = append(locks, lock)
		}
		expected = append(expected, fmt.Sprintf("(%s::regclass, %s::name, %d::oid)",
			quoteLiteral(c.table.name), quoteLiteral(c.column), c.table.types[c.column].oid))
	}
	return fmt.Sprintf(`%s
    IF (SELECT count(*) FROM pg_attribute a
        WHERE NOT a.attisdropped AND (a.attrelid, a.attname, a.atttypid) IN (VALUES %s)) <> %d THEN
        RAISE EXCEPTION 'a column that this hookrelay capture reads changed its type since it was installed: install the capture again (hookrelay capture install)'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;`, strings.Join(locks, "\n    "), strings.Join(expected, ", "), len(columns))
}

// Bounds of captured data: an event's data and context may hold 256 KiB
// (events_data_and_context_at_most_262144_bytes), and a capture must never
// make the mutation it captures fail. Data larger than captureDataMaxBytes
// is published without its values over captureValueMaxBytes, or as its id
// alone, and the body says "truncated": true.
const (
	captureDataMaxBytes  = 200 << 10
	captureValueMaxBytes = 1 << 10
)

// fitData is the statement that makes the jsonb variable data fit an event,
// setting context to say so when it had to be cut.
func fitData(data, context string) string {
	return fmt.Sprintf(`IF octet_length(%[1]s::text) > %[2]d THEN
            %[1]s := (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(%[1]s) WHERE octet_length(value::text) <= %[3]d);
            IF octet_length(%[1]s::text) > %[2]d THEN
                %[1]s := jsonb_build_object('id', %[1]s->'id');
            END IF;
            %[4]s := jsonb_build_object('truncated', true);
        END IF;`, data, captureDataMaxBytes, captureValueMaxBytes, context)
}

// rowTrigger is a row-level capture: <Entity>.Created, .Data.Updated and
// .Deleted, one event per row.
type rowTrigger struct {
	entity string
	// build is the SQL of a row's data, given the row (NEW or OLD).
	build func(row string) string
	// tenantColumn, when set, gives each event's tenant.
	tenantColumn string
	// quiet are data keys whose change alone is no data update.
	quiet []string
	// suspension, when set, is a data key whose change is
	// <Entity>.SuspensionStatus.Updated.
	suspension string
}

// rowTriggerDDL is the trigger function and trigger of t on table.
func (s *Store) rowTriggerDDL(table *captureTable, t *rowTrigger) string {
	tenant := func(row string) string {
		if t.tenantColumn == "" {
			return "NULL"
		}
		return fmt.Sprintf("nullif(%s, '')", textValue(row+"."+pgx.Identifier{t.tenantColumn}.Sanitize()))
	}
	changed := "old_data IS DISTINCT FROM new_data"
	if len(t.quiet) > 0 {
		keys := make([]string, len(t.quiet))
		for i, key := range t.quiet {
			keys[i] = quoteLiteral(key)
		}
		changed = fmt.Sprintf("old_data - ARRAY[%[1]s]::text[] IS DISTINCT FROM new_data - ARRAY[%[1]s]::text[]", strings.Join(keys, ", "))
	}
	suspended := "false"
	if t.suspension != "" {
		suspended = fmt.Sprintf("old_data->%[1]s IS DISTINCT FROM new_data->%[1]s", quoteLiteral(t.suspension))
	}
	ddl := fmt.Sprintf(`
CREATE OR REPLACE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %[2]s
DECLARE
    old_data jsonb;
    new_data jsonb;
    changed boolean;
    suspended boolean;
    context jsonb := '{}';
BEGIN
    %[3]s
    IF TG_OP = 'INSERT' THEN
        new_data := %[4]s;
        %[5]s
        PERFORM %[6]s(%[7]s, new_data, context, %[8]s);
    ELSIF TG_OP = 'UPDATE' THEN
        old_data := %[9]s;
        new_data := %[4]s;
        changed := %[10]s;
        suspended := %[11]s;
        IF changed OR suspended THEN
            %[5]s
        END IF;
        IF changed THEN
            PERFORM %[6]s(%[12]s, new_data, context, %[8]s);
        END IF;
        IF suspended THEN
            PERFORM %[6]s(%[13]s, new_data, context, %[8]s);
        END IF;
    ELSE
        old_data := %[9]s;
        %[14]s
        PERFORM %[6]s(%[15]s, old_data, context, %[16]s);
    END IF;
    RETURN NULL;
END;
%[2]s;
CREATE TRIGGER %[17]s AFTER INSERT OR UPDATE OR DELETE ON %[18]s
    FOR EACH ROW EXECUTE FUNCTION %[1]s();`,
		s.functionIdent(table), bodyTag, tableCheck(table),
		t.build("NEW"), fitData("new_data", "context"), s.publishIdent(),
		quoteLiteral(t.entity+".Created"), tenant("NEW"),
		t.build("OLD"), changed, suspended, quoteLiteral(t.entity+".Data.Updated"),
		quoteLiteral(t.entity+".SuspensionStatus.Updated"), fitData("old_data", "context"),
		quoteLiteral(t.entity+".Deleted"), tenant("OLD"),
		s.triggerName(""), table.ident.Sanitize())
	return withBodyTag(ddl)
}

func (s *Store) functionIdent(table *captureTable) string {
	return pgx.Identifier{s.schema, s.captureFunction(table.name)}.Sanitize()
}

func (s *Store) publishIdent() string {
	return pgx.Identifier{s.schema, "publish"}.Sanitize()
}

// withBodyTag dollar-quotes the function body of ddl, written between two
// bodyTag markers, with a tag that no name in it contains, so that no column
// name can end the body, whatever characters it holds.
func withBodyTag(ddl string) string {
	tag := "$capture$"
	for i := 0; strings.Contains(ddl, tag); i++ {
		tag = fmt.Sprintf("$capture%d$", i)
	}
	return strings.ReplaceAll(ddl, bodyTag, tag)
}

// bodyTag stands for the body's dollar-quote tag until it is chosen: no
// identifier or literal can hold a NUL.
const bodyTag = "\x00"

// camelCase turns primary_email into primaryEmail, as Logto names fields.
func camelCase(column string) string {
	parts := strings.Split(column, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func captureFromRow(row *dbsqlc.Capture) *Capture {
	return &Capture{
		Table:        row.TableName,
		Entity:       row.Entity,
		Columns:      row.Columns,
		TenantColumn: deref(row.TenantColumn),
		Preset:       deref(row.Preset),
		CreatedAt:    row.CreatedAt,
	}
}
