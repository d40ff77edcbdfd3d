package capture

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

	"github.com/hookrelay/hookrelay/capture/internal/dbsqlc"
	"github.com/hookrelay/hookrelay/outbox"
)

// ErrNotFound is returned when a table has no capture installed, or a
// preset none.
var ErrNotFound = errors.New("no capture is installed on that table")

// Capture is a table whose changes publish events, in the mutating
// transaction.
type Capture struct {
	// Table is schema.table.
	Table string `json:"table"`
	// Entity names its events (<Entity>.Created, …), or what its rows are.
	Entity string `json:"entity"`
	// Columns are the only columns published or read.
	Columns []string `json:"columns"`
	// TenantColumn, when set, gives each event's tenant.
	TenantColumn string `json:"tenantColumn,omitempty"`
	// Preset names the preset that installed the capture, if one did.
	Preset    string    `json:"preset,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Capturer installs, lists and removes the captures of a store's database.
type Capturer struct {
	store  *outbox.Store
	schema string
}

// New returns a Capturer for store's database and schema.
func New(store *outbox.Store) *Capturer {
	return &Capturer{store: store, schema: store.Schema()}
}

func (c *Capturer) queries(db outbox.DB) *dbsqlc.Queries {
	return dbsqlc.New(c.store.WithSchema(db))
}

var entityRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,49}$`)

// Install installs (or replaces) the trigger of capture on its table:
// <Entity>.Created on insert, <Entity>.Data.Updated when a listed column
// changes and <Entity>.Deleted on delete, one event per row, with only the
// listed columns (in camelCase) as data. The table is left untouched
// otherwise: no column is added or changed. The trigger function runs as
// the capture role (see Role), so the roles that mutate the table need no
// privilege of hookrelay's.
func (c *Capturer) Install(ctx context.Context, capture *Capture) (*Capture, error) {
	if !entityRE.MatchString(capture.Entity) {
		return nil, invalid("entity", "%q: give one PascalCase word such as User or Organization", capture.Entity)
	}
	if len(capture.Columns) == 0 {
		return nil, invalid("columns", "list the columns to publish; without a list no trigger is installed, so that no secret column can leak")
	}
	events := entityEvents(capture.Entity)
	if err := c.checkEvents(ctx, events); err != nil {
		return nil, err
	}
	var result *Capture
	err := c.captureTx(ctx, func(tx pgx.Tx) error {
		table, err := c.resolveTable(ctx, tx, capture.Table)
		if err != nil {
			return err
		}
		if err := checkColumns(table, capture.Columns, capture.TenantColumn); err != nil {
			return err
		}
		st := style{camelKeys: true, unixMS: true} // the catalogue's shape, as Logto's
		e := &entity{table: table, name: capture.Entity, key: capture.Columns[0], tenant: capture.TenantColumn}
		for _, name := range capture.Columns {
			e.columns = append(e.columns, column{name: name, key: st.key(name)})
		}
		if err := c.prepareRole(ctx, tx, nil); err != nil {
			return err
		}
		if err := c.store.RegisterEventTypesTx(ctx, tx, events...); err != nil {
			return err
		}
		result, err = c.installTriggers(ctx, tx, table, capture, c.entityDDL(e, st))
		return err
	})
	return result, err
}

// entityEvents are the events an entity's capture publishes.
func entityEvents(entity string) []string {
	return []string{entity + ".Created", entity + ".Data.Updated", entity + ".Deleted", entity + ".SuspensionStatus.Updated"}
}

// checkEvents refuses events that the outbox would: near misses of the
// catalogue's, unless registered. A capture that publishes one would make
// every mutation of its table fail. Those it accepts, the install registers
// (RegisterEventTypesTx): installing a capture says its custom types are
// meant, so hooks may subscribe to them (Invoice.*) before the first is
// published.
func (c *Capturer) checkEvents(ctx context.Context, events []string) error {
	for _, event := range events {
		if err := c.store.CheckEventType(ctx, event); err != nil {
			return err
		}
	}
	return nil
}

