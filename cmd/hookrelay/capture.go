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
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *table == "" || *entity == "" || *columns == "" {
		return usagef("capture install needs --table, --entity and --columns")
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
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *table == "" {
		return usagef("capture remove needs --table")
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
