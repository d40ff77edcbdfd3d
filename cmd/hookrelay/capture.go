package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hookrelay/hookrelay/capture"
)

func runCapture(ctx context.Context, args []string, stdout io.Writer) error {
	return subcommand(ctx, "capture", args, stdout, map[string]func(context.Context, []string, io.Writer) error{
		"install": captureInstall,
		"list":    captureList,
		"remove":  captureRemove,
		"presets": capturePresets,
		"preset":  capturePreset,
	})
}

func captureInstall(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture install")
	table := fs.String("table", "", "the table to capture, schema.table")
	entity := fs.String("entity", "", "entity name of the events, such as User")
	columns := fs.String("columns", "", "comma-separated columns to publish; no other column ever is")
	tenant := fs.String("tenant-column", "", "column holding each row's tenant")
	preset := fs.String("preset", "", "install a built-in preset instead: logto or supabase (see capture presets)")
	mapping := fs.String("mapping", "", "install a preset of your own from this file (see capture preset show logto)")
	tableSchema := fs.String("table-schema", "", "with --preset or --mapping: the schema of its tables (default: the preset's)")
	allTenants := fs.Bool("all-tenants", false, "with --preset or --mapping: publish the tenants the preset leaves out too (Logto's admin)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *preset != "" || *mapping != "" {
		if *table != "" || *entity != "" || *columns != "" || *tenant != "" || (*preset != "" && *mapping != "") {
			return usagef("capture install takes --preset or --mapping, without --table, --entity, --columns or --tenant-column")
		}
		chosen, err := loadPreset(*preset, *mapping)
		if err != nil {
			return err
		}
		return o.printFromCapturer(ctx, stdout, func(c *capture.Capturer) (any, error) {
			return c.InstallPreset(ctx, chosen, &capture.PresetOptions{TableSchema: *tableSchema, AllTenants: *allTenants})
		})
	}
	if *table == "" || *entity == "" || *columns == "" {
		return usagef("capture install needs --table, --entity and --columns, or --preset, or --mapping")
	}
	var list []string
	for _, column := range strings.Split(*columns, ",") {
		list = append(list, strings.TrimSpace(column))
	}
	return o.printFromCapturer(ctx, stdout, func(c *capture.Capturer) (any, error) {
		return c.Install(ctx, &capture.Capture{Table: *table, Entity: *entity, Columns: list, TenantColumn: *tenant})
	})
}

// loadPreset returns the built-in preset name, or the one of the mapping
// file.
func loadPreset(name, mapping string) (*capture.Preset, error) {
	if name != "" {
		preset, _, err := capture.BuiltIn(name)
		return preset, err
	}
	data, err := os.ReadFile(mapping)
	if err != nil {
		return nil, fmt.Errorf("read mapping: %w", err)
	}
	return capture.ParsePreset(data)
}

func captureList(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture list")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return o.printFromCapturer(ctx, stdout, func(c *capture.Capturer) (any, error) {
		return c.List(ctx)
	})
}

func captureRemove(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("capture remove")
	table := fs.String("table", "", "the captured table, schema.table")
	preset := fs.String("preset", "", "remove every capture of a preset, such as logto")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if (*table == "") == (*preset == "") {
		return usagef("capture remove needs --table or --preset")
	}
	if *preset != "" {
		return o.printFromCapturer(ctx, stdout, func(c *capture.Capturer) (any, error) {
			removed, err := c.RemovePreset(ctx, *preset)
			return map[string]any{"preset": *preset, "removed": removed}, err
		})
	}
	return o.printFromCapturer(ctx, stdout, func(c *capture.Capturer) (any, error) {
		return map[string]any{"table": *table, "removed": true}, c.Remove(ctx, *table)
	})
}

func capturePresets(_ context.Context, args []string, stdout io.Writer) error {
	fs, _ := newFlagSet("capture presets")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	presets, err := capture.Presets()
	if err != nil {
		return err
	}
	return printJSON(stdout, presets)
}

// capturePreset prints a built-in preset's file, to read or to copy.
func capturePreset(_ context.Context, args []string, stdout io.Writer) error {
	fs, _ := newFlagSet("capture preset show")
	positional, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 2 || positional[0] != "show" {
		return usagef("usage: hookrelay capture preset show NAME (see hookrelay capture presets)")
	}
	_, file, err := capture.BuiltIn(positional[1])
	if err != nil {
		return err
	}
	_, err = stdout.Write(file)
	return err
}