// checkColumns refuses columns the table lacks, listed twice, or whose names
// look like secrets.
func checkColumns(table *captureTable, columns []string, tenant string) error {
	check := func(column string) error {
		if !table.has(column) {
			return invalid("column", "%s has no column %q", table.name, column)
		}
		if LooksSecret(column) {
			return invalid("column", "%q looks like a secret (password, hash, token, key, …) and is never published", column)
		}
		return nil
	}
	for i, column := range columns {
		if err := check(column); err != nil {
			return err
		}
		if slices.Contains(columns[:i], column) {
			return invalid("column", "%q is listed twice", column)
		}
	}
	if tenant != "" {
		return check(tenant)
	}
	return nil
}

// captureTx runs fn in a transaction that installs or removes captures.
// The DDL it runs quotes literals as standard_conforming_strings = on reads
// them, whatever the connection's setting.
func (c *Capturer) captureTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, c.store.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL standard_conforming_strings = on"); err != nil {
			return fmt.Errorf("set standard_conforming_strings: %w", err)
		}
		return fn(tx)
	})
}

// installTriggers runs ddl, which defines the table's trigger function and
// triggers, after dropping any capture triggers the table had; gives the
// function to the capture role; and records the capture.
func (c *Capturer) installTriggers(ctx context.Context, tx pgx.Tx, table *captureTable, capture *Capture, ddl string) (*Capture, error) {
	// DDL with identifiers, which sqlc cannot parameterise; every name in it
	// was checked against the catalogue and is quoted.
	if _, err := tx.Exec(ctx, c.dropTriggersDDL(table)+withBodyTag(ddl)); err != nil {
		return nil, fmt.Errorf("install capture triggers on %s: %w", table.name, err)
	}
	function := c.functionName(table.name)
	if err := c.giveToRole(ctx, tx, function); err != nil {
		return nil, err
	}
	row, err := c.queries(tx).CaptureInsert(ctx, &dbsqlc.CaptureInsertParams{
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
	return fromRow(row), nil
}

// List returns the installed captures.
func (c *Capturer) List(ctx context.Context) ([]*Capture, error) {
	rows, err := c.queries(c.store.Pool()).CaptureList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list captures: %w", err)
	}
	captures := make([]*Capture, len(rows))
	for i, row := range rows {
		captures[i] = fromRow(row)
	}
	return captures, nil
}

// Remove drops the triggers of the capture on table and forgets it.
func (c *Capturer) Remove(ctx context.Context, table string) error {
	return c.captureTx(ctx, func(tx pgx.Tx) error {
		resolved, err := c.resolveTable(ctx, tx, table)
		name := table
		if err == nil {
			name = resolved.name
		}
		row, err := c.queries(tx).CaptureGet(ctx, name)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotFound, table)
		}
		if err != nil {
			return fmt.Errorf("look up capture of %s: %w", table, err)
		}
		return c.remove(ctx, tx, row, resolved)
	})
}

// remove drops the triggers and function of the capture row and forgets it;
// table is nil when the table is gone, and its triggers with it.
func (c *Capturer) remove(ctx context.Context, tx pgx.Tx, row *dbsqlc.Capture, table *captureTable) error {
	ddl := fmt.Sprintf("DROP FUNCTION IF EXISTS %s();", pgx.Identifier{c.schema, row.FunctionName}.Sanitize())
	if table != nil {
		ddl = c.dropTriggersDDL(table) + ddl
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("drop capture triggers of %s: %w", row.TableName, err)
	}
	if err := c.queries(tx).CaptureDelete(ctx, row.TableName); err != nil {
		return fmt.Errorf("forget capture of %s: %w", row.TableName, err)
	}
	return nil
}

