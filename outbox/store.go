package outbox

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
)

// SchemaDefault is the Postgres schema that holds hookrelay's tables, River's
// included, unless Config.Schema says otherwise.
const SchemaDefault = "hookrelay"

// MaxPayloadBytesDefault is the largest event accepted unless
// Config.MaxPayloadBytes says otherwise: the JSON of its data and context
// together.
const MaxPayloadBytesDefault = 256 << 10

var schemaNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Config configures a Store. A nil *Config means every default.
type Config struct {
	// Schema is the Postgres schema of hookrelay's tables. Defaults to
	// SchemaDefault.
	Schema string

	// RiverSchema is the Postgres schema of River's tables. Defaults to
	// Schema. Set it when hookrelay runs on the application's River client
	// (jobs.Relay) whose tables live elsewhere, often in public: Migrate then
	// leaves River's migrations to the application.
	RiverSchema string

	// MaxPayloadBytes bounds an event's data and context JSON together, as
	// Go encodes them. Defaults to MaxPayloadBytesDefault. The database bounds
	// them too, as stored, for every publisher (the constraint
	// events_data_and_context_at_most_262144_bytes): a larger value here
	// needs that constraint replaced.
	MaxPayloadBytes int
}

// Store reads and writes hookrelay's tables: events, hooks, deliveries and
// their attempts. It is safe for concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	schema      string
	riverSchema string
	maxPayload  int
	rewriter    *schemaRewriter
}

// NewStore returns a Store over pool. The schema must have been migrated with
// Migrate.
func NewStore(pool *pgxpool.Pool, config *Config) (*Store, error) {
	schema, maxPayload := SchemaDefault, MaxPayloadBytesDefault
	if config != nil && config.Schema != "" {
		schema = config.Schema
	}
	if config != nil && config.MaxPayloadBytes != 0 {
		maxPayload = config.MaxPayloadBytes
	}
	if maxPayload <= 0 {
		return nil, invalid("max payload bytes", "%d; give a positive number of bytes", maxPayload)
	}
	if err := ValidateSchemaName(schema); err != nil {
		return nil, err
	}
	riverSchema := schema
	if config != nil && config.RiverSchema != "" {
		riverSchema = config.RiverSchema
		if err := ValidateSchemaName(riverSchema); err != nil {
			return nil, err
		}
	}
	return &Store{pool: pool, schema: schema, riverSchema: riverSchema, maxPayload: maxPayload, rewriter: newSchemaRewriter(schema)}, nil
}

// Pool returns the pool the store was made with.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the Postgres schema of the store's tables.
func (s *Store) Schema() string { return s.schema }

// RiverSchema returns the Postgres schema of River's tables.
func (s *Store) RiverSchema() string { return s.riverSchema }

// OwnsRiverSchema reports whether River's tables are in the store's schema,
// and so hookrelay's to migrate.
func (s *Store) OwnsRiverSchema() bool { return s.riverSchema == s.schema }

// ValidateSchemaName returns a *ValidationError unless schema is a plain
// lower-case Postgres identifier that River also accepts.
func ValidateSchemaName(schema string) error {
	if !schemaNameRE.MatchString(schema) {
		return invalid("schema", "%q: use lower-case letters, digits and underscores, starting with a letter or underscore, at most 40 characters", schema)
	}
	return nil
}

// queries returns the generated queries bound to db, with table names
// qualified by the store's schema.
func (s *Store) queries(db dbsqlc.DBTX) *dbsqlc.Queries {
	return dbsqlc.New(s.WithSchema(db))
}

// DB is what generated queries run on: a pool, a connection or a
// transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WithSchema returns db with every statement's schema marker replaced by the
// store's schema, and "does not exist" errors of the schema's objects turned
// into ErrNotMigrated: for packages with generated queries of their own on
// hookrelay's tables (capture).
func (s *Store) WithSchema(db DB) DB {
	return &schemaDB{db: db, rewriter: s.rewriter}
}

const schemaMarker = "/* TEMPLATE: schema */"

// schemaRewriter replaces the schema marker of generated SQL with the
// schema's name, remembering each rewritten statement.
type schemaRewriter struct {
	prefix string
	cache  sync.Map // original SQL → rewritten SQL
}

func newSchemaRewriter(schema string) *schemaRewriter {
	return &schemaRewriter{prefix: schema + "."}
}

func (r *schemaRewriter) rewrite(sql string) string {
	if cached, ok := r.cache.Load(sql); ok {
		return cached.(string) //nolint:forcetypeassert
	}
	rewritten := strings.ReplaceAll(sql, schemaMarker, r.prefix)
	r.cache.Store(sql, rewritten)
	return rewritten
}

// schemaDB is a DB that qualifies table names before running SQL.
type schemaDB struct {
	db       DB
	rewriter *schemaRewriter
}

func (d *schemaDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := d.db.Exec(ctx, d.rewriter.rewrite(sql), args...)
	return tag, d.rewriter.notMigrated(err)
}

func (d *schemaDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := d.db.Query(ctx, d.rewriter.rewrite(sql), args...)
	return rows, d.rewriter.notMigrated(err)
}

func (d *schemaDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &schemaRow{row: d.db.QueryRow(ctx, d.rewriter.rewrite(sql), args...), rewriter: d.rewriter}
}

type schemaRow struct {
	row      pgx.Row
	rewriter *schemaRewriter
}

func (r *schemaRow) Scan(dest ...any) error {
	return r.rewriter.notMigrated(r.row.Scan(dest...))
}

// notMigrated turns Postgres' "relation does not exist" (or "function" or
// "schema does not exist") for the schema's own objects into ErrNotMigrated,
// the one error that says what to do.
func (r *schemaRewriter) notMigrated(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	schema := strings.TrimSuffix(r.prefix, ".")
	switch {
	case (pgErr.Code == "42P01" || pgErr.Code == "42883") && strings.Contains(pgErr.Message, r.prefix), // undefined table, function
		pgErr.Code == "3F000" && strings.Contains(pgErr.Message, `"`+schema+`"`): // undefined schema
		return fmt.Errorf("%w (%s)", ErrNotMigrated, pgErr.Message)
	}
	return err
}

// lookupErr is the error of looking up id: missing(sentinel, id) when there
// is no such row, else err wrapped as format says; the one place where
// pgx.ErrNoRows becomes hookrelay's sentinels.
func lookupErr(err, sentinel error, id, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return missing(sentinel, id)
	}
	return wrap(err, format, args...)
}

// missing says that id names nothing, the same way whether it is malformed
// or unknown: "delivery not found: 0197…".
func missing(sentinel error, id string) error {
	return fmt.Errorf("%w: %s", sentinel, id)
}

// interpretPgError turns Postgres' invalid_parameter_value and
// program_limit_exceeded errors raised by the SQL function publish, and the
// events table's size constraints, into *ValidationError.
func interpretPgError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "22023", "54000", "22003": // invalid_parameter_value, program_limit_exceeded, numeric_value_out_of_range
			return &ValidationError{Field: "event", Reason: pgErr.Message}
		case "22P05": // untranslatable_character
			return &ValidationError{Field: "event", Reason: `a JSON string holds \u0000 (NUL), which Postgres cannot store in jsonb: remove it`}
		case "23514": // check_violation
			if pgErr.ConstraintName == "events_type_valid" {
				return &ValidationError{Field: "event type", Reason: "event types are dotted PascalCase words of at most 100 characters, such as User.Created or PostSignIn"}
			}
			return &ValidationError{Field: "event", Reason: "too large as stored: the database's constraint " + pgErr.ConstraintName + " refuses it"}
		}
	}
	return err
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
