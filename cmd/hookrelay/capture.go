package main

import (
	"context"
	"io"
	"strings"

	"github.com/hookrelay/hookrelay/outbox"
)

func runCapture(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommand(ctx, "capture", args, stdout, map[string]func(context.Context, []string, io.Writer) error{
		"install": captureInstall,
		"list":    captureList,
		"remove":  captureRemove,
	})
}

func captureInstall(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture install")
	table := fs.String("table", "", "the table to capture, schema.table")
	entity := fs.String("entity", "", "entity name of the events, such as User")
	columns := fs.String("columns", "", "comma-separated columns to publish; no other column ever is")
	tenant := fs.String("tenant-column", "", "column holding each row's tenant")
	preset := fs.String("preset", "", "install a preset instead: logto (every table of a Logto database)")
	tableSchema := fs.String("table-schema", "public", "with --preset: the schema of the preset's tables")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *preset != "" {
		if *table != "" || *entity != "" || *columns != "" || *tenant != "" {
			return usagef("capture install --preset takes no --table, --entity, --columns or --tenant-column")
		}
		return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
			return store.InstallPreset(ctx, *preset, *tableSchema)
		})
	}
	if *table == "" || *entity == "" || *columns == "" {
		return usagef("capture install needs --table, --entity and --columns, or --preset")
	}
	var list []string
	for _, column := range strings.Split(*columns, ",") {
		list = append(list, strings.TrimSpace(column))
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.InstallCapture(ctx, &outbox.Capture{Table: *table, Entity: *entity, Columns: list, TenantColumn: *tenant})
	})
}

func captureList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture list")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return store.ListCaptures(ctx)
	})
}

func captureRemove(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture remove")
	table := fs.String("table", "", "the captured table, schema.table")
	preset := fs.String("preset", "", "remove every capture of a preset: logto")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if (*table == "") == (*preset == "") {
		return usagef("capture remove needs --table or --preset")
	}
	if *preset != "" {
		return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
			removed, err := store.RemovePreset(ctx, *preset)
			return map[string]any{"preset": *preset, "removed": removed}, err
		})
	}
	return o.printFromStore(ctx, stdout, func(store *outbox.Store) (any, error) {
		return map[string]any{"table": *table, "removed": true}, store.RemoveCapture(ctx, *table)
	})
}

func runEvents(_ context.Context, args []string, stdout io.Writer) error {
	fs, _ := newFlagSet("events")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return printJSON(stdout, outbox.Catalog)
}