// resolveTable finds the table as Postgres resolves name.
func (c *Capturer) resolveTable(ctx context.Context, tx pgx.Tx, name string) (*captureTable, error) {
	rows, err := c.queries(tx).CaptureTableColumns(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("look up table %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, invalid("table", "%q does not exist (give schema.table)", name)
	}
	table := &captureTable{
		name:        rows[0].QualifiedName,
		ident:       pgx.Identifier{rows[0].SchemaName, rows[0].TableName},
		types:       make(map[string]columnType, len(rows)),
		notNull:     make(map[string]bool, len(rows)),
		rowSecurity: rows[0].RowSecurity,
	}
	for _, row := range rows {
		table.columns = append(table.columns, row.ColumnName)
		table.types[row.ColumnName] = columnType{oid: row.ColumnTypeOid, name: row.ColumnType}
		table.notNull[row.ColumnName] = row.NotNull
	}
	if table.uniqueKeys, err = c.queries(tx).CaptureUniqueKeys(ctx, table.name); err != nil {
		return nil, fmt.Errorf("look up the unique keys of %s: %w", table.name, err)
	}
	if table.ident[0] == c.schema {
		return nil, invalid("table", "%s is one of hookrelay's own tables", table.name)
	}
	return table, nil
}

// triggerName names a capture trigger; a row-level capture has one trigger
// (suffix ""), and an entity with includes another ("_touch"); a
// statement-level one a trigger per operation.
func (c *Capturer) triggerName(suffix string) string {
	return pgx.Identifier{c.triggerNameRaw(suffix)}.Sanitize()
}

func (c *Capturer) triggerNameRaw(suffix string) string {
	return "hookrelay_capture_" + c.schema + suffix
}

// dropTriggersDDL drops every capture trigger the table may have.
func (c *Capturer) dropTriggersDDL(table *captureTable) string {
	var ddl strings.Builder
	for _, suffix := range []string{"", "_touch", "_insert", "_update", "_delete"} {
		fmt.Fprintf(&ddl, "DROP TRIGGER IF EXISTS %s ON %s;\n", c.triggerName(suffix), table.ident.Sanitize())
	}
	return ddl.String()
}

// functionName names the table's trigger function by a hash of its name,
// which stays within Postgres's 63 characters whatever the table is called.
func (c *Capturer) functionName(table string) string {
	sum := sha256.Sum256([]byte(table))
	return "capture_" + hex.EncodeToString(sum[:8])
}

func (c *Capturer) functionIdent(table *captureTable) string {
	return pgx.Identifier{c.schema, c.functionName(table.name)}.Sanitize()
}

func (c *Capturer) publishIdent() string {
	return pgx.Identifier{c.schema, "publish"}.Sanitize()
}

// secretWords are the words of column names that hold secrets, as the
// parts of a name between underscores and case changes.
var secretWords = []string{ //nolint:gochecknoglobals // a read-only list
	"password", "passwd", "pwd", "pass", "passphrase", "secret", "hash", "hashed", "digest", "salt",
	"token", "otp", "totp", "mfa", "private", "credential", "cookie", "pin", "key", "apikey",
	"encrypted", "seed", "signature", "nonce", "cert", "certificate", "hmac",
}

// secretFragmentRE matches secrets glued to other words (userpassword,
// refreshtoken), where no word boundary tells them apart.
var secretFragmentRE = regexp.MustCompile(`(?i)password|passwd|secret|hash|salt|token|otp|totp|mfa|private|credential|apikey|encrypted|recovery_?codes?|backup_?codes?`)

var wordBoundaryRE = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// LooksSecret reports whether a column's name looks like it holds a secret
// (password, hash, token, key, PIN, cookie, recovery codes, …). Captures
// refuse such columns: a guard against mistakes in a column list, not a
// guarantee, since a name says nothing certain about what a column holds.
// A flag (is_…, has_…) holds none.
func LooksSecret(column string) bool {
	words := strings.FieldsFunc(strings.ToLower(wordBoundaryRE.ReplaceAllString(column, "${1}_${2}")), func(r rune) bool {
		return r == '_' || r == '-' || r == '.' || r == ' '
	})
	if len(words) > 1 && (words[0] == "is" || words[0] == "has") {
		return false
	}
	if secretFragmentRE.MatchString(column) {
		return true
	}
	for _, word := range words {
		word = strings.TrimRight(word, "0123456789")
		if slices.Contains(secretWords, strings.TrimSuffix(word, "s")) || slices.Contains(secretWords, word) {
			return true
		}
	}
	return false
}

func invalid(field, format string, args ...any) error {
	return &outbox.ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func fromRow(row *dbsqlc.Capture) *Capture {
	c := &Capture{Table: row.TableName, Entity: row.Entity, Columns: row.Columns, CreatedAt: row.CreatedAt}
	if row.TenantColumn != nil {
		c.TenantColumn = *row.TenantColumn
	}
	if row.Preset != nil {
		c.Preset = *row.Preset
	}
	return c
}
