// Package schema holds hookrelay's SQL migrations. They are embedded so that
// outbox.Migrate applies them, and sqlc reads the same files as its schema, so
// the generated code and the database cannot drift.
//
// Table names are written /* TEMPLATE: schema */name; the marker is replaced by
// the configured schema when a migration runs (the convention of River's own
// sqlc queries).
package schema

import "embed"

// FS holds the migrations, named NNN_name.up.sql and applied in order.
//
//go:embed *.up.sql
var FS embed.FS
