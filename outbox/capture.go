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

// sensitiveColumnRE matches column names that hold secrets; they are never
// published, whatever the column list says.
var sensitiveColumnRE = regexp.MustCompile(`(?i)password|passwd|secret|hash|salt|token|otp|totp|mfa|private|credential`)

// InstallCapture installs (or replaces) the triggers of capture on its table.
// The table is left untouched otherwise: no column is added or changed.
//
// The trigger function runs as the role that installs it (SECURITY DEFINER,
// with a pinned search_path), so the roles that mutate the table need no
// privilege of hookrelay's.
func (s *Store) InstallCapture(ctx context.Context, capture *Capture) (*Capture, error) {
	if !entityRE.MatchString(capture.Entity) {
		return nil, invalid("entity", "%q: give one PascalCase word such as User or Organization", capture.Entity)
	}
	if len(capture.Columns) == 0 {
		return nil, invalid("columns", "list the columns to publish; without a list no trigger is installed, so that no secret column can leak")
	}
	var result *Capture
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.queries(tx)
		table, err := s.resolveTable(ctx, q, capture)
		if err != nil {
			return err
		}
		result, err = s.installTriggers(ctx, tx, table, capture, s.captureDDL(table, capture))
		return err
	})
	return result, err
}

// installTriggers runs ddl, which defines the table's trigger function and
// triggers, after dropping any capture triggers the table had, and records
// the capture.
func (s *Store) installTriggers(ctx context.Context, tx pgx.Tx, table *captureTable, capture *Capture, ddl string) (*Capture, error) {
	// DDL with identifiers, which sqlc cannot parameterise; every name in it
	// was checked against the catalogue and is quoted.
	if _, err := tx.Exec(ctx, s.dropTriggersDDL(table)+ddl); err != nil {
		return nil, fmt.Errorf("install capture triggers on %s: %w", table.name, err)
	}
	row, err := s.queries(tx).CaptureInsert(ctx, &dbsqlc.CaptureInsertParams{
		TableName:    table.name,
		Entity:       capture.Entity,
		Columns:      capture.Columns,
		TenantColumn: nullable(capture.TenantColumn),
		FunctionName: s.captureFunction(table.name),
		Preset:       nullable(capture.Preset),
	})
	if err != nil {
		return nil, fmt.Errorf("record capture of %s: %w", table.name, err)
	}
	return captureFromRow(row), nil
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
	types   map[string]string // column → type, as format_type spells it
}

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
		name:  rows[0].QualifiedName,
		ident: pgx.Identifier{rows[0].SchemaName, rows[0].TableName},
		types: make(map[string]string, len(rows)),
	}
	for _, row := range rows {
		table.columns = append(table.columns, row.ColumnName)
		table.types[row.ColumnName] = row.ColumnType
	}
	if table.ident[0] == s.schema {
		return nil, invalid("table", "%s is one of hookrelay's own tables", table.name)
	}
	check := func(column string) error {
		if !slices.Contains(table.columns, column) {
			return invalid("column", "%s has no column %q", table.name, column)
		}
		if sensitiveColumnRE.MatchString(column) {
			return invalid("column", "%q looks like a secret (password, hash, token, …) and is never published", column)
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
	return s.rowTriggerDDL(table, &rowTrigger{
		entity: capture.Entity,
		build: func(row string) string {
			parts := make([]string, len(capture.Columns))
			for i, column := range capture.Columns {
				parts[i] = fmt.Sprintf("%s, %s.%s", quoteLiteral(camelCase(column)), row, pgx.Identifier{column}.Sanitize())
			}
			return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
		},
		tenantColumn: capture.TenantColumn,
	})
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
	// suspension, when set, is a column whose change is
	// <Entity>.SuspensionStatus.Updated.
	suspension string
}

// rowTriggerDDL is the trigger function and trigger of t on table.
func (s *Store) rowTriggerDDL(table *captureTable, t *rowTrigger) string {
	tenant := func(row string) string {
		if t.tenantColumn == "" {
			return "NULL"
		}
		return fmt.Sprintf("nullif(%s.%s::text, '')", row, pgx.Identifier{t.tenantColumn}.Sanitize())
	}
	changed := "old_data IS DISTINCT FROM new_data"
	if len(t.quiet) > 0 {
		keys := make([]string, len(t.quiet))
		for i, key := range t.quiet {
			keys[i] = quoteLiteral(key)
		}
		changed = fmt.Sprintf("old_data - ARRAY[%[1]s]::text[] IS DISTINCT FROM new_data - ARRAY[%[1]s]::text[]", strings.Join(keys, ", "))
	}
	suspension := ""
	if t.suspension != "" {
		suspension = fmt.Sprintf(`
        IF OLD.%[1]s IS DISTINCT FROM NEW.%[1]s THEN
            PERFORM %[2]s(%[3]s, new_data, '{}', %[4]s);
        END IF;`, pgx.Identifier{t.suspension}.Sanitize(), s.publishIdent(),
			quoteLiteral(t.entity+".SuspensionStatus.Updated"), tenant("NEW"))
	}
	ddl := fmt.Sprintf(`
CREATE OR REPLACE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %[2]s
DECLARE
    old_data jsonb;
    new_data jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM %[3]s(%[4]s, %[5]s, '{}', %[6]s);
    ELSIF TG_OP = 'UPDATE' THEN
        old_data := %[7]s;
        new_data := %[5]s;
        IF %[8]s THEN
            PERFORM %[3]s(%[9]s, new_data, '{}', %[6]s);
        END IF;%[10]s
    ELSE
        PERFORM %[3]s(%[11]s, %[7]s, '{}', %[12]s);
    END IF;
    RETURN NULL;
END;
%[2]s;
CREATE TRIGGER %[13]s AFTER INSERT OR UPDATE OR DELETE ON %[14]s
    FOR EACH ROW EXECUTE FUNCTION %[1]s();`,
		s.functionIdent(table), bodyTag, s.publishIdent(),
		quoteLiteral(t.entity+".Created"), t.build("NEW"), tenant("NEW"),
		t.build("OLD"), changed, quoteLiteral(t.entity+".Data.Updated"), suspension,
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
