package outbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookrelay/hookrelay/outbox/internal/dbsqlc"
	"github.com/hookrelay/hookrelay/schema"
)

// Migrate creates the store's schema if needed and applies River's migrations
// (unless River's tables are in another schema, the application's: see
// Config.RiverSchema), then hookrelay's. Each step runs in its own transaction under an advisory
// lock (River's migrations cannot share one: a new enum value must commit
// before use), so concurrent calls are safe. It is idempotent: the CLI's
// migrate command and the tests both call it.
func (s *Store) Migrate(ctx context.Context) error {
	migrations, err := readMigrations(schema.FS)
	if err != nil {
		return err
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(s.pool), &rivermigrate.Config{Schema: s.schema})
	if err != nil {
		return fmt.Errorf("create River migrator: %w", err)
	}

	err = s.lockedTx(ctx, func(tx pgx.Tx, _ *dbsqlc.Queries) error {
		// DDL with an identifier, which sqlc cannot parameterise.
		_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.schema}.Sanitize())
		return wrap(err, "create schema %s", s.schema)
	})
	if err != nil {
		return err
	}

	for done := !s.OwnsRiverSchema(); !done; {
		err := s.lockedTx(ctx, func(tx pgx.Tx, _ *dbsqlc.Queries) error {
			res, err := migrator.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1})
			done = err == nil && len(res.Versions) == 0
			return wrap(err, "apply River migrations")
		})
		if err != nil {
			return err
		}
	}

	known := migrations[len(migrations)-1].version
	for _, m := range migrations {
		err := s.lockedTx(ctx, func(tx pgx.Tx, q *dbsqlc.Queries) error {
			applied, err := s.appliedVersions(ctx, q)
			if err != nil {
				return err
			}
			// A later release migrated the schema: apply nothing.
			if len(applied) > 0 {
				if err := newerErr(s.schema, slices.Max(applied), known); err != nil {
					return err
				}
			}
			if slices.Contains(applied, m.version) {
				return nil
			}
			if _, err := tx.Exec(ctx, s.rewriter.rewrite(m.sql)); err != nil {
				return fmt.Errorf("apply migration %03d_%s: %w", m.version, m.name, err)
			}
			err = q.MigrationInsert(ctx, &dbsqlc.MigrationInsertParams{Version: int32(m.version), Name: m.name}) //nolint:gosec // versions are small
			return wrap(err, "record migration %03d", m.version)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lockedTx runs fn in a transaction holding the migration lock.
func (s *Store) lockedTx(ctx context.Context, fn func(tx pgx.Tx, q *dbsqlc.Queries) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.queries(tx)
		if err := q.MigrationLock(ctx); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		return fn(tx, q)
	})
}

func (s *Store) appliedVersions(ctx context.Context, q *dbsqlc.Queries) ([]int, error) {
	exists, err := q.MigrationTableExists(ctx, s.schema+".hookrelay_migration")
	if err != nil || !exists {
		return nil, wrap(err, "look up migration table")
	}
	versions, err := q.MigrationListVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list applied migrations: %w", err)
	}
	applied := make([]int, len(versions))
	for i, v := range versions {
		applied[i] = int(v)
	}
	return applied, nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// readMigrations reads NNN_name.up.sql files in version order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.up.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	migrations := make([]migration, 0, len(names))
	for _, name := range names {
		versionText, rest, ok := strings.Cut(strings.TrimSuffix(name, ".up.sql"), "_")
		version, err := strconv.Atoi(versionText)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNN_name.up.sql", name)
		}
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		migrations = append(migrations, migration{version: version, name: rest, sql: string(sql)})
	}
	return migrations, nil
}

// ErrNotMigrated is returned by CheckMigrated when the schema lacks tables
// or migrations.
var ErrNotMigrated = errors.New("the database is not migrated: run hookrelay migrate")

// ErrSchemaNewer is returned by CheckMigrated and Migrate when the schema
// holds a migration this version of hookrelay does not know: a later release
// migrated it, and this one may mistreat what it writes.
var ErrSchemaNewer = errors.New("the schema is newer than this hookrelay: run the newer release, or migrate the schema down")

// CheckMigrated returns ErrNotMigrated unless every migration of this version
// of hookrelay has been applied, and ErrSchemaNewer if a later one has.
func (s *Store) CheckMigrated(ctx context.Context) error {
	migrations, err := readMigrations(schema.FS)
	if err != nil {
		return err
	}
	q := s.queries(s.pool)
	exists, err := q.MigrationTableExists(ctx, s.schema+".hookrelay_migration")
	if err != nil {
		return fmt.Errorf("look up migration table: %w", err)
	}
	if !exists {
		return fmt.Errorf("schema %s: %w", s.schema, ErrNotMigrated)
	}
	latest, err := q.MigrationLatestVersion(ctx)
	if err != nil {
		return fmt.Errorf("read migration version: %w", err)
	}
	known := migrations[len(migrations)-1].version
	if int(latest) < known {
		return fmt.Errorf("schema %s is at version %d of %d: %w", s.schema, latest, known, ErrNotMigrated)
	}
	return newerErr(s.schema, int(latest), known)
}

// newerErr is ErrSchemaNewer when the schema's version is above known.
func newerErr(schema string, version, known int) error {
	if version > known {
		return fmt.Errorf("schema %s is at version %d, this hookrelay knows %d: %w", schema, version, known, ErrSchemaNewer)
	}
	return nil
}
