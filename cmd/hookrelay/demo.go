package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/hookrelay/hookrelay/cmd/hookrelay/internal/demo"
)

func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs, o := newFlagSet("demo")
	events := fs.Int("events", 0, "stop after this many events are published and delivered (default: run until Ctrl-C)")
	rate := fs.Int("rate", 20, "workload actions per second")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return demo.Run(ctx, &demo.Config{
		DatabaseURL: o.databaseURL,
		Schema:      o.schema,
		Addr:        o.addr,
		Events:      *events,
		Rate:        *rate,
		Out:         stdout,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}
